package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	netmail "net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
)

// MailgunConfig configures the Mailgun adapter.
type MailgunConfig struct {
	// Domain is the Mailgun sending domain, e.g. "mg.example.com".
	Domain string
	// APIKey is the Mailgun private API key.
	APIKey string
	// APIBase is the API base URL; "" means Mailgun's default US base
	// (mailgun.APIBaseUS). Use mailgun.APIBaseEU for EU domains, or the URL
	// of a local mailgunsrv. A base without a /v1../v5 version segment gets
	// "/v3" appended, as mailgun-go requires it.
	APIBase string
	// From is the From header of every message, e.g. "Usher <noreply@example.com>".
	From string
	// HTTPClient is used for the API calls (it is copied, never modified).
	// nil means a client with a 30 s timeout.
	HTTPClient *http.Client
}

// Mailgun sends Usher's e-mail through Mailgun's HTTP API using mailgun-go.
type Mailgun struct {
	mg     *mailgun.MailgunImpl
	from   string
	domain string
	apiKey string
}

var _ Sender = (*Mailgun)(nil)

// findSentWindow is how far back FindSent looks for an accepted message.
const findSentWindow = 24 * time.Hour

// findSentMaxPages bounds FindSent's walk through event pages.
const findSentMaxPages = 50

// maxRetryAfter caps how long a provider may ask us to wait.
const maxRetryAfter = time.Hour

// now is the clock, replaceable in tests.
var now = time.Now

// NewMailgun returns a Mailgun adapter for cfg.
func NewMailgun(cfg MailgunConfig) *Mailgun {
	mg := mailgun.NewMailgun(cfg.Domain, cfg.APIKey)
	if cfg.APIBase != "" {
		mg.SetAPIBase(normalizeAPIBase(cfg.APIBase))
	}
	var client http.Client
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	} else {
		client.Timeout = 30 * time.Second
	}
	client.Transport = &retryHintTransport{base: client.Transport}
	mg.SetClient(&client)
	return &Mailgun{mg: mg, from: cfg.From, domain: cfg.Domain, apiKey: cfg.APIKey}
}

var versionSuffix = regexp.MustCompile(`/v[1-5]$`)

func normalizeAPIBase(base string) string {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if !versionSuffix.MatchString(base) {
		base += "/v3"
	}
	return base
}

// Send hands m to Mailgun and returns Mailgun's message id (without the
// angle brackets Mailgun puts around it), the same form FindSent returns.
func (g *Mailgun) Send(ctx context.Context, m Message) (string, error) {
	if err := g.checkConfig(); err != nil {
		return "", err
	}
	if err := validateMessage(m); err != nil {
		return "", err
	}

	msg := mailgun.NewMessage(g.from, m.Subject, m.Text, m.To)
	if m.HTML != "" {
		msg.SetHTML(m.HTML)
	}
	if m.Tag != "" {
		if err := msg.AddTag(m.Tag); err != nil {
			return "", &PermanentError{Reason: "invalid tag"}
		}
	}
	if err := msg.AddVariable(DeliveryIDVariable, m.DeliveryID); err != nil {
		return "", &PermanentError{Reason: "invalid delivery id"}
	}
	// Our links carry secret tokens: keep them out of Mailgun's click
	// tracking redirects and "clicked" events.
	msg.SetTrackingClicks(false)

	hint := &retryHint{}
	_, id, err := g.mg.Send(withRetryHint(ctx, hint), msg)
	if err != nil {
		return "", classify(ctx, err, hint)
	}
	id = trimMessageID(id)
	if id == "" {
		return "", &TransientError{StatusCode: http.StatusOK, Reason: "mailgun accepted the request but returned no message id"}
	}
	return id, nil
}

// FindSent looks through the last day of Mailgun "accepted" events for one
// carrying deliveryID in the usher_delivery_id user variable.
//
// Mailgun's events API filters on user variables with the user-variables
// query parameter holding a JSON object ({"usher_delivery_id":"…"}); the
// result is checked again here, so a looser server-side match is harmless.
// Note that Mailgun indexes events asynchronously: a message accepted a
// moment ago may not be found yet.
func (g *Mailgun) FindSent(ctx context.Context, deliveryID string) (string, bool, error) {
	if err := g.checkConfig(); err != nil {
		return "", false, err
	}
	if deliveryID == "" {
		return "", false, &PermanentError{Reason: "missing delivery id"}
	}
	filter, err := json.Marshal(map[string]json.RawMessage{DeliveryIDVariable: deliveryIDFilterValue(deliveryID)})
	if err != nil {
		return "", false, &PermanentError{Reason: "invalid delivery id"}
	}
	it := g.mg.ListEvents(&mailgun.ListEventOptions{
		Begin:          now().Add(-findSentWindow),
		ForceAscending: true,
		Limit:          100,
		Filter: map[string]string{
			"event":          "accepted",
			"user-variables": string(filter),
		},
	})
	hint := &retryHint{}
	hctx := withRetryHint(ctx, hint)
	var page []mailgun.Event
	for pages := 0; it.Next(hctx, &page); pages++ {
		if pages >= findSentMaxPages {
			return "", false, &PermanentError{Reason: "mailgun event search returned too many events"}
		}
		for _, e := range page {
			a, ok := e.(*events.Accepted)
			if !ok || !hasDeliveryID(a.UserVariables, deliveryID) {
				continue
			}
			if id := trimMessageID(a.Message.Headers.MessageID); id != "" {
				return id, true, nil
			}
		}
	}
	if err := it.Err(); err != nil {
		return "", false, classify(ctx, err, hint)
	}
	return "", false, nil
}

func (g *Mailgun) checkConfig() error {
	switch {
	case g.domain == "":
		return &PermanentError{Reason: "mailgun is not configured: missing domain"}
	case g.apiKey == "":
		return &PermanentError{Reason: "mailgun is not configured: missing API key"}
	case g.from == "":
		return &PermanentError{Reason: "mailgun is not configured: missing From address"}
	}
	return nil
}

func validateMessage(m Message) error {
	switch {
	case m.DeliveryID == "":
		return &PermanentError{Reason: "missing delivery id"}
	case strings.TrimSpace(m.To) == "":
		return &PermanentError{Reason: "missing recipient"}
	case strings.TrimSpace(m.Subject) == "":
		return &PermanentError{Reason: "missing subject"}
	case strings.ContainsAny(m.Subject, "\r\n"):
		return &PermanentError{Reason: "subject contains a line break"}
	case m.Text == "" && m.HTML == "":
		return &PermanentError{Reason: "missing body"}
	}
	if _, err := netmail.ParseAddress(m.To); err != nil {
		return &PermanentError{Reason: "invalid recipient address"}
	}
	return nil
}

// deliveryIDFilterValue is the JSON value to look for. Mailgun parses v:*
// values that are valid JSON, so an id like "42" is stored as the number 42
// and must be searched for as such; anything else is a JSON string.
func deliveryIDFilterValue(id string) json.RawMessage {
	if t := strings.TrimSpace(id); t == id && json.Valid([]byte(id)) &&
		!strings.HasPrefix(id, "{") && !strings.HasPrefix(id, "[") && !strings.HasPrefix(id, `"`) {
		return json.RawMessage(id)
	}
	b, _ := json.Marshal(id)
	return b
}

func hasDeliveryID(userVariables any, deliveryID string) bool {
	vars, ok := userVariables.(map[string]any)
	if !ok {
		return false
	}
	switch v := vars[DeliveryIDVariable].(type) {
	case string:
		return v == deliveryID
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64) == deliveryID
	case bool:
		return strconv.FormatBool(v) == deliveryID
	case json.Number:
		return v.String() == deliveryID
	}
	return false
}

func trimMessageID(id string) string {
	return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
}

// classify turns a mailgun-go error into *PermanentError or *TransientError.
// ctx is the caller's context (to recognise cancellation and timeouts).
func classify(ctx context.Context, err error, hint *retryHint) error {
	var ure *mailgun.UnexpectedResponseError
	if errors.As(err, &ure) {
		status := ure.Actual
		reason := fmt.Sprintf("mailgun %d: %s", status, summarizeBody(ure.Data, status))
		if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout ||
			status == http.StatusTooEarly || status >= 500 {
			return &TransientError{StatusCode: status, Reason: reason, RetryAfter: hint.get()}
		}
		return &PermanentError{StatusCode: status, Reason: reason}
	}
	if errors.Is(err, mailgun.ErrInvalidMessage) {
		return &PermanentError{Reason: "mailgun refused the message as incomplete"}
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		reason := "mailgun: request canceled"
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			reason = "mailgun: request timed out"
		}
		return &TransientError{Reason: reason, cause: ctxErr}
	}
	var jsonSyntax *json.SyntaxError
	var jsonType *json.UnmarshalTypeError
	if errors.As(err, &jsonSyntax) || errors.As(err, &jsonType) {
		return &TransientError{StatusCode: http.StatusOK, Reason: "mailgun: unreadable answer", cause: err}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return &TransientError{Reason: "mailgun: request timed out", cause: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &TransientError{Reason: "mailgun: connection closed before an answer", cause: err}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		return &TransientError{Reason: "mailgun: network error: " + sanitizeReason(urlErr.Err.Error()), cause: err}
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &TransientError{Reason: "mailgun: network error: " + sanitizeReason(opErr.Error()), cause: err}
	}
	// Anything else (unexpected client-side failure): retrying is the safe
	// choice; FindSent recovers a send that did go through.
	return &TransientError{Reason: "mailgun: request failed", cause: err}
}

// summarizeBody extracts Mailgun's {"message": "..."} text, or a short
// plain-text body such as "Forbidden", from an error answer.
func summarizeBody(data []byte, status int) string {
	var body struct {
		Message string `json:"message"`
	}
	text := ""
	if json.Unmarshal(data, &body) == nil && body.Message != "" {
		text = body.Message
	} else if t := strings.TrimSpace(string(data)); t != "" && len(t) <= 200 && !strings.ContainsAny(t, "<>{}[]") {
		text = t
	}
	text = sanitizeReason(text)
	if text == "" {
		text = strings.ToLower(http.StatusText(status))
		if text == "" {
			text = "unexpected answer"
		}
	}
	return text
}

var (
	linkPattern      = regexp.MustCompile(`(?i)\b(?:https?|ftp)://\S+|\bwww\.\S+`)
	checkDocsPattern = regexp.MustCompile(`(?i)[.,;:\s]*please check (?:the )?documentation[.!]?`)
)

const maxReasonRunes = 160

// sanitizeReason makes provider text fit for a Reason: one line, no links,
// no boilerplate, bounded length.
func sanitizeReason(s string) string {
	s = linkPattern.ReplaceAllString(s, "[link]")
	s = checkDocsPattern.ReplaceAllString(s, "")
	s = strings.Join(strings.Fields(s), " ")
	s = strings.TrimRight(s, " .")
	if utf8.RuneCountInString(s) > maxReasonRunes {
		r := []rune(s)
		s = string(r[:maxReasonRunes]) + "…"
	}
	return s
}

// retryHint carries a provider's "retry after" from the transport, which sees
// the response headers, to classify, which only sees mailgun-go's error.
type retryHint struct {
	mu sync.Mutex
	d  time.Duration
}

func (h *retryHint) set(d time.Duration) {
	h.mu.Lock()
	h.d = d
	h.mu.Unlock()
}

func (h *retryHint) get() time.Duration {
	if h == nil {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.d
}

type retryHintKey struct{}

func withRetryHint(ctx context.Context, h *retryHint) context.Context {
	return context.WithValue(ctx, retryHintKey{}, h)
}

// retryHintTransport records, for 429 and 503 answers, when the provider
// asked us to retry, into the retryHint found in the request's context
// (mailgun-go builds its requests with the caller's context).
type retryHintTransport struct {
	base http.RoundTripper
}

func (t *retryHintTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := base.RoundTrip(req)
	if err != nil || resp == nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
		if h, ok := req.Context().Value(retryHintKey{}).(*retryHint); ok {
			if d := retryAfter(resp.Header, resp.StatusCode, now()); d > 0 {
				h.set(d)
			}
		}
	}
	return resp, nil
}

// retryAfter reads Retry-After (seconds or HTTP date) and, for 429,
// X-RateLimit-Reset, which Mailgun sends as a unix time in seconds or
// milliseconds (small values are taken as seconds from now). A reset time
// already past means "now": 1 s. The result is capped at maxRetryAfter.
func retryAfter(h http.Header, status int, at time.Time) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			d = time.Duration(secs * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(at)
			if d <= 0 {
				d = time.Second
			}
		}
	}
	if d <= 0 && status == http.StatusTooManyRequests {
		if v := strings.TrimSpace(h.Get("X-RateLimit-Reset")); v != "" {
			if n, err := strconv.ParseFloat(v, 64); err == nil && n > 0 {
				switch {
				case n >= 1e12: // unix milliseconds
					d = time.UnixMilli(int64(n)).Sub(at)
				case n >= 1e9: // unix seconds
					d = time.Unix(0, int64(n*1e9)).Sub(at)
				default: // seconds from now
					d = time.Duration(n * float64(time.Second))
				}
				if d <= 0 {
					d = time.Second
				}
			}
		}
	}
	if d < 0 {
		d = 0
	}
	if d > maxRetryAfter {
		d = maxRetryAfter
	}
	return d
}
