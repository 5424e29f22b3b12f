package mail

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mailgun/mailgun-go/v4"
)

// MailgunWebhookWindow is how far the timestamp of a signed Mailgun webhook may be from
// our clock, either way. Mailgun signs each request when it sends it, so a genuine request
// is seconds old; five minutes leaves room for clock skew while keeping the list of
// tokens already seen (which refuses replays within the window) short.
const MailgunWebhookWindow = 5 * time.Minute

// Errors of ParseMailgunWebhook and MailgunWebhook.Verify.
var (
	ErrWebhookMalformed = errors.New("not a Mailgun webhook")
	ErrSignatureInvalid = errors.New("the signature does not match")
	ErrSignatureStale   = errors.New("the signature's timestamp is too far from now")
)

// Mailgun event names and failure severities (webhooks and events API).
const (
	EventDelivered  = "delivered"
	EventFailed     = "failed"
	EventComplained = "complained"

	SeverityPermanent = "permanent"
	SeverityTemporary = "temporary"
)

// MailgunWebhook is one event webhook from Mailgun (the JSON "webhooks" format:
// {"signature": {...}, "event-data": {...}}), reduced to what Usher uses.
type MailgunWebhook struct {
	Signature mailgun.Signature
	// ID is Mailgun's event ID, the same on every retry of the webhook.
	ID string
	// Event is delivered, failed, complained, opened, …
	Event string
	// Severity of a failed event: permanent or temporary.
	Severity string
	// DeliveryID is the message's usher_delivery_id user variable; "" if it had none.
	DeliveryID string
	// Reason explains a failure in one line, with e-mail addresses removed.
	Reason string
	// At is when the event happened.
	At time.Time
}

// ParseMailgunWebhook reads the body of a Mailgun event webhook. It checks the shape only;
// call Verify before believing a word of it.
func ParseMailgunWebhook(body []byte) (MailgunWebhook, error) {
	var payload struct {
		Signature *mailgun.Signature `json:"signature"`
		EventData *struct {
			ID             string          `json:"id"`
			Event          string          `json:"event"`
			Severity       string          `json:"severity"`
			Reason         string          `json:"reason"`
			Timestamp      float64         `json:"timestamp"`
			UserVariables  json.RawMessage `json:"user-variables"`
			DeliveryStatus struct {
				Code        json.RawMessage `json:"code"`
				Message     string          `json:"message"`
				Description string          `json:"description"`
			} `json:"delivery-status"`
		} `json:"event-data"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		return MailgunWebhook{}, fmt.Errorf("%w: %v", ErrWebhookMalformed, err)
	}
	if payload.Signature == nil || payload.EventData == nil {
		return MailgunWebhook{}, fmt.Errorf("%w: signature and event-data are required", ErrWebhookMalformed)
	}
	ev := payload.EventData
	if ev.ID == "" || ev.Event == "" {
		return MailgunWebhook{}, fmt.Errorf("%w: event-data needs an id and an event", ErrWebhookMalformed)
	}
	w := MailgunWebhook{
		Signature:  *payload.Signature,
		ID:         ev.ID,
		Event:      strings.ToLower(ev.Event),
		Severity:   strings.ToLower(ev.Severity),
		DeliveryID: userVariable(ev.UserVariables, DeliveryIDVariable),
	}
	if ev.Timestamp > 0 && ev.Timestamp < math.MaxInt32*2 {
		sec, frac := math.Modf(ev.Timestamp)
		w.At = time.Unix(int64(sec), int64(frac*1e9)).UTC()
	}
	if w.Event == EventFailed {
		parts := []string{strings.Trim(string(ev.DeliveryStatus.Code), `" `)}
		for _, s := range []string{ev.DeliveryStatus.Message, ev.DeliveryStatus.Description} {
			if s != "" {
				parts = append(parts, s)
				break
			}
		}
		if ev.Reason != "" && ev.Reason != "generic" {
			parts = append(parts, "("+ev.Reason+")")
		}
		w.Reason = scrubAddresses(strings.Join(strings.Fields(strings.Join(parts, " ")), " "))
		if w.Reason == "" || w.Reason == "null" {
			w.Reason = "the recipient's mail server refused the message"
		}
	}
	return w, nil
}

// userVariable reads one user variable, whether Mailgun sent the variables as an object
// or as a JSON string holding one.
func userVariable(raw json.RawMessage, name string) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		raw = []byte(s)
	}
	var vars map[string]any
	if json.Unmarshal(raw, &vars) != nil {
		return ""
	}
	if s, ok := vars[name].(string); ok {
		return s
	}
	return ""
}

var addressPattern = regexp.MustCompile(`[^\s<>()\[\]"',;:]+@[^\s<>()\[\]"',;:]+`)

// scrubAddresses removes e-mail addresses from a provider's message, which goes into
// workflow history and to the inviter.
func scrubAddresses(s string) string {
	return addressPattern.ReplaceAllString(s, "<address>")
}

// Verify checks that the webhook was signed with signingKey (HMAC-SHA256 of timestamp and
// token, compared in constant time by mailgun-go) and that its timestamp is within
// MailgunWebhookWindow of now.
func (w MailgunWebhook) Verify(signingKey string, now time.Time) error {
	if signingKey == "" || w.Signature.Token == "" || w.Signature.TimeStamp == "" || w.Signature.Signature == "" {
		return ErrSignatureInvalid
	}
	mg := mailgun.NewMailgun("", "")
	mg.SetWebhookSigningKey(signingKey)
	ok, err := mg.VerifyWebhookSignature(w.Signature)
	if err != nil || !ok {
		return ErrSignatureInvalid
	}
	sec, err := strconv.ParseInt(w.Signature.TimeStamp, 10, 64)
	if err != nil {
		return ErrSignatureInvalid
	}
	if skew := now.Sub(time.Unix(sec, 0)); skew > MailgunWebhookWindow || skew < -MailgunWebhookWindow {
		return ErrSignatureStale
	}
	return nil
}
