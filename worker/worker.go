// Package worker runs Usher's workflows and activities on the task queues.
package worker

import (
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/workflows"
)

// Options tune the workers.
type Options struct {
	Worker sdkworker.Options
	// SendsPerSecond caps calls to mail and SMS providers across all workers of the
	// delivery task queue (Temporal enforces it server-side); 0 means no cap.
	SendsPerSecond float64
}

// Workers are the worker of the main task queue and the worker of the delivery task queue.
type Workers struct {
	main, delivery sdkworker.Worker
}

// New returns workers for Usher's task queues with every workflow and activity registered
// under the names recorded in histories.
func New(c client.Client, a *activities.Activities, opts Options) *Workers {
	main := sdkworker.New(c, workflows.TaskQueue, opts.Worker)
	Register(main, a)
	deliveryOpts := opts.Worker
	deliveryOpts.TaskQueueActivitiesPerSecond = opts.SendsPerSecond
	deliveryOpts.DisableWorkflowWorker = true
	delivery := sdkworker.New(c, workflows.DeliveryTaskQueue, deliveryOpts)
	registerActivities(delivery, a)
	return &Workers{main: main, delivery: delivery}
}

// Start starts both workers.
func (w *Workers) Start() error {
	if err := w.main.Start(); err != nil {
		return err
	}
	if err := w.delivery.Start(); err != nil {
		w.main.Stop()
		return err
	}
	return nil
}

// Stop stops both workers.
func (w *Workers) Stop() {
	w.delivery.Stop()
	w.main.Stop()
}

// Registry is the part of a worker (or a replayer or test environment) that takes
// registrations.
type Registry interface {
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}

// Register registers Usher's workflows and activities on r.
func Register(r Registry, a *activities.Activities) {
	registerWorkflows(r)
	registerActivities(r, a)
}

func registerWorkflows(r Registry) {
	for name, fn := range map[string]any{
		"InvitationWorkflow":     workflows.InvitationWorkflow,
		"JoinRequestWorkflow":    workflows.JoinRequestWorkflow,
		"RenewalRequestWorkflow": workflows.RenewalRequestWorkflow,
		"BatchWorkflow":          workflows.BatchWorkflow,
	} {
		r.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: name})
	}
}

func registerActivities(r interface {
	RegisterActivityWithOptions(a any, options activity.RegisterOptions)
}, a *activities.Activities) {
	for name, fn := range map[string]any{
		workflows.ActivityRecordWorkflowStarted:  a.RecordWorkflowStarted,
		workflows.ActivityRecordStatus:           a.RecordStatus,
		workflows.ActivitySendInvitation:         a.SendInvitationEmail,
		workflows.ActivityAcceptInvitation:       a.AcceptInvitation,
		workflows.ActivitySendSetPassword:        a.SendSetPasswordEmail,
		workflows.ActivityNotifyInviter:          a.NotifyInviterOfAcceptance,
		workflows.ActivityRecordJoinStarted:      a.RecordJoinRequestStarted,
		workflows.ActivityRecordJoinStatus:       a.RecordJoinRequestStatus,
		workflows.ActivityCheckVisitorMember:     a.CheckVisitorMembership,
		workflows.ActivitySendJoinEmail:          a.SendJoinRequestEmail,
		workflows.ActivityApproveJoinRequest:     a.ApproveJoinRequest,
		workflows.ActivitySendJoinApprovedEmail:  a.SendJoinApprovedEmail,
		workflows.ActivityNotifyRenewalRequested: a.NotifyInviterOfRenewalRequest,
		workflows.ActivityInviteBatchItems:       a.InviteBatchItems,
		workflows.ActivityFinishBatch:            a.FinishBatch,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
