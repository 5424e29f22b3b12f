package workflows

import (
	"context"
	"errors"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The retry policy of a webhook delivery: first retry after 5 s, then doubling up to an
// hour between attempts, for a day in all (about 30 attempts); then the delivery is
// marked failed. Receivers deduplicate by the event ID, so a retry after a lost answer
// does no harm.
const (
	WebhookRetryInitialInterval = 5 * time.Second
	WebhookRetryBackoff         = 2.0
	WebhookRetryMaxInterval     = time.Hour
	WebhookDeliveryWindow       = 24 * time.Hour
	// WebhookAttemptTimeout bounds one attempt; the HTTP request itself has 10 s.
	WebhookAttemptTimeout = 30 * time.Second
)

// WebhookTaskQueue is where webhook HTTP calls run, apart from the database writes of the
// main queue and the rate-limited provider sends, so that slow receivers hold up neither.
const WebhookTaskQueue = "usher-webhooks"

// Webhook activities.
const (
	ActivityDeliverWebhook = "DeliverWebhook"
	ActivityFailWebhook    = "FailWebhookDelivery"
)

// ErrWebhookEndpointDisabled: the endpoint was disabled while its delivery was pending.
const ErrWebhookEndpointDisabled = "WebhookEndpointDisabled"

// WebhookDeliveryInput starts the workflow of one webhook delivery.
type WebhookDeliveryInput struct {
	DeliveryID string
	// RetryInitialInterval overrides WebhookRetryInitialInterval (tests use a short one).
	RetryInitialInterval time.Duration
}

// WebhookFailure is what FailWebhookDelivery records.
type WebhookFailure struct {
	DeliveryID string
	// Reason replaces the last attempt's error when set.
	Reason string
}

// WebhookOutcome is how a delivery ended: "delivered" or "failed".
type WebhookOutcome struct {
	Status string
}

const webhookWorkflowIDPrefix = "webhook-delivery/"

// WebhookDeliveryWorkflowID is the workflow ID of a delivery.
func WebhookDeliveryWorkflowID(deliveryID string) string { return webhookWorkflowIDPrefix + deliveryID }

// WebhookDeliveryIDFromWorkflowID is the inverse of WebhookDeliveryWorkflowID.
func WebhookDeliveryIDFromWorkflowID(workflowID string) (string, bool) {
	return strings.CutPrefix(workflowID, webhookWorkflowIDPrefix)
}

// WebhookDeliveryWorkflow delivers one event to one endpoint: a single activity that
// Temporal retries with backoff for up to a day, each attempt recorded by the activity;
// if it never succeeds, the delivery is marked failed.
func WebhookDeliveryWorkflow(ctx workflow.Context, in WebhookDeliveryInput) (WebhookOutcome, error) {
	initial := in.RetryInitialInterval
	if initial <= 0 {
		initial = WebhookRetryInitialInterval
	}
	deliverCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              WebhookTaskQueue,
		StartToCloseTimeout:    WebhookAttemptTimeout,
		ScheduleToCloseTimeout: WebhookDeliveryWindow,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: initial, BackoffCoefficient: WebhookRetryBackoff, MaximumInterval: WebhookRetryMaxInterval,
			NonRetryableErrorTypes: []string{ErrWebhookEndpointDisabled},
		},
	})
	err := workflow.ExecuteActivity(deliverCtx, ActivityDeliverWebhook, in.DeliveryID).Get(ctx, nil)
	if err == nil {
		return WebhookOutcome{Status: "delivered"}, nil
	}
	failure := WebhookFailure{DeliveryID: in.DeliveryID}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == ErrWebhookEndpointDisabled {
		failure.Reason = appErr.Message()
	}
	recordCtx := workflow.WithLocalActivityOptions(ctx, workflow.LocalActivityOptions{
		StartToCloseTimeout: 10 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 200 * time.Millisecond, BackoffCoefficient: 2, MaximumInterval: 30 * time.Second},
	})
	if err := workflow.ExecuteLocalActivity(recordCtx, ActivityFailWebhook, failure).Get(ctx, nil); err != nil {
		return WebhookOutcome{}, err
	}
	return WebhookOutcome{Status: "failed"}, nil
}

// StartWebhookDelivery starts the workflow of a queued delivery. Starting one that is
// already running or has run is a no-op, so several dispatchers may race.
func StartWebhookDelivery(ctx context.Context, c client.Client, in WebhookDeliveryInput) error {
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID: WebhookDeliveryWorkflowID(in.DeliveryID), TaskQueue: TaskQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
	}, WebhookDeliveryWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return nil
	}
	return err
}
