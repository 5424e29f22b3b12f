package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"go.temporal.io/api/serviceerror"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/workflows"
)

// POST /v1/webhooks/mailgun receives Mailgun's event webhooks (delivered, failed,
// complained). Mailgun cannot send Usher's API key, so the request is authenticated by its
// signature alone: HMAC-SHA256 of its timestamp and token under MAILGUN_WEBHOOK_SIGNING_KEY,
// a timestamp within mail.MailgunWebhookWindow of now, and a token never seen before.
// The event is recorded in MySQL first (the delivery's outcome, the invitation's delivery
// status), then, when the invitation's workflow must act (a bounce or a complaint about its
// newest link), signalled to it. Mailgun retries anything but a 2xx, so events Usher cannot
// use (unknown messages, opens, clicks) are answered 200 and ignored, and an event seen
// before (same event ID) is answered 200 and changes nothing.

const (
	// mailgunTokenRetention is how long tokens are kept to refuse replays: twice the
	// signature window and some, since an older replay is refused as stale anyway.
	mailgunTokenRetention = time.Hour
	// mailgunEventRetention is how long event IDs are kept to recognise Mailgun's retries,
	// which go on for about eight hours.
	mailgunEventRetention = 3 * 24 * time.Hour
	// mailgunPruneEvery: the records are pruned on every so many webhooks.
	mailgunPruneEvery = 100
)

func (s *Server) mailgunWebhook(c *gin.Context) {
	if s.MailgunWebhookSigningKey == "" {
		writeError(c, domain.Errorf(domain.CodeMailgunWebhooksDisabled,
			"Mailgun webhooks are not enabled on this server; set MAILGUN_WEBHOOK_SIGNING_KEY"))
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		writeError(c, jsonError(err))
		return
	}
	hook, err := mail.ParseMailgunWebhook(body)
	if err != nil {
		s.Metrics.ObserveMailgunWebhook("", "malformed")
		writeError(c, domain.Errorf(domain.CodeInvalidRequest, "the body is not a Mailgun event webhook: a JSON object with signature and event-data"))
		return
	}
	switch err := hook.Verify(s.MailgunWebhookSigningKey, time.Now()); {
	case errors.Is(err, mail.ErrSignatureStale):
		s.Metrics.ObserveMailgunWebhook(hook.Event, "stale")
		writeError(c, domain.Errorf(domain.CodeWebhookSignatureStale, "the signature's timestamp is more than %s from now", mail.MailgunWebhookWindow))
		return
	case err != nil:
		s.Metrics.ObserveMailgunWebhook(hook.Event, "forged")
		writeError(c, domain.Errorf(domain.CodeWebhookSignatureInvalid, "the signature does not match"))
		return
	}
	if s.mailgunWebhooks.Add(1)%mailgunPruneEvery == 1 {
		go s.pruneMailgunRecords()
	}

	outcome := mailgunOutcome(hook.Event, hook.Severity)
	result, err := s.Store.RecordMailgunEvent(c, store.MailgunEvent{
		Token: hook.Signature.Token, EventID: hook.ID, Event: hook.Event, DeliveryKey: hook.DeliveryID,
		Outcome: outcome, Reason: hook.Reason, At: hook.At,
	})
	if err != nil {
		result := "error"
		if domain.ErrorCode(err) == domain.CodeWebhookSignatureReplayed {
			result = "replayed"
		}
		s.Metrics.ObserveMailgunWebhook(hook.Event, result)
		writeError(c, err)
		return
	}
	if result.Duplicate {
		s.Metrics.ObserveMailgunWebhook(hook.Event, "duplicate")
		c.JSON(http.StatusOK, gin.H{"status": "duplicate"})
		return
	}
	status := "ignored"
	if result.Found {
		status = "recorded"
	}
	d := result.Delivery
	if result.Found && d.InvitationLink() && (outcome == domain.OutcomeFailed || outcome == domain.OutcomeComplained) {
		ev := workflows.DeliveryEvent{DeliveryKey: d.Key, Outcome: outcome, Reason: hook.Reason}
		err := s.Temporal.SignalWorkflow(c, workflows.InvitationWorkflowID(*d.InvitationID), "", workflows.SignalDeliveryEvent, ev)
		var notFound *serviceerror.NotFound
		if err != nil && !errors.As(err, &notFound) { // a finished invitation has nothing to learn
			// Let Mailgun try again with the same request: forget its token; the event,
			// not yet marked handled, will be handled again.
			if ferr := s.Store.ForgetMailgunToken(context.WithoutCancel(c), hook.Signature.Token); ferr != nil {
				s.Logger.ErrorContext(c, "forgetting a Mailgun webhook token", "error", ferr)
			}
			c.Error(err) //nolint:errcheck // recorded for the request log
			s.Metrics.ObserveMailgunWebhook(hook.Event, "error")
			writeError(c, domain.Errorf(domain.CodeTemporarilyUnavailable, "the event was recorded but could not be passed on yet; retry"))
			return
		}
	}
	if err := s.Store.MarkMailgunEventHandled(c, hook.ID); err != nil {
		s.Metrics.ObserveMailgunWebhook(hook.Event, "error")
		writeError(c, err)
		return
	}
	if result.Found {
		s.Metrics.ObserveMailgunWebhook(hook.Event, "accepted")
	} else {
		s.Metrics.ObserveMailgunWebhook(hook.Event, "unknown")
	}
	c.JSON(http.StatusOK, gin.H{"status": status})
}

// mailgunOutcome is what a Mailgun event means for a delivery, "" when nothing.
func mailgunOutcome(event, severity string) domain.DeliveryOutcome {
	switch event {
	case mail.EventDelivered:
		return domain.OutcomeDelivered
	case mail.EventFailed:
		if severity == mail.SeverityPermanent {
			return domain.OutcomeFailed
		}
		return domain.OutcomeDeferred
	case mail.EventComplained:
		return domain.OutcomeComplained
	}
	return ""
}

func (s *Server) pruneMailgunRecords() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	now := time.Now()
	if err := s.Store.PruneMailgunRecords(ctx, now.Add(-mailgunTokenRetention), now.Add(-mailgunEventRetention)); err != nil {
		s.Logger.Warn("pruning Mailgun webhook records", "error", err)
	}
}
