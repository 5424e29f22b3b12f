package worker

import (
	"context"
	"log/slog"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// Reconciler starts the workflows of invitations, batches and join requests whose row was stored but whose workflow
// was never started, because the API stopped between the two. Together with the API
// starting the workflow right after storing the row, this makes creation all-or-nothing
// as clients see it: every stored invitation gets its workflow.
type Reconciler struct {
	Store    *store.Store
	Temporal client.Client
	Logger   *slog.Logger
	// Grace is how old an unstarted row must be before the reconciler steps in, so that it
	// does not race the API on a request still in flight.
	Grace    time.Duration
	Interval time.Duration
	// Join are the settings join request workflows start with.
	Join workflows.JoinSettings
}

// Run reconciles every Interval until ctx ends.
func (r *Reconciler) Run(ctx context.Context) {
	ticker := time.NewTicker(r.Interval)
	defer ticker.Stop()
	for {
		if _, err := r.ReconcileOnce(ctx); err != nil && ctx.Err() == nil {
			r.Logger.WarnContext(ctx, "reconciling unstarted invitations", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// ReconcileOnce starts the workflows of one batch of unstarted invitations.
func (r *Reconciler) ReconcileOnce(ctx context.Context) (started int, err error) {
	rows, err := r.Store.UnstartedInvitations(ctx, time.Now().Add(-r.Grace), 100)
	if err != nil {
		return 0, err
	}
	for _, inv := range rows {
		if err := workflows.StartInvitation(ctx, r.Temporal, workflows.InvitationInputOf(inv)); err != nil {
			return started, err
		}
		// The workflow marks itself started; marking here too covers a run that already ended.
		if err := r.Store.MarkWorkflowStarted(ctx, inv.ID); err != nil {
			return started, err
		}
		r.Logger.InfoContext(ctx, "started the workflow of an unstarted invitation", "workflow_id", workflows.InvitationWorkflowID(inv.ID))
		started++
	}
	batches, err := r.Store.UnstartedBatches(ctx, time.Now().Add(-r.Grace), 100)
	if err != nil {
		return started, err
	}
	for _, b := range batches {
		if err := workflows.StartBatch(ctx, r.Temporal, b.ID, b.Total); err != nil {
			return started, err
		}
		if err := r.Store.MarkBatchStarted(ctx, b.ID); err != nil {
			return started, err
		}
		r.Logger.InfoContext(ctx, "started the workflow of an unstarted batch", "workflow_id", workflows.BatchWorkflowID(b.ID))
		started++
	}
	requests, err := r.Store.UnstartedJoinRequests(ctx, time.Now().Add(-r.Grace), 100)
	if err != nil {
		return started, err
	}
	for _, jr := range requests {
		if err := workflows.StartJoinRequest(ctx, r.Temporal, r.Join.Input(jr.ID, jr.OrganizationID, jr.MemberID, jr.ConfirmExpiresAt)); err != nil {
			return started, err
		}
		if err := r.Store.MarkJoinWorkflowStarted(ctx, jr.ID); err != nil {
			return started, err
		}
		r.Logger.InfoContext(ctx, "started the workflow of an unstarted join request", "workflow_id", workflows.JoinRequestWorkflowID(jr.ID))
		started++
	}
	return started, nil
}
