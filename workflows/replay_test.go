package workflows_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs (see
// e2e/history_test.go) against today's workflow code. A failure means a change is not
// deterministic for workflows already in flight: guard it with workflow.GetVersion.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob("testdata/histories/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no recorded histories in testdata/histories")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			replayer := worker.NewWorkflowReplayer()
			replayer.RegisterWorkflowWithOptions(workflows.InvitationWorkflow, workflow.RegisterOptions{Name: "InvitationWorkflow"})
			replayer.RegisterWorkflowWithOptions(workflows.JoinRequestWorkflow, workflow.RegisterOptions{Name: "JoinRequestWorkflow"})
			replayer.RegisterWorkflowWithOptions(workflows.WebhookDeliveryWorkflow, workflow.RegisterOptions{Name: "WebhookDeliveryWorkflow"})
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, file); err != nil {
				t.Fatal(err)
			}
		})
	}
}
