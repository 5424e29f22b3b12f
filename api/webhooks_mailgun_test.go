package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/usherhq/usher/internal/domain"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/testdb"
	"github.com/usherhq/usher/workflows"
)

const testSigningKey = "key-0123456789abcdef0123456789abcdef"

// fakeSignals is the Temporal client of these tests: it only takes signals.
type fakeSignals struct {
	client.Client
	mu      sync.Mutex
	signals map[string][]workflows.DeliveryEvent // by workflow ID
	err     error                                // returned by the next signal
}

func (f *fakeSignals) SignalWorkflow(ctx context.Context, workflowID, runID, name string, arg any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		err := f.err
		f.err = nil
		return err
	}
	if name != workflows.SignalDeliveryEvent {
		return fmt.Errorf("unexpected signal %q", name)
	}
	if f.signals == nil {
		f.signals = map[string][]workflows.DeliveryEvent{}
	}
	f.signals[workflowID] = append(f.signals[workflowID], arg.(workflows.DeliveryEvent))
	return nil
}

func (f *fakeSignals) to(invitationID string) []workflows.DeliveryEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]workflows.DeliveryEvent(nil), f.signals[workflows.InvitationWorkflowID(invitationID)]...)
}

type webhookFixture struct {
	t        *testing.T
	store    *store.Store
	temporal *fakeSignals
	url      string
}

func newWebhookFixture(t *testing.T, signingKey string) *webhookFixture {
	_, db := testdb.New(t)
	f := &webhookFixture{t: t, store: store.New(db, nil), temporal: &fakeSignals{}}
	srv := httptest.NewServer((&Server{Store: f.store, Temporal: f.temporal, MailgunWebhookSigningKey: signingKey}).Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/v1/webhooks/mailgun"
	return f
}

// sentInvitation stores a pending invitation whose e-mail, named by the returned delivery
// key, Mailgun accepted.
func (f *webhookFixture) sentInvitation(email string) (invitationID, key string) {
	f.t.Helper()
	ctx := context.Background()
	org, err := f.store.CreateOrganization(ctx, "Acme", nil, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	inv, _, err := f.store.CreateInvitation(ctx, store.NewInvitation{OrganizationID: org.ID, Email: email, Role: "member", Locale: "en", ExpiresIn: time.Hour}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	key = "run-1/1/invite"
	expires := time.Now().Add(time.Hour)
	if err := f.store.ApplyStatusChange(ctx, store.StatusChange{EventKey: "run-1/0/send", InvitationID: inv.ID, Action: "send",
		From: inv.Status, To: domain.StatusPending, ExpiresAt: &expires, DeliveryKey: key}); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.BeginInvitationDelivery(ctx, key, inv.ID, []byte("0123456789abcdef0123456789abcdef")); err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.FinishDelivery(ctx, key, "msg-1@mg.example.com"); err != nil {
		f.t.Fatal(err)
	}
	return inv.ID, key
}

func (f *webhookFixture) deliveryStatus(invitationID string) domain.DeliveryStatus {
	f.t.Helper()
	inv, err := f.store.GetInvitation(context.Background(), invitationID)
	if err != nil {
		f.t.Fatal(err)
	}
	return inv.DeliveryStatus
}

// event is the event-data of a Mailgun webhook.
type event map[string]any

func mailgunEvent(id, name, key string) event {
	e := event{
		"id": id, "event": name, "timestamp": float64(time.Now().UnixNano()) / 1e9, "recipient": "bea@example.com",
		"message": map[string]any{"headers": map[string]any{"message-id": "msg-1@mg.example.com"}},
	}
	if key != "" {
		e["user-variables"] = map[string]any{"usher_delivery_id": key}
	}
	return e
}

// signed builds a webhook body signed with key at ts with token.
func signed(key string, ts time.Time, token string, e event) []byte {
	timestamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(timestamp + token))
	body, _ := json.Marshal(map[string]any{
		"signature":  map[string]string{"timestamp": timestamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
		"event-data": e,
	})
	return body
}

var tokenCounter struct {
	sync.Mutex
	n int
}

func newToken() string {
	tokenCounter.Lock()
	defer tokenCounter.Unlock()
	tokenCounter.n++
	return fmt.Sprintf("%050d", tokenCounter.n)
}

// post sends body and returns the status and the answer's status or error code.
func (f *webhookFixture) post(body []byte) (int, string) {
	f.t.Helper()
	res, err := http.Post(f.url, "application/json", strings.NewReader(string(body)))
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var answer struct {
		Status string `json:"status"`
		Error  struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		f.t.Fatalf("answer %d is not JSON: %s", res.StatusCode, raw)
	}
	if answer.Error.Code != "" {
		return res.StatusCode, answer.Error.Code
	}
	return res.StatusCode, answer.Status
}

func (f *webhookFixture) expect(body []byte, status int, what string) {
	f.t.Helper()
	if gotStatus, got := f.post(body); gotStatus != status || got != what {
		f.t.Fatalf("got %d %s, want %d %s", gotStatus, got, status, what)
	}
}

func TestMailgunWebhookValidSignature(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("valid@example.com")
	f.expect(signed(testSigningKey, time.Now(), newToken(), mailgunEvent("ev-delivered", "delivered", key)), http.StatusOK, "recorded")
	if got := f.deliveryStatus(inv); got != domain.DeliveryDelivered {
		t.Fatalf("delivery status %s, want delivered", got)
	}
	if outcome, _, err := f.store.DeliveryOutcome(context.Background(), key); err != nil || outcome != domain.OutcomeDelivered {
		t.Fatalf("outcome %q, %v", outcome, err)
	}
	if got := f.temporal.to(inv); len(got) != 0 {
		t.Fatalf("a delivery was signalled: %+v", got)
	}
	// Within the window either way: clocks differ.
	f.expect(signed(testSigningKey, time.Now().Add(4*time.Minute), newToken(), mailgunEvent("ev-opened", "opened", key)), http.StatusOK, "recorded")
	f.expect(signed(testSigningKey, time.Now().Add(-4*time.Minute), newToken(), mailgunEvent("ev-unknown", "delivered", "no-such-key")), http.StatusOK, "ignored")
	f.expect(signed(testSigningKey, time.Now(), newToken(), mailgunEvent("ev-no-var", "delivered", "")), http.StatusOK, "ignored")
}

func TestMailgunWebhookForgedSignature(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("forged@example.com")
	e := mailgunEvent("ev-forged", "failed", key)
	e["severity"] = "permanent"
	f.expect(signed("key-someone-else", time.Now(), newToken(), e), http.StatusUnauthorized, string(domain.CodeWebhookSignatureInvalid))

	// A genuine signature with another token, or another timestamp, does not carry over.
	body := signed(testSigningKey, time.Now(), newToken(), e)
	var payload map[string]map[string]any
	_ = json.Unmarshal(body, &payload)
	payload["signature"]["token"] = newToken()
	tampered, _ := json.Marshal(payload)
	f.expect(tampered, http.StatusUnauthorized, string(domain.CodeWebhookSignatureInvalid))
	_ = json.Unmarshal(body, &payload)
	payload["signature"]["timestamp"] = strconv.FormatInt(time.Now().Unix()+1, 10)
	tampered, _ = json.Marshal(payload)
	f.expect(tampered, http.StatusUnauthorized, string(domain.CodeWebhookSignatureInvalid))
	payload["signature"]["signature"] = "not hex"
	tampered, _ = json.Marshal(payload)
	f.expect(tampered, http.StatusUnauthorized, string(domain.CodeWebhookSignatureInvalid))

	if got := f.deliveryStatus(inv); got != domain.DeliverySent || len(f.temporal.to(inv)) != 0 {
		t.Fatalf("a forged webhook changed the invitation: %s, %+v", got, f.temporal.to(inv))
	}
	// Not JSON, or not a webhook.
	f.expect([]byte(`{"signature":`), http.StatusBadRequest, string(domain.CodeInvalidRequest))
	f.expect([]byte(`{"event-data":{"id":"x","event":"delivered"}}`), http.StatusBadRequest, string(domain.CodeInvalidRequest))
}

func TestMailgunWebhookStaleSignature(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("stale@example.com")
	for _, skew := range []time.Duration{-6 * time.Minute, 6 * time.Minute, -24 * time.Hour} {
		f.expect(signed(testSigningKey, time.Now().Add(skew), newToken(), mailgunEvent("ev-stale", "delivered", key)),
			http.StatusUnauthorized, string(domain.CodeWebhookSignatureStale))
	}
	if got := f.deliveryStatus(inv); got != domain.DeliverySent {
		t.Fatalf("a stale webhook changed the delivery status to %s", got)
	}
}

func TestMailgunWebhookReplayedSignature(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("replayed@example.com")
	e := mailgunEvent("ev-bounce", "failed", key)
	e["severity"] = "permanent"
	e["delivery-status"] = map[string]any{"code": 550, "message": "5.1.1 <replayed@example.com>: Recipient address rejected"}
	body := signed(testSigningKey, time.Now(), newToken(), e)
	f.expect(body, http.StatusOK, "recorded")
	f.expect(body, http.StatusForbidden, string(domain.CodeWebhookSignatureReplayed))

	got := f.temporal.to(inv)
	if len(got) != 1 || got[0].DeliveryKey != key || got[0].Outcome != domain.OutcomeFailed {
		t.Fatalf("signals %+v, want one bounce of %s", got, key)
	}
	if strings.Contains(got[0].Reason, "@") || !strings.Contains(got[0].Reason, "550") {
		t.Fatalf("the reason passed on is %q: it must explain, without the address", got[0].Reason)
	}
	if status := f.deliveryStatus(inv); status != domain.DeliveryFailed {
		t.Fatalf("delivery status %s, want failed", status)
	}
}

func TestMailgunWebhookDuplicateEventID(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("duplicate@example.com")
	e := mailgunEvent("ev-complaint", "complained", key)
	f.expect(signed(testSigningKey, time.Now(), newToken(), e), http.StatusOK, "recorded")
	// Mailgun's retry of the same event comes with a new signature.
	f.expect(signed(testSigningKey, time.Now(), newToken(), e), http.StatusOK, "duplicate")
	if got := f.temporal.to(inv); len(got) != 1 || got[0].Outcome != domain.OutcomeComplained {
		t.Fatalf("signals %+v, want one complaint", got)
	}
}

// When the workflow cannot be told, Mailgun is asked to retry, and its retry, with the very
// same signed request, goes through.
func TestMailgunWebhookRetriedAfterTemporalFailure(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("retry@example.com")
	e := mailgunEvent("ev-bounce-retry", "failed", key)
	e["severity"] = "permanent"
	body := signed(testSigningKey, time.Now(), newToken(), e)
	f.temporal.err = serviceerror.NewUnavailable("temporal is down")
	f.expect(body, http.StatusServiceUnavailable, string(domain.CodeTemporarilyUnavailable))
	f.expect(body, http.StatusOK, "recorded")
	if got := f.temporal.to(inv); len(got) != 1 {
		t.Fatalf("signals %+v, want one", got)
	}
	// A finished invitation's workflow is gone; that is no reason for Mailgun to retry.
	e = mailgunEvent("ev-complaint-late", "complained", key)
	f.temporal.err = serviceerror.NewNotFound("workflow execution already completed")
	f.expect(signed(testSigningKey, time.Now(), newToken(), e), http.StatusOK, "recorded")
}

func TestMailgunWebhookTemporaryFailureIsOnlyRecorded(t *testing.T) {
	f := newWebhookFixture(t, testSigningKey)
	inv, key := f.sentInvitation("deferred@example.com")
	e := mailgunEvent("ev-deferred", "failed", key)
	e["severity"] = "temporary"
	e["delivery-status"] = map[string]any{"code": 421, "message": "try again later"}
	f.expect(signed(testSigningKey, time.Now(), newToken(), e), http.StatusOK, "recorded")
	f.expect(signed(testSigningKey, time.Now(), newToken(), mailgunEvent("ev-delivered-later", "delivered", key)), http.StatusOK, "recorded")
	// A late temporary failure does not undo the delivery.
	e["id"] = "ev-deferred-late"
	f.expect(signed(testSigningKey, time.Now(), newToken(), e), http.StatusOK, "recorded")
	if outcome, _, _ := f.store.DeliveryOutcome(context.Background(), key); outcome != domain.OutcomeDelivered {
		t.Fatalf("outcome %s, want delivered", outcome)
	}
	if got := f.deliveryStatus(inv); got != domain.DeliveryDelivered || len(f.temporal.to(inv)) != 0 {
		t.Fatalf("delivery status %s, signals %+v", got, f.temporal.to(inv))
	}
}

func TestMailgunWebhookNotConfigured(t *testing.T) {
	f := newWebhookFixture(t, "")
	f.expect(signed(testSigningKey, time.Now(), newToken(), mailgunEvent("ev", "delivered", "k")), http.StatusNotFound, string(domain.CodeMailgunWebhooksDisabled))
}
