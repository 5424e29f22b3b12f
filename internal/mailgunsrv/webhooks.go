package mailgunsrv

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Event webhooks: like Mailgun, the server tells a configured URL what became of each
// message after accepting it, in Mailgun's JSON webhook format, signed with the webhook
// signing key:
//
//	{"signature": {"timestamp", "token", "signature": hex HMAC-SHA256(key, timestamp+token)},
//	 "event-data": {"id", "event": "delivered" | "failed", "severity": "permanent", ...}}
//
// Every recipient of an accepted message gets "delivered", except those Options.Bounce
// picks, which get a permanent "failed" (a 550 bounce). A webhook answered other than 2xx
// is retried a few times, as Mailgun does (it stops early on 406).

// webhookAttempts is how many times one event is posted before giving up.
const webhookAttempts = 4

// SetWebhook points the event webhooks at url (none when "") signed with signingKey, for a
// receiver that starts after the server.
func (s *Server) SetWebhook(url, signingKey string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.WebhookURL, s.opts.WebhookSigningKey = url, signingKey
}

// WaitWebhooks waits until every webhook under way has been posted (or given up).
func (s *Server) WaitWebhooks() { s.webhooks.Wait() }

// webhookEvent is the event-data of one webhook.
type webhookEvent struct {
	ID              string            `json:"id"`
	Event           string            `json:"event"`
	Severity        string            `json:"severity,omitempty"`
	Reason          string            `json:"reason,omitempty"`
	Timestamp       float64           `json:"timestamp"`
	LogLevel        string            `json:"log-level"`
	Recipient       string            `json:"recipient"`
	RecipientDomain string            `json:"recipient-domain"`
	Tags            []string          `json:"tags"`
	UserVariables   map[string]any    `json:"user-variables"`
	Message         webhookMessage    `json:"message"`
	DeliveryStatus  webhookDelivery   `json:"delivery-status"`
	Flags           map[string]bool   `json:"flags"`
	Envelope        map[string]string `json:"envelope"`
}

type webhookMessage struct {
	Headers eventHeaders `json:"headers"`
}

type webhookDelivery struct {
	Code        int    `json:"code"`
	Message     string `json:"message"`
	Description string `json:"description"`
	AttemptNo   int    `json:"attempt-no"`
}

// scheduleWebhooksLocked posts, in the background after Options.WebhookDelay, one event
// per recipient of the message in ev. s.mu is held.
func (s *Server) scheduleWebhooksLocked(evs []*event) {
	url, key, delay := s.opts.WebhookURL, s.opts.WebhookSigningKey, s.opts.WebhookDelay
	if url == "" || len(evs) == 0 {
		return
	}
	payloads := make([]webhookEvent, 0, len(evs))
	for _, ev := range evs {
		payloads = append(payloads, s.webhookEventFor(ev))
	}
	s.webhooks.Add(1)
	go func() {
		defer s.webhooks.Done()
		if delay > 0 {
			time.Sleep(delay)
		}
		for _, p := range payloads {
			p.Timestamp = float64(time.Now().UnixMicro()) / 1e6
			s.postWebhook(url, key, p)
		}
	}()
}

func (s *Server) webhookEventFor(ev *event) webhookEvent {
	item := makeItem(ev)
	uv := make(map[string]any, len(item.UserVariables))
	for k, v := range item.UserVariables {
		uv[k] = v
	}
	w := webhookEvent{
		ID: randomID(), Event: "delivered", LogLevel: "info",
		Recipient: item.Recipient, RecipientDomain: item.RecipientDomain, Tags: item.Tags, UserVariables: uv,
		Message:        webhookMessage{Headers: item.Message.Headers},
		DeliveryStatus: webhookDelivery{Code: 250, Message: "OK", AttemptNo: 1},
		Flags:          map[string]bool{"is-test-mode": item.Flags.IsTestMode, "is-authenticated": true},
		Envelope:       map[string]string{"sender": item.Envelope.Sender, "targets": item.Envelope.Targets, "transport": "smtp"},
	}
	if s.opts.Bounce != nil && s.opts.Bounce(ev.recipient) {
		w.Event, w.Severity, w.Reason, w.LogLevel = "failed", "permanent", "bounce", "error"
		w.DeliveryStatus = webhookDelivery{
			Code: 550, AttemptNo: 1,
			Message:     "5.1.1 The email account that you tried to reach does not exist",
			Description: "",
		}
	}
	return w
}

var webhookClient = &http.Client{Timeout: 10 * time.Second}

// postWebhook posts one event, signed afresh for each attempt as Mailgun does.
func (s *Server) postWebhook(url, key string, ev webhookEvent) {
	for attempt := 1; attempt <= webhookAttempts; attempt++ {
		body, err := json.Marshal(map[string]any{"signature": signWebhook(key, time.Now()), "event-data": ev})
		if err != nil {
			return
		}
		status, err := post(url, body)
		if err == nil && (status/100 == 2 || status == http.StatusNotAcceptable) {
			return
		}
		if s.opts.Logger != nil {
			s.opts.Logger.Warn("mailgunsrv: webhook not taken", "event", ev.Event, "id", ev.ID, "status", status, "error", err, "attempt", attempt)
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
}

func post(url string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), webhookClient.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mailgun/treq-16.12.0")
	res, err := webhookClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// signWebhook is Mailgun's webhook signature: a fresh token, and the hex HMAC-SHA256 of
// timestamp and token under key.
func signWebhook(key string, now time.Time) map[string]string {
	var b [25]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	timestamp := strconv.FormatInt(now.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(timestamp + token))
	return map[string]string{"timestamp": timestamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))}
}

// BounceLocalPartPrefix returns a Bounce function picking the addresses whose local part
// starts with prefix (compared case-insensitively), e.g. "bounce" for bounce@… and
// bounce-7@….
func BounceLocalPartPrefix(prefix string) func(string) bool {
	prefix = strings.ToLower(prefix)
	return func(addr string) bool {
		local, _, ok := strings.Cut(strings.ToLower(normalizeAddr(addr)), "@")
		return ok && strings.HasPrefix(local, prefix)
	}
}
