package activities

import (
	"context"

	"go.temporal.io/sdk/client"
)

// updateWorkflow runs an update on another workflow and waits for its outcome.
func (a *Activities) updateWorkflow(ctx context.Context, workflowID, name string, args ...any) error {
	handle, err := a.Temporal.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: workflowID, UpdateName: name, Args: args, WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return err
	}
	return handle.Get(ctx, nil)
}
