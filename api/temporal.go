package api

import (
	"context"
	"errors"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/workflows"
)

// updateTimeout bounds how long a client waits for a workflow's answer.
const updateTimeout = 30 * time.Second

// runUpdate runs an update on a workflow and waits for its outcome; with start, the
// workflow is started first if it is not running (update-with-start).
func (s *Server) runUpdate(ctx context.Context, workflowID, name string, start client.WithStartWorkflowOperation, result any, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, updateTimeout)
	defer cancel()
	update := client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: args, WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	for retry := time.Duration(0); ; retry = min(2*retry+10*time.Millisecond, time.Second) {
		var handle client.WorkflowUpdateHandle
		var err error
		if start != nil {
			handle, err = s.Temporal.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{StartWorkflowOperation: start, UpdateOptions: update})
		} else {
			handle, err = s.Temporal.UpdateWorkflow(ctx, update)
		}
		if err == nil {
			err = handle.Get(ctx, result)
		}
		// The workflow task that ran the update failed, for instance because an activity
		// finished while it completed the workflow, and the update was rolled back. What it
		// recorded in MySQL stays, under the same event key a second attempt reuses, so
		// the update is tried again rather than leaving MySQL ahead of the workflow.
		if !errors.As(err, new(*serviceerror.WorkflowNotReady)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(retry):
		}
	}
}

// explainWorkflowFailure turns what Temporal said into what the client should hear. When
// the workflow has already ended, recheck answers from what it left in MySQL.
func explainWorkflowFailure(err error, recheck func() error) error {
	if de, ok := workflows.DomainError(err); ok {
		return de
	}
	var notFound *serviceerror.NotFound
	if errors.As(err, &notFound) {
		if refusal := recheck(); refusal != nil {
			return refusal
		}
	}
	// A timeout inside the workflow: the accept's local activity gave up on MySQL, say.
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, new(*client.WorkflowUpdateServiceTimeoutOrCanceledError)) ||
		errors.As(err, new(*temporal.TimeoutError)) ||
		errors.As(err, new(*serviceerror.Unavailable)) || errors.As(err, new(*serviceerror.ResourceExhausted)) || errors.As(err, &notFound) {
		return domain.Errorf(domain.CodeTemporarilyUnavailable, "the workflow did not answer in time; try again")
	}
	return err
}
