package workflows

import (
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// Activities of batches.
const (
	ActivityInviteBatchItems = "InviteBatchItems"
	ActivityFinishBatch      = "FinishBatch"
)

const batchWorkflowIDPrefix = "batch/"

// BatchWorkflowID is the workflow ID of a batch.
func BatchWorkflowID(id string) string { return batchWorkflowIDPrefix + id }

// BatchIDFromWorkflowID is the inverse of BatchWorkflowID.
func BatchIDFromWorkflowID(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, batchWorkflowIDPrefix)
}

// Batch sizes: items per activity, activities at once, and activities per run before the
// workflow continues as new to keep its history short however large the batch.
const (
	BatchChunk       = 100
	BatchConcurrency = 4
	chunksPerRun     = 40
)

// BatchInput starts (or continues) a batch: invite its items NextSeq..Total-1.
type BatchInput struct {
	BatchID string
	Total   int
	NextSeq int
}

// InviteBatchItemsRequest asks an activity to invite the items From..To-1 of a batch.
type InviteBatchItemsRequest struct {
	BatchID  string
	From, To int
}

// BatchWorkflow invites everyone in a batch, a chunk at a time with a few chunks in
// parallel. Each person's invitation then lives in its own InvitationWorkflow; the batch
// only starts them. Items already done are skipped, so a retried chunk invites nobody twice.
func BatchWorkflow(ctx workflow.Context, in BatchInput) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	})
	for chunks := 0; in.NextSeq < in.Total; {
		if chunks >= chunksPerRun {
			return workflow.NewContinueAsNewError(ctx, BatchWorkflow, in)
		}
		var running []workflow.Future
		for len(running) < BatchConcurrency && in.NextSeq < in.Total {
			req := InviteBatchItemsRequest{BatchID: in.BatchID, From: in.NextSeq, To: min(in.NextSeq+BatchChunk, in.Total)}
			running = append(running, workflow.ExecuteActivity(ctx, ActivityInviteBatchItems, req))
			in.NextSeq = req.To
			chunks++
		}
		for _, f := range running {
			if err := f.Get(ctx, nil); err != nil {
				return err
			}
		}
	}
	if err := workflow.ExecuteLocalActivity(withRecordOptions(ctx), ActivityFinishBatch, in.BatchID).Get(ctx, nil); err != nil {
		return err
	}
	showStatus(ctx, KindBatch, BatchFinished, time.Time{})
	return nil
}
