package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
)

// Mailgun's "delivered" may arrive before the activity records Mailgun's acceptance; the
// invitation still ends up delivered, not merely sent.
func TestDeliveredBeforeFinishDelivery(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	inv := pendingInvitation(t, s, "early@example.com")
	expires := time.Now().Add(time.Hour)
	const key = "run/1/invite"
	if err := s.ApplyStatusChange(ctx, store.StatusChange{EventKey: "run/0/send", InvitationID: inv.ID, Action: "send",
		From: inv.Status, To: domain.StatusPending, ExpiresAt: &expires, DeliveryKey: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.BeginInvitationDelivery(ctx, key, inv.ID, []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	res, err := s.RecordMailgunEvent(ctx, store.MailgunEvent{Token: "t1", EventID: "e1", Event: "delivered", DeliveryKey: key, Outcome: domain.OutcomeDelivered})
	if err != nil || !res.Found || !res.Delivery.InvitationLink() {
		t.Fatalf("%+v, %v", res, err)
	}
	if err := s.FinishDelivery(ctx, key, "msg-1"); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetInvitation(ctx, inv.ID)
	if err != nil || got.DeliveryStatus != domain.DeliveryDelivered {
		t.Fatalf("delivery status %s, %v", got.DeliveryStatus, err)
	}

	// The same token again is a replay; the same event with another token a duplicate
	// once handled, and handled again (not a duplicate) until then.
	_, err = s.RecordMailgunEvent(ctx, store.MailgunEvent{Token: "t1", EventID: "e2", Event: "delivered", DeliveryKey: key})
	if domain.ErrorCode(err) != domain.CodeWebhookSignatureReplayed {
		t.Fatalf("replay: %v", err)
	}
	if res, err := s.RecordMailgunEvent(ctx, store.MailgunEvent{Token: "t2", EventID: "e1", Event: "delivered", DeliveryKey: key}); err != nil || res.Duplicate {
		t.Fatalf("unhandled event seen again: %+v, %v", res, err)
	}
	if err := s.MarkMailgunEventHandled(ctx, "e1"); err != nil {
		t.Fatal(err)
	}
	if res, err := s.RecordMailgunEvent(ctx, store.MailgunEvent{Token: "t3", EventID: "e1", Event: "delivered", DeliveryKey: key}); err != nil || !res.Duplicate {
		t.Fatalf("handled event seen again: %+v, %v", res, err)
	}
	// A forgotten token may be used again; pruning removes old records.
	if err := s.ForgetMailgunToken(ctx, "t3"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordMailgunEvent(ctx, store.MailgunEvent{Token: "t3", EventID: "e3", Event: "opened", DeliveryKey: key}); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneMailgunRecords(ctx, time.Now().Add(time.Minute), time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordMailgunEvent(ctx, store.MailgunEvent{Token: "t1", EventID: "e1", Event: "delivered", DeliveryKey: key}); err != nil {
		t.Fatalf("after pruning, the old token and event are forgotten: %v", err)
	}
}
