package mail

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/mailgunsrv"
)

const (
	mgDomain = "mg.usher.test"
	mgKey    = "key-adapter-test"
	mgFrom   = "Usher <noreply@usher.test>"
)

func newAdapter(t *testing.T) (*Mailgun, *mailgunsrv.Server, *httptest.Server) {
	t.Helper()
	srv := mailgunsrv.New(mailgunsrv.Options{Domain: mgDomain, APIKey: mgKey})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	mg := NewMailgun(MailgunConfig{Domain: mgDomain, APIKey: mgKey, APIBase: ts.URL + "/v3", From: mgFrom, HTTPClient: ts.Client()})
	return mg, srv, ts
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func invitationMessage(t *testing.T, deliveryID, to string) Message {
	t.Helper()
	r, err := Render(KindInvitation, "en", InvitationData{InviterName: "Ann", OrganizationName: "Acme", Role: "member",
		Link: testLink, ExpiresAt: time.Now().Add(72 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return Message{DeliveryID: deliveryID, To: to, Subject: r.Subject, Text: r.Text, HTML: r.HTML, Tag: string(KindInvitation)}
}

func TestMailgunSendSuccess(t *testing.T) {
	mg, srv, _ := newAdapter(t)
	msg := invitationMessage(t, "del-001", "Bea <bea@example.com>")
	id, err := mg.Send(testCtx(t), msg)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	stored := srv.Messages()
	if len(stored) != 1 {
		t.Fatalf("server stored %d messages", len(stored))
	}
	m := stored[0]
	if id != m.ID || strings.ContainsAny(id, "<>") {
		t.Errorf("Send returned %q, server id %q", id, m.ID)
	}
	if m.From != mgFrom || len(m.To) != 1 || m.To[0] != "bea@example.com" || m.Subject != msg.Subject ||
		m.Text != msg.Text || m.HTML != msg.HTML || len(m.Tags) != 1 || m.Tags[0] != "invitation" {
		t.Errorf("stored %+v", m)
	}
	if len(m.Variables) != 1 || m.Variables[DeliveryIDVariable] != "del-001" {
		t.Errorf("variables = %v, want only the delivery id", m.Variables)
	}
	// No link or token may leak into metadata Mailgun indexes and shows in logs.
	for k, v := range m.Variables {
		if strings.Contains(v, "token") || strings.Contains(v, "SECRET") || strings.Contains(v, "http") {
			t.Errorf("variable %s=%q leaks the link", k, v)
		}
	}
	for k, v := range m.Headers {
		if strings.Contains(v, "SECRET") || strings.Contains(v, "http") {
			t.Errorf("header %s=%q leaks the link", k, v)
		}
	}
}

func TestMailgunSendErrors(t *testing.T) {
	mg, srv, _ := newAdapter(t)
	ctx := testCtx(t)
	secretBody := `{"message":"Something failed for https://usher.example.com/accept?token=tok_SECRET123 please check documentation"}`
	tests := []struct {
		name       string
		fault      *mailgunsrv.Fault
		permanent  bool
		status     int
		reason     string // exact, when set
		retryAfter bool
	}{
		{name: "400 invalid recipient", permanent: true, status: 400,
			fault:  &mailgunsrv.Fault{Status: 400, Body: `{"message":"'to' parameter is not a valid address. please check documentation"}`},
			reason: "mailgun 400: 'to' parameter is not a valid address"},
		{name: "401", permanent: true, status: 401, fault: &mailgunsrv.Fault{Status: 401}, reason: "mailgun 401: Forbidden"},
		{name: "403", permanent: true, status: 403, fault: &mailgunsrv.Fault{Status: 403}},
		{name: "404 domain", permanent: true, status: 404,
			fault:  &mailgunsrv.Fault{Status: 404, Body: `{"message":"Domain not found: mg.usher.test"}`},
			reason: "mailgun 404: Domain not found: mg.usher.test"},
		{name: "413", permanent: true, status: 413, fault: &mailgunsrv.Fault{Status: 413}},
		{name: "503", status: 503, fault: &mailgunsrv.Fault{Status: 503}},
		{name: "500 html body", status: 500, fault: &mailgunsrv.Fault{Status: 500, Body: "<html><body>oops</body></html>"},
			reason: "mailgun 500: internal server error"},
		{name: "429 without hint", status: 429, fault: &mailgunsrv.Fault{Status: 429}},
		{name: "429 reset ms", status: 429, retryAfter: true, fault: &mailgunsrv.Fault{Status: 429,
			Header: http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(30*time.Second).UnixMilli(), 10)}}}},
		{name: "429 reset s", status: 429, retryAfter: true, fault: &mailgunsrv.Fault{Status: 429,
			Header: http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(time.Now().Add(30*time.Second).Unix(), 10)}}}},
		{name: "429 retry-after", status: 429, retryAfter: true, fault: &mailgunsrv.Fault{Status: 429,
			Header: http.Header{"Retry-After": {"12"}}}},
		{name: "400 body with link", permanent: true, status: 400, fault: &mailgunsrv.Fault{Status: 400, Body: secretBody}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetFault(func(mailgunsrv.Message) *mailgunsrv.Fault { return tt.fault })
			defer srv.SetFault(nil)
			id, err := mg.Send(ctx, invitationMessage(t, "del-"+tt.name, "bea@example.com"))
			if err == nil {
				t.Fatalf("Send succeeded with id %q", id)
			}
			var perm *PermanentError
			var trans *TransientError
			var status int
			var reason string
			switch {
			case errors.As(err, &perm):
				if !tt.permanent {
					t.Fatalf("got permanent error %v, want transient", err)
				}
				status, reason = perm.StatusCode, perm.Reason
			case errors.As(err, &trans):
				if tt.permanent {
					t.Fatalf("got transient error %v, want permanent", err)
				}
				status, reason = trans.StatusCode, trans.Reason
				if tt.retryAfter {
					if trans.RetryAfter <= 0 || trans.RetryAfter > time.Hour {
						t.Errorf("RetryAfter = %v", trans.RetryAfter)
					}
				} else if trans.RetryAfter != 0 {
					t.Errorf("RetryAfter = %v, want 0", trans.RetryAfter)
				}
			default:
				t.Fatalf("error %T %v is neither permanent nor transient", err, err)
			}
			if status != tt.status {
				t.Errorf("status = %d, want %d", status, tt.status)
			}
			if tt.reason != "" && reason != tt.reason {
				t.Errorf("reason = %q, want %q", reason, tt.reason)
			}
			checkReason(t, reason)
			checkReason(t, err.Error())
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("refused sends stored %d messages", n)
	}
}

// checkReason asserts a reason is short and carries no link, token or body.
func checkReason(t *testing.T, reason string) {
	t.Helper()
	if reason == "" || len(reason) > 250 || strings.ContainsAny(reason, "\r\n") {
		t.Errorf("reason %q is not a short line", reason)
	}
	for _, bad := range []string{"http://", "https://", "token", "SECRET", "Accept the invitation", "<html", "please check documentation"} {
		if strings.Contains(reason, bad) {
			t.Errorf("reason %q contains %q", reason, bad)
		}
	}
}

func TestMailgunConnectionRefused(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	base := ts.URL
	ts.Close() // nothing listens there any more
	mg := NewMailgun(MailgunConfig{Domain: mgDomain, APIKey: mgKey, APIBase: base, From: mgFrom})
	_, err := mg.Send(testCtx(t), invitationMessage(t, "del-refused", "bea@example.com"))
	var trans *TransientError
	if !errors.As(err, &trans) {
		t.Fatalf("err = %T %v, want *TransientError", err, err)
	}
	if trans.StatusCode != 0 || !strings.Contains(trans.Reason, "network error") {
		t.Errorf("transient = %+v", trans)
	}
	checkReason(t, trans.Reason)
	_, _, err = mg.FindSent(testCtx(t), "del-refused")
	if !errors.As(err, &trans) {
		t.Fatalf("FindSent err = %v, want *TransientError", err)
	}
}

func TestMailgunTimeout(t *testing.T) {
	mg, srv, _ := newAdapter(t)
	srv.SetFault(func(mailgunsrv.Message) *mailgunsrv.Fault { return &mailgunsrv.Fault{Delay: 10 * time.Second} })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := mg.Send(ctx, invitationMessage(t, "del-slow", "bea@example.com"))
	var trans *TransientError
	if !errors.As(err, &trans) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want transient wrapping DeadlineExceeded", err)
	}
	checkReason(t, trans.Reason)
}

func TestMailgunLocalValidation(t *testing.T) {
	mg, srv, _ := newAdapter(t)
	valid := invitationMessage(t, "del-v", "bea@example.com")
	mutate := map[string]func(*Message){
		"invalid recipient":   func(m *Message) { m.To = "not an address" },
		"two recipients":      func(m *Message) { m.To = "a@example.com, b@example.com" },
		"missing recipient":   func(m *Message) { m.To = "" },
		"missing delivery id": func(m *Message) { m.DeliveryID = "" },
		"missing subject":     func(m *Message) { m.Subject = " " },
		"subject line break":  func(m *Message) { m.Subject = "a\r\nBcc: x@example.com" },
		"missing body":        func(m *Message) { m.Text, m.HTML = "", "" },
	}
	for name, f := range mutate {
		t.Run(name, func(t *testing.T) {
			m := valid
			f(&m)
			_, err := mg.Send(testCtx(t), m)
			var perm *PermanentError
			if !errors.As(err, &perm) || perm.StatusCode != 0 {
				t.Fatalf("err = %v, want local *PermanentError", err)
			}
			checkReason(t, perm.Reason)
		})
	}
	if srv.Requests() != 0 {
		t.Errorf("invalid messages reached the server %d times", srv.Requests())
	}

	unconfigured := NewMailgun(MailgunConfig{Domain: mgDomain, From: mgFrom})
	var perm *PermanentError
	if _, err := unconfigured.Send(testCtx(t), valid); !errors.As(err, &perm) {
		t.Errorf("missing API key: %v", err)
	}
	if _, _, err := unconfigured.FindSent(testCtx(t), "x"); !errors.As(err, &perm) {
		t.Errorf("missing API key (FindSent): %v", err)
	}
}

func TestMailgunFindSent(t *testing.T) {
	mg, srv, _ := newAdapter(t)
	ctx := testCtx(t)

	// Some unrelated traffic.
	for i := range 3 {
		if _, err := mg.Send(ctx, invitationMessage(t, fmt.Sprintf("other-%d", i), "x@example.com")); err != nil {
			t.Fatal(err)
		}
	}

	// The send is accepted, but the answer is lost.
	srv.SetFault(func(mailgunsrv.Message) *mailgunsrv.Fault { return &mailgunsrv.Fault{AcceptThenFail: true} })
	_, err := mg.Send(ctx, invitationMessage(t, "del-lost", "bea@example.com"))
	var trans *TransientError
	if !errors.As(err, &trans) {
		t.Fatalf("err = %v, want transient", err)
	}
	checkReason(t, trans.Reason)
	srv.SetFault(nil)

	accepted := srv.MessagesTo("bea@example.com")
	if len(accepted) != 1 {
		t.Fatalf("server has %d messages for bea", len(accepted))
	}
	id, found, err := mg.FindSent(ctx, "del-lost")
	if err != nil || !found || id != accepted[0].ID {
		t.Errorf("FindSent = %q, %v, %v; want %q", id, found, err, accepted[0].ID)
	}

	// Also with a 500 after accepting.
	srv.SetFault(func(mailgunsrv.Message) *mailgunsrv.Fault {
		return &mailgunsrv.Fault{AcceptThenFail: true, Status: 502}
	})
	if _, err := mg.Send(ctx, invitationMessage(t, "del-502", "carl@example.com")); !errors.As(err, &trans) || trans.StatusCode != 502 {
		t.Fatalf("err = %v", err)
	}
	srv.SetFault(nil)
	if id, found, err := mg.FindSent(ctx, "del-502"); err != nil || !found || id != srv.MessagesTo("carl@example.com")[0].ID {
		t.Errorf("FindSent(del-502) = %q, %v, %v", id, found, err)
	}

	// A successful send is found with the same id Send returned.
	sent, err := mg.Send(ctx, invitationMessage(t, "del-ok", "dan@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if id, found, err := mg.FindSent(ctx, "del-ok"); err != nil || !found || id != sent {
		t.Errorf("FindSent(del-ok) = %q, %v, %v; Send gave %q", id, found, err, sent)
	}

	// Unknown and prefix-only ids are not found.
	for _, unknown := range []string{"del-unknown", "del", "del-lost-2"} {
		if id, found, err := mg.FindSent(ctx, unknown); err != nil || found || id != "" {
			t.Errorf("FindSent(%q) = %q, %v, %v", unknown, id, found, err)
		}
	}
	// Numeric-looking ids round-trip too.
	if _, err := mg.Send(ctx, invitationMessage(t, "12345", "eve@example.com")); err != nil {
		t.Fatal(err)
	}
	if _, found, err := mg.FindSent(ctx, "12345"); err != nil || !found {
		t.Errorf("FindSent(12345) = %v, %v", found, err)
	}

	// Errors while searching are classified.
	srv.SetFault(nil)
	bad := NewMailgun(MailgunConfig{Domain: mgDomain, APIKey: "wrong", APIBase: mg.mg.APIBase(), From: mgFrom})
	var perm *PermanentError
	if _, _, err := bad.FindSent(ctx, "del-ok"); !errors.As(err, &perm) || perm.StatusCode != 401 {
		t.Errorf("FindSent with a wrong key: %v", err)
	}
}

func TestMailgunConcurrentSends(t *testing.T) {
	mg, srv, _ := newAdapter(t)
	ctx := testCtx(t)
	const n = 25
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		msg := invitationMessage(t, fmt.Sprintf("c-%d", i), fmt.Sprintf("u%d@example.com", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%5 == 0 {
				if _, _, err := mg.FindSent(ctx, msg.DeliveryID); err != nil {
					errs <- err
				}
			}
			if _, err := mg.Send(ctx, msg); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := len(srv.Messages()); got != n {
		t.Errorf("stored %d", got)
	}
}

func TestRetryAfter(t *testing.T) {
	at := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name   string
		header http.Header
		status int
		want   time.Duration
	}{
		{"none", h(), 429, 0},
		{"retry-after seconds", h("Retry-After", "20"), 429, 20 * time.Second},
		{"retry-after date", h("Retry-After", at.Add(90*time.Second).Format(http.TimeFormat)), 503, 90 * time.Second},
		{"retry-after past date", h("Retry-After", at.Add(-time.Minute).Format(http.TimeFormat)), 429, time.Second},
		{"reset unix seconds", h("X-RateLimit-Reset", strconv.FormatInt(at.Add(45*time.Second).Unix(), 10)), 429, 45 * time.Second},
		{"reset unix ms", h("X-RateLimit-Reset", strconv.FormatInt(at.Add(1500*time.Millisecond).UnixMilli(), 10)), 429, 1500 * time.Millisecond},
		{"reset relative seconds", h("X-RateLimit-Reset", "30"), 429, 30 * time.Second},
		{"reset in the past", h("X-RateLimit-Reset", strconv.FormatInt(at.Add(-time.Hour).Unix(), 10)), 429, time.Second},
		{"reset far future capped", h("X-RateLimit-Reset", strconv.FormatInt(at.Add(48*time.Hour).UnixMilli(), 10)), 429, time.Hour},
		{"reset ignored for 503", h("X-RateLimit-Reset", strconv.FormatInt(at.Add(time.Minute).Unix(), 10)), 503, 0},
		{"garbage", h("Retry-After", "soon", "X-RateLimit-Reset", "later"), 429, 0},
		{"retry-after wins", h("Retry-After", "5", "X-RateLimit-Reset", strconv.FormatInt(at.Add(time.Minute).Unix(), 10)), 429, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := retryAfter(tt.header, tt.status, at); got != tt.want {
			t.Errorf("%s: retryAfter = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNormalizeAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.eu.mailgun.net/v3":  "https://api.eu.mailgun.net/v3",
		"https://api.eu.mailgun.net/v3/": "https://api.eu.mailgun.net/v3",
		"http://localhost:8025":          "http://localhost:8025/v3",
		"http://localhost:8025/":         "http://localhost:8025/v3",
	} {
		if got := normalizeAPIBase(in); got != want {
			t.Errorf("normalizeAPIBase(%q) = %q, want %q", in, got, want)
		}
	}
	if got := NewMailgun(MailgunConfig{}).mg.APIBase(); got != "https://api.mailgun.net/v3" {
		t.Errorf("default API base = %q", got)
	}
}

func TestSanitizeReason(t *testing.T) {
	for in, want := range map[string]string{
		"'to' parameter is not a valid address. please check documentation": "'to' parameter is not a valid address",
		"see https://x.test/a?token=abc for details\n\tnow":                 "see [link] for details now",
		"":                       "",
		strings.Repeat("x", 300): strings.Repeat("x", maxReasonRunes) + "…",
	} {
		if got := sanitizeReason(in); got != want {
			t.Errorf("sanitizeReason(%.30q) = %.40q, want %.40q", in, got, want)
		}
	}
}
