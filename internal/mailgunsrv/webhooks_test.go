package mailgunsrv

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"

	"github.com/usherhq/usher/internal/mail"
)

// The server posts one signed webhook per recipient: delivered, or a permanent failure for
// the addresses set to bounce; Usher's own parser and verifier accept them.
func TestWebhooksAfterAccepting(t *testing.T) {
	const signingKey = "webhook-signing-key"
	var mu sync.Mutex
	var hooks []mail.MailgunWebhook
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hook, err := mail.ParseMailgunWebhook(body)
		if err != nil {
			t.Errorf("parse: %v\n%s", err, body)
		} else if err := hook.Verify(signingKey, time.Now()); err != nil {
			t.Errorf("verify: %v", err)
		}
		mu.Lock()
		hooks = append(hooks, hook)
		first := len(hooks) == 1
		mu.Unlock()
		if first {
			w.WriteHeader(http.StatusServiceUnavailable) // retried
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer receiver.Close()

	srv, _, mg := newTestServer(t, Options{Bounce: BounceLocalPartPrefix("bounce")})
	srv.SetWebhook(receiver.URL, signingKey)
	m := mailgun.NewMessage("Usher <noreply@usher.test>", "Hello", "Hello there", "ann@example.com", "Bounce-1@example.com")
	if err := m.AddVariable("usher_delivery_id", "run/1/invite"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mg.Send(ctxT(t), m); err != nil {
		t.Fatal(err)
	}
	srv.WaitWebhooks()

	mu.Lock()
	defer mu.Unlock()
	if len(hooks) != 3 {
		t.Fatalf("%d webhooks, want 2 and a retry", len(hooks))
	}
	if hooks[0].ID != hooks[1].ID || hooks[0].Signature.Token == hooks[1].Signature.Token {
		t.Error("a retry must carry the same event ID with a fresh signature")
	}
	byEvent := map[string]mail.MailgunWebhook{}
	for _, h := range hooks[1:] {
		byEvent[h.Event] = h
		if h.DeliveryID != "run/1/invite" {
			t.Errorf("%s: delivery ID %q", h.Event, h.DeliveryID)
		}
	}
	if _, ok := byEvent[mail.EventDelivered]; !ok {
		t.Error("no delivered event")
	}
	if f, ok := byEvent[mail.EventFailed]; !ok || f.Severity != mail.SeverityPermanent || f.Reason == "" {
		t.Errorf("bounce: %+v", f)
	}
}
