package sms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// DefaultTwilioAPIBase is Twilio's REST API base URL.
const DefaultTwilioAPIBase = "https://api.twilio.com"

// TwilioConfig configures the Twilio adapter.
type TwilioConfig struct {
	// AccountSID ("AC…") and AuthToken authenticate the API calls (HTTP
	// basic auth). An API key SID ("SK…") and secret do not work here: the
	// account SID is also part of every URL.
	AccountSID string
	AuthToken  string
	// From is the sender: a Twilio phone number in E.164 form, or an
	// alphanumeric sender ID where the destination allows one.
	From string
	// APIBase is the API base URL without the /2010-04-01 version; ""
	// means DefaultTwilioAPIBase. Point it at a local twiliosrv in tests
	// and `usher dev`.
	APIBase string
	// HTTPClient is used for the API calls. nil means a client with a 30 s
	// timeout.
	HTTPClient *http.Client
}

// Configured reports whether the account SID, auth token and sender are
// all set, i.e. whether SMS can be sent at all.
func (c TwilioConfig) Configured() bool {
	return strings.TrimSpace(c.AccountSID) != "" && strings.TrimSpace(c.AuthToken) != "" &&
		strings.TrimSpace(c.From) != ""
}

// Twilio sends text messages through Twilio's Programmable Messaging REST
// API (POST /2010-04-01/Accounts/{AccountSid}/Messages.json), with
// net/http: no SDK.
type Twilio struct {
	cfg    TwilioConfig
	base   *url.URL // nil when APIBase is unusable
	client *http.Client
}

var _ Sender = (*Twilio)(nil)

const (
	// findSentWindow is how far back FindSent looks for an accepted message.
	findSentWindow = 24 * time.Hour
	// findSentMaxPages bounds FindSent's walk through list pages.
	findSentMaxPages = 10
	// maxRetryAfter caps how long a provider may ask us to wait.
	maxRetryAfter = time.Hour
	// maxAnswerBytes bounds what is read of an answer (a full list page of
	// 1000 messages of up to 1600 characters fits).
	maxAnswerBytes = 16 << 20
	// maxBodyChars is Twilio's limit on a message body (error 21617).
	maxBodyChars = 1600
)

// findSentPageSize is the PageSize FindSent asks for (Twilio's maximum);
// tests lower it to exercise paging.
var findSentPageSize = 1000

// now is the clock, replaceable in tests.
var now = time.Now

// NewTwilio returns a Twilio adapter for cfg. A malformed APIBase makes
// every call fail with a *PermanentError.
func NewTwilio(cfg TwilioConfig) *Twilio {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	t := &Twilio{cfg: cfg, client: client}
	base := strings.TrimSpace(cfg.APIBase)
	if base == "" {
		base = DefaultTwilioAPIBase
	}
	base = strings.TrimSuffix(strings.TrimRight(base, "/"), "/2010-04-01")
	if u, err := url.Parse(base); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		u.RawQuery, u.Fragment = "", ""
		t.base = u
	}
	return t
}

// e164 is the form Twilio wants for To.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// Send hands m to Twilio and returns the message SID ("SM…").
func (t *Twilio) Send(ctx context.Context, m Message) (string, error) {
	if err := t.checkConfig(); err != nil {
		return "", err
	}
	if err := validateMessage(m); err != nil {
		return "", err
	}
	form := url.Values{"To": {m.To}, "From": {t.cfg.From}, "Body": {m.Body}}
	req, err := t.newRequest(ctx, http.MethodPost, t.messagesURL(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	status, body, err := t.do(ctx, req, m.Body)
	if err != nil {
		return "", err
	}
	var created struct {
		SID string `json:"sid"`
	}
	if json.Unmarshal(body, &created) != nil || created.SID == "" {
		// Twilio took the message (2xx) but we cannot tell its SID: the
		// caller retries, and FindSent recognises it.
		return "", &TransientError{StatusCode: status, Reason: "twilio accepted the request but returned no message sid"}
	}
	return created.SID, nil
}

// FindSent looks through the messages Twilio holds for m.To, created in the
// last 24 hours, for an outgoing one whose body is exactly m.Body.
//
// Why not a delivery ID: Twilio's Message resource has no idempotency key
// and no metadata field (nothing like Mailgun's user variables), and the
// body is what the recipient reads, so the only trace of a send is its
// recipient and text. Because Usher's bodies carry a personal link they
// are unique per delivery; two deliveries with identical text to the same
// number would be mistaken for one.
//
// Why no DateSent filter: Twilio filters and sorts the list by date_sent,
// which stays null while a message is queued — exactly the state of a
// message accepted a moment before a crash. So the list is filtered by To
// only, and the 24-hour window is applied here to date_created.
//
// Bodies are compared as Twilio returns them: on an account with message
// body redaction (or after a body was redacted), nothing is found.
func (t *Twilio) FindSent(ctx context.Context, m Message) (string, bool, error) {
	if err := t.checkConfig(); err != nil {
		return "", false, err
	}
	if err := validateMessage(m); err != nil {
		return "", false, err
	}
	cutoff := now().Add(-findSentWindow)
	q := url.Values{"To": {m.To}, "PageSize": {strconv.Itoa(findSentPageSize)}}
	next := t.messagesURL() + "?" + q.Encode()
	for pages := 0; next != ""; pages++ {
		if pages >= findSentMaxPages {
			return "", false, &PermanentError{Reason: "twilio message search returned too many messages"}
		}
		req, err := t.newRequest(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", false, err
		}
		status, body, err := t.do(ctx, req, m.Body)
		if err != nil {
			return "", false, err
		}
		var page struct {
			Messages []struct {
				SID         string `json:"sid"`
				To          string `json:"to"`
				Body        string `json:"body"`
				Direction   string `json:"direction"`
				DateCreated string `json:"date_created"`
			} `json:"messages"`
			NextPageURI *string `json:"next_page_uri"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return "", false, &TransientError{StatusCode: status, Reason: "twilio: unreadable message list", cause: err}
		}
		for _, msg := range page.Messages {
			if msg.SID == "" || msg.To != m.To || !strings.HasPrefix(msg.Body, m.Body) ||
				!strings.HasPrefix(msg.Direction, "outbound") {
				continue
			}
			if created, err := parseTwilioTime(msg.DateCreated); err == nil && (created.Before(cutoff) || created.Before(m.NotBefore.Add(-time.Minute))) {
				continue
			}
			return msg.SID, true, nil
		}
		next = ""
		if page.NextPageURI != nil && *page.NextPageURI != "" {
			if next, err = t.resolve(*page.NextPageURI); err != nil {
				return "", false, err
			}
		}
	}
	return "", false, nil
}

func (t *Twilio) checkConfig() error {
	switch {
	case t.base == nil:
		return &PermanentError{Reason: "twilio is not configured: invalid API base URL"}
	case strings.TrimSpace(t.cfg.AccountSID) == "":
		return &PermanentError{Reason: "twilio is not configured: missing account SID"}
	case strings.TrimSpace(t.cfg.AuthToken) == "":
		return &PermanentError{Reason: "twilio is not configured: missing auth token"}
	case strings.TrimSpace(t.cfg.From) == "":
		return &PermanentError{Reason: "twilio is not configured: missing From number"}
	}
	return nil
}

func validateMessage(m Message) error {
	switch {
	case strings.TrimSpace(m.To) == "":
		return &PermanentError{Reason: "missing recipient"}
	case !e164.MatchString(m.To):
		return &PermanentError{Reason: "recipient is not an E.164 phone number"}
	case strings.TrimSpace(m.Body) == "":
		return &PermanentError{Reason: "missing body"}
	case utf8.RuneCountInString(m.Body) > maxBodyChars:
		return &PermanentError{Reason: fmt.Sprintf("body longer than %d characters", maxBodyChars)}
	}
	return nil
}

func (t *Twilio) messagesURL() string {
	return t.base.String() + "/2010-04-01/Accounts/" + url.PathEscape(t.cfg.AccountSID) + "/Messages.json"
}

// resolve turns a paging URI (Twilio gives them relative to the API host)
// into a URL, refusing one on another host: the credentials go with it.
func (t *Twilio) resolve(ref string) (string, error) {
	u, err := t.base.Parse(ref)
	if err != nil || u.Scheme != t.base.Scheme || u.Host != t.base.Host {
		return "", &PermanentError{Reason: "twilio returned an unusable paging URL"}
	}
	return u.String(), nil
}

func (t *Twilio) newRequest(ctx context.Context, method, target string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, &PermanentError{Reason: "twilio: cannot build the request"}
	}
	req.SetBasicAuth(t.cfg.AccountSID, t.cfg.AuthToken)
	req.Header.Set("Accept", "application/json")
	return req, nil
}

// do sends req and returns the status and body of a 2xx answer, or a
// *PermanentError / *TransientError. secret (the message body) is kept out
// of any Reason.
func (t *Twilio) do(ctx context.Context, req *http.Request, secret string) (int, []byte, error) {
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, nil, classifyNetError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if err != nil {
			return 0, nil, &TransientError{StatusCode: resp.StatusCode, Reason: "twilio: connection lost while reading the answer", cause: err}
		}
		return resp.StatusCode, body, nil
	}
	return 0, nil, classifyStatus(resp.StatusCode, resp.Header, body, secret)
}

// twilioCodeReasons are short reasons for the Twilio error codes a send
// may meet (https://www.twilio.com/docs/api/errors); they replace Twilio's
// own message, which may quote the phone number.
var twilioCodeReasons = map[int]string{
	14107: "message rate limit exceeded",
	20003: "authentication failed (check the account SID and auth token)",
	20005: "account not active",
	20404: "resource not found (check the account SID)",
	20429: "too many requests",
	21211: "invalid 'To' number",
	21212: "invalid 'From' number",
	21408: "sending to the 'To' number's region is not enabled",
	21602: "message body is required",
	21603: "'From' number is required",
	21604: "'To' number is required",
	21606: "'From' number cannot send SMS from this account",
	21608: "trial accounts can only send to verified numbers",
	21610: "recipient has unsubscribed (replied STOP)",
	21611: "'From' number's message queue is full",
	21612: "'To' number is not reachable by SMS",
	21614: "'To' number is not a mobile number",
	21617: "message body exceeds 1600 characters",
	21660: "'From' number does not belong to the account",
}

// transientCodes are Twilio error codes that mean "later" even when they
// come with a 4xx status.
var transientCodes = map[int]bool{
	14107: true, // message rate limit exceeded
	20429: true, // too many requests
	21611: true, // the From number's queue is full
}

// classifyStatus turns a non-2xx answer into *PermanentError or
// *TransientError.
func classifyStatus(status int, h http.Header, body []byte, secret string) error {
	var te struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	text := ""
	if json.Unmarshal(body, &te) == nil && (te.Code != 0 || te.Message != "") {
		if r, ok := twilioCodeReasons[te.Code]; ok {
			text = r
		} else {
			text = sanitizeReason(te.Message, secret)
		}
	} else if t := strings.TrimSpace(string(body)); t != "" && len(t) <= 200 && !strings.ContainsAny(t, "<>{}[]") {
		text = sanitizeReason(t, secret)
	}
	if text == "" {
		text = strings.ToLower(http.StatusText(status))
		if text == "" {
			text = "unexpected answer"
		}
	}
	reason := fmt.Sprintf("twilio %d: %s", status, text)
	if te.Code != 0 {
		reason = fmt.Sprintf("twilio %d (%d): %s", status, te.Code, text)
	}
	if status == http.StatusTooManyRequests || status == http.StatusRequestTimeout ||
		status == http.StatusTooEarly || status >= 500 || transientCodes[te.Code] {
		var wait time.Duration
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || transientCodes[te.Code] {
			wait = retryAfter(h, now())
		}
		return &TransientError{StatusCode: status, Reason: reason, RetryAfter: wait}
	}
	return &PermanentError{StatusCode: status, Reason: reason}
}

// classifyNetError turns a failed round trip into a *TransientError. ctx
// is the caller's context (to recognise cancellation and timeouts).
func classifyNetError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		reason := "twilio: request canceled"
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			reason = "twilio: request timed out"
		}
		return &TransientError{Reason: reason, cause: ctxErr}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return &TransientError{Reason: "twilio: request timed out", cause: err}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &TransientError{Reason: "twilio: connection closed before an answer", cause: err}
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) && urlErr.Err != nil {
		// urlErr.Err, not urlErr: the URL may hold a phone number.
		return &TransientError{Reason: "twilio: network error: " + sanitizeReason(urlErr.Err.Error(), ""), cause: err}
	}
	// Anything else: retrying is the safe choice; FindSent recovers a send
	// that did go through.
	return &TransientError{Reason: "twilio: request failed", cause: err}
}

var (
	linkPattern  = regexp.MustCompile(`(?i)\b(?:https?|ftp)://\S+|\bwww\.\S+`)
	phonePattern = regexp.MustCompile(`\+?\d[\d ().-]{5,}\d`)
)

const maxReasonRunes = 160

// sanitizeReason makes provider text fit for a Reason: one line, no links,
// no phone numbers, never the message body, bounded length.
func sanitizeReason(s, secret string) string {
	if secret = strings.TrimSpace(secret); len(secret) >= 8 {
		s = strings.ReplaceAll(s, secret, "[body]")
	}
	s = linkPattern.ReplaceAllString(s, "[link]")
	s = phonePattern.ReplaceAllString(s, "[number]")
	s = strings.Join(strings.Fields(s), " ")
	s = strings.TrimRight(s, " .")
	if utf8.RuneCountInString(s) > maxReasonRunes {
		r := []rune(s)
		s = string(r[:maxReasonRunes]) + "…"
	}
	return s
}

// retryAfter reads Retry-After (seconds or an HTTP date); a date already
// past means "now": 1 s. The result is capped at maxRetryAfter.
func retryAfter(h http.Header, at time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		switch {
		case secs != secs || secs <= 0: // NaN, zero, negative
			return 0
		case secs >= maxRetryAfter.Seconds():
			return maxRetryAfter
		}
		d = time.Duration(secs * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(at)
		if d <= 0 {
			d = time.Second
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// parseTwilioTime reads Twilio's RFC 2822 timestamps
// ("Thu, 24 Aug 2023 05:01:45 +0000").
func parseTwilioTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		t, err = time.Parse(time.RFC1123, s)
	}
	return t, err
}
