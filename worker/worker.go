// Package worker runs Usher's workflows and activities on the task queues.
package worker

import (
	"context"
	"log/slog"
	"time"

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
	// WebhookRetryInitial is the first retry interval of webhook deliveries
	// (USHER_WEBHOOK_RETRY_INITIAL); 0 means workflows.WebhookRetryInitialInterval.
	WebhookRetryInitial time.Duration
	// Logger reports the webhook dispatcher's trouble; nil means slog.Default().
	Logger *slog.Logger
}

// Workers are the worker of the main task queue, the worker of the delivery task queue,
// the worker of the webhook task queue, and the webhook dispatcher.
type Workers struct {
	main, delivery, webhooks sdkworker.Worker

	dispatcher     *WebhookDispatcher
	stopDispatcher context.CancelFunc
	dispatcherDone chan struct{}
}

// DefaultWorkflowTaskPollers is how many workflow task pollers the main worker runs unless
// Options.Worker says otherwise. The SDK's default of 2 left invitation workflows of a
// 10,000-person batch waiting about 46 s for a workflow task; 16 brought that to about 50 ms
// (`usher-bench -wft-pollers 16`; see BENCHMARKS.md).
const DefaultWorkflowTaskPollers = 16

// New returns workers for Usher's task queues with every workflow and activity registered
// under the names recorded in histories.
func New(c client.Client, a *activities.Activities, opts Options) *Workers {
	mainOpts := opts.Worker
	if mainOpts.MaxConcurrentWorkflowTaskPollers == 0 {
		mainOpts.MaxConcurrentWorkflowTaskPollers = DefaultWorkflowTaskPollers
	}
	main := sdkworker.New(c, workflows.TaskQueue, mainOpts)
	Register(main, a)
	deliveryOpts := opts.Worker
	deliveryOpts.TaskQueueActivitiesPerSecond = opts.SendsPerSecond
	deliveryOpts.DisableWorkflowWorker = true
	delivery := sdkworker.New(c, workflows.DeliveryTaskQueue, deliveryOpts)
	registerActivities(delivery, a)
	webhookOpts := opts.Worker
	webhookOpts.DisableWorkflowWorker = true
	webhooks := sdkworker.New(c, workflows.WebhookTaskQueue, webhookOpts)
	webhooks.RegisterActivityWithOptions(a.DeliverWebhook, activity.RegisterOptions{Name: workflows.ActivityDeliverWebhook})
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	dispatcher := &WebhookDispatcher{Store: a.Store, Temporal: c, Logger: logger, Interval: time.Second, RetryInitial: opts.WebhookRetryInitial}
	return &Workers{main: main, delivery: delivery, webhooks: webhooks, dispatcher: dispatcher}
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
	if err := w.webhooks.Start(); err != nil {
		w.delivery.Stop()
		w.main.Stop()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopDispatcher, w.dispatcherDone = cancel, make(chan struct{})
	go func() {
		defer close(w.dispatcherDone)
		w.dispatcher.Run(ctx)
	}()
	return nil
}

// Stop stops the dispatcher and the workers.
func (w *Workers) Stop() {
	if w.stopDispatcher != nil {
		w.stopDispatcher()
		<-w.dispatcherDone
	}
	w.webhooks.Stop()
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
		"InvitationWorkflow":      workflows.InvitationWorkflow,
		"JoinRequestWorkflow":     workflows.JoinRequestWorkflow,
		"RenewalRequestWorkflow":  workflows.RenewalRequestWorkflow,
		"BatchWorkflow":           workflows.BatchWorkflow,
		"WebhookDeliveryWorkflow": workflows.WebhookDeliveryWorkflow,
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
		workflows.ActivityDeliverWebhook:         a.DeliverWebhook,
		workflows.ActivityFailWebhook:            a.FailWebhookDelivery,
		workflows.ActivityInvitationSettings:     a.InvitationSettings,
		workflows.ActivitySendInvitationReminder: a.SendInvitationReminder,
		workflows.ActivityNotifyInviterOfFailure: a.NotifyInviterOfFailure,
		workflows.ActivityNotifyInviterOfExpiry:  a.NotifyInviterOfExpiry,
	} {
		r.RegisterActivityWithOptions(fn, activity.RegisterOptions{Name: name})
	}
}
