package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/usherhq/usher/workflows"
)

// recordHistoryEnv names a directory to write the tests' workflow histories to, for the
// replay tests in workflows/testdata: USHER_RECORD_HISTORIES=../workflows/testdata/histories.
const recordHistoryEnv = "USHER_RECORD_HISTORIES"

// checkHistory fetches the latest run's history of an invitation, fails if any of secrets
// appears in it, and records it for replay tests when asked to.
func checkHistory(t *testing.T, invitationID, name string, secrets ...string) {
	t.Helper()
	checkWorkflowHistory(t, workflows.InvitationWorkflowID(invitationID), name, secrets...)
}

// checkWorkflowHistory is checkHistory for any workflow.
func checkWorkflowHistory(t *testing.T, workflowID, name string, secrets ...string) {
	t.Helper()
	encoded := exportHistory(t, workflowID, "")
	for _, secret := range secrets {
		if secret != "" && strings.Contains(string(encoded), secret) {
			t.Fatalf("a secret appears in the history of %s", name)
		}
	}
	if dir := os.Getenv(recordHistoryEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".json"), encoded, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// exportHistory is the history of a workflow run ("" for the latest) as protojson.
func exportHistory(t *testing.T, workflowID, runID string) []byte {
	t.Helper()
	iter := env.client.GetWorkflowHistory(context.Background(), workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	history := &historypb.History{}
	for iter.HasNext() {
		event, err := iter.Next()
		if err != nil {
			t.Fatal(err)
		}
		history.Events = append(history.Events, event)
	}
	encoded, err := protojson.MarshalOptions{Indent: "  "}.Marshal(history)
	if err != nil {
		t.Fatal(err)
	}
	return encoded
}
