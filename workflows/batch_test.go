package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/workflows"
)

type fakeBatch struct {
	mu       sync.Mutex
	chunks   []workflows.InviteBatchItemsRequest
	finished int
}

func runBatch(t *testing.T, in workflows.BatchInput) (*fakeBatch, error) {
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestWorkflowEnvironment()
	f := &fakeBatch{}
	env.RegisterActivityWithOptions(func(ctx context.Context, r workflows.InviteBatchItemsRequest) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.chunks = append(f.chunks, r)
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityInviteBatchItems})
	env.RegisterActivityWithOptions(func(ctx context.Context, id string) error {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.finished++
		return nil
	}, activity.RegisterOptions{Name: workflows.ActivityFinishBatch})
	env.RegisterWorkflow(workflows.BatchWorkflow)
	env.ExecuteWorkflow(workflows.BatchWorkflow, in)
	if !env.IsWorkflowCompleted() {
		t.Fatal("batch did not complete")
	}
	return f, env.GetWorkflowError()
}

func TestSmallBatchInvitesEveryoneOnceAndFinishes(t *testing.T) {
	f, err := runBatch(t, workflows.BatchInput{BatchID: "b", Total: 250})
	if err != nil {
		t.Fatal(err)
	}
	covered := make([]int, 250)
	for _, c := range f.chunks {
		for i := c.From; i < c.To; i++ {
			covered[i]++
		}
	}
	for i, n := range covered {
		if n != 1 {
			t.Fatalf("item %d covered %d times", i, n)
		}
	}
	if f.finished != 1 {
		t.Fatalf("finished %d times", f.finished)
	}
}

func TestLargeBatchContinuesAsNew(t *testing.T) {
	f, err := runBatch(t, workflows.BatchInput{BatchID: "b", Total: 100_000})
	var next *workflow.ContinueAsNewError
	if !errors.As(err, &next) {
		t.Fatalf("a 100,000-person batch did not continue as new: %v", err)
	}
	if f.finished != 0 || len(f.chunks) == 0 || len(f.chunks) > 40 {
		t.Fatalf("first run handled %d chunks, finished %d", len(f.chunks), f.finished)
	}
	// Chunks run four at a time, so they are recorded in any order; together they must
	// cover 0..N without a gap.
	highest := 0
	for _, c := range f.chunks {
		highest = max(highest, c.To)
	}
	if highest != len(f.chunks)*workflows.BatchChunk {
		t.Fatalf("chunks are not contiguous: %d chunks reach %d", len(f.chunks), highest)
	}
}
