package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/usherhq/usher/internal/metrics"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/webhooks"
	"github.com/usherhq/usher/workflows"
)

// DeliverWebhook makes one attempt to deliver a webhook and records it. A 2xx answer
// delivers it; anything else (another status, a timeout, a refused connection) is a
// retryable error, and Temporal tries again per the workflow's retry policy. Should the
// answer be lost after the receiver took the webhook, the retry sends it again with the
// same Usher-Webhook-Id, by which receivers deduplicate.
func (a *Activities) DeliverWebhook(ctx context.Context, deliveryID string) error {
	t, err := a.Store.GetWebhookTarget(ctx, deliveryID)
	if err != nil {
		return forWorkflow(err)
	}
	if t.Delivery.Status != store.WebhookPending {
		return nil // an earlier attempt delivered it
	}
	if t.Endpoint.DisabledAt != nil {
		return temporal.NewNonRetryableApplicationError("the endpoint was disabled", workflows.ErrWebhookEndpointDisabled, nil)
	}
	if a.WebhookSealer == nil {
		return fmt.Errorf("webhooks need USHER_SECRET_KEY to be set on the worker")
	}
	secret, err := a.WebhookSealer.Open(t.Endpoint.SecretCiphertext)
	if err != nil {
		return err
	}
	payload := webhooks.Payload{ID: t.Event.ID, Type: t.Event.Type, CreatedAt: t.Event.OccurredAt.UTC(), Data: t.Event.Data}
	if t.Event.OrganizationID != "" {
		payload.OrganizationID = &t.Event.OrganizationID
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return temporal.NewNonRetryableApplicationError("encoding the webhook: "+err.Error(), "WebhookEncoding", nil)
	}

	client := a.WebhookClient
	if client == nil {
		client = defaultWebhookClient
	}
	started := time.Now()
	res := client.Send(ctx, t.Endpoint.URL, secret, t.Event.ID, body, started)
	info := activity.GetInfo(ctx)
	attempt := store.WebhookAttempt{
		DeliveryID: deliveryID, Attempt: int(info.Attempt), AttemptedAt: started, DurationMS: int(res.Duration / time.Millisecond),
	}
	if res.StatusCode != 0 {
		code := res.StatusCode
		attempt.StatusCode = &code
		if res.Response != "" {
			attempt.ResponseBody = &res.Response
		}
	}
	var failure string
	switch {
	case res.Err != nil:
		failure = res.Err.Error()
	case !res.Delivered():
		failure = fmt.Sprintf("the receiver answered %d %s", res.StatusCode, http.StatusText(res.StatusCode))
	}
	if failure != "" {
		attempt.Error = &failure
	}
	if err := a.Store.RecordWebhookAttempt(ctx, attempt, res.Delivered(), nextWebhookAttempt(info, t.Delivery.CreatedAt, started)); err != nil {
		return err
	}
	if res.Delivered() {
		a.Metrics.ObserveWebhookDelivery(metrics.WebhookDelivered, res.Duration)
		return nil
	}
	a.Metrics.ObserveWebhookDelivery(metrics.WebhookRetry, res.Duration)
	return temporal.NewApplicationError(failure, "WebhookNotDelivered")
}

var defaultWebhookClient = webhooks.NewClient()

// nextWebhookAttempt estimates when Temporal will try again after this failed attempt,
// from the retry policy; nil when the delivery window will have closed by then.
func nextWebhookAttempt(info activity.Info, createdAt, now time.Time) *time.Time {
	p := info.RetryPolicy
	if p == nil {
		return nil
	}
	backoff := p.BackoffCoefficient
	if backoff < 1 {
		backoff = 1
	}
	delay := time.Duration(float64(p.InitialInterval) * math.Pow(backoff, float64(info.Attempt-1)))
	if p.MaximumInterval > 0 && (delay > p.MaximumInterval || delay <= 0) {
		delay = p.MaximumInterval
	}
	next := now.Add(delay)
	if next.After(createdAt.Add(workflows.WebhookDeliveryWindow)) {
		return nil
	}
	return &next
}

// FailWebhookDelivery records that a delivery gave up.
func (a *Activities) FailWebhookDelivery(ctx context.Context, f workflows.WebhookFailure) error {
	if err := a.Store.FailWebhookDelivery(ctx, f.DeliveryID, f.Reason); err != nil {
		return err
	}
	a.Metrics.CountWebhookGivenUp()
	return nil
}
