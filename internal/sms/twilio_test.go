package sms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/twiliosrv"
)

const (
	twSID   = "AC0123456789abcdef0123456789abcdef"
	twToken = "auth-token-test"
	twFrom  = "+15005550006"
	annTo   = "+442079460958"
)

// secretBody is what Usher sends: a personal link with a secret token.
const secretBody = "Ann invited you to Acme on Usher: https://usher.example.com/invite/tok_SECRET123 (expires in 3 days)"

func newAdapter(t *testing.T, opts twiliosrv.Options) (*Twilio, *twiliosrv.Server, *httptest.Server) {
	t.Helper()
	if opts.AccountSID == "" {
		opts.AccountSID, opts.AuthToken = twSID, twToken
	}
	srv := twiliosrv.New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIBase: ts.URL, HTTPClient: ts.Client()})
	return tw, srv, ts
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func msg(deliveryID, to, body string) Message {
	return Message{DeliveryID: deliveryID, To: to, Body: body}
}

// checkReason fails when err's Reason leaks the body or its link.
func checkReason(t *testing.T, err error) {
	t.Helper()
	for _, leak := range []string{"tok_SECRET", "usher.example.com", "http", secretBody} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q leaks %q", err, leak)
		}
	}
}

func TestTwilioSendSuccess(t *testing.T) {
	tw, srv, _ := newAdapter(t, twiliosrv.Options{CheckNumbers: true})
	sid, err := tw.Send(testCtx(t), msg("del-001", annTo, secretBody))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	stored := srv.Messages()
	if len(stored) != 1 {
		t.Fatalf("server stored %d messages", len(stored))
	}
	m := stored[0]
	if sid != m.SID || !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
		t.Errorf("Send returned %q, server sid %q", sid, m.SID)
	}
	if m.To != annTo || m.From != twFrom || m.Body != secretBody || m.AccountSID != twSID {
		t.Errorf("stored %+v", m)
	}
}

func TestTwilioAPIBaseForms(t *testing.T) {
	srv := twiliosrv.New(twiliosrv.Options{AccountSID: twSID, AuthToken: twToken})
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	for _, base := range []string{ts.URL, ts.URL + "/", ts.URL + "/2010-04-01", ts.URL + "/2010-04-01/"} {
		tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIBase: base})
		if _, err := tw.Send(testCtx(t), msg("d", annTo, "hello "+base)); err != nil {
			t.Errorf("APIBase %q: %v", base, err)
		}
	}
	if tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom}); tw.base.String() != DefaultTwilioAPIBase {
		t.Errorf("default base = %s", tw.base)
	}
	var pe *PermanentError
	tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIBase: "api.twilio.com"})
	if _, err := tw.Send(testCtx(t), msg("d", annTo, "x")); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "API base") {
		t.Errorf("base without scheme: %v", err)
	}
}

func TestTwilioSendErrors(t *testing.T) {
	tw, srv, _ := newAdapter(t, twiliosrv.Options{})
	ctx := testCtx(t)
	leaky := twiliosrv.ErrorBody(400, 99999, "Could not send '"+secretBody+"' to +44 20 7946 0958, see https://www.twilio.com/docs/errors/99999")
	tests := []struct {
		name       string
		fault      *twiliosrv.Fault
		permanent  bool
		status     int
		reason     string // exact, when set
		retryAfter time.Duration
	}{
		{name: "400 invalid To", permanent: true, status: 400,
			fault: &twiliosrv.Fault{Status: 400, Body: twiliosrv.ErrorBody(400, 21211,
				"The 'To' number +442079460958 is not a valid phone number.")},
			reason: "twilio 400 (21211): invalid 'To' number"},
		{name: "400 not mobile", permanent: true, status: 400, fault: &twiliosrv.Fault{Status: 400, Code: 21614},
			reason: "twilio 400 (21614): 'To' number is not a mobile number"},
		{name: "400 region", permanent: true, status: 400, fault: &twiliosrv.Fault{Status: 400, Code: 21408},
			reason: "twilio 400 (21408): sending to the 'To' number's region is not enabled"},
		{name: "400 unsubscribed", permanent: true, status: 400, fault: &twiliosrv.Fault{Status: 400, Code: 21610},
			reason: "twilio 400 (21610): recipient has unsubscribed (replied STOP)"},
		{name: "400 queue full is transient", status: 400, fault: &twiliosrv.Fault{Status: 400, Code: 21611},
			reason: "twilio 400 (21611): 'From' number's message queue is full"},
		{name: "401", permanent: true, status: 401, fault: &twiliosrv.Fault{Status: 401},
			reason: "twilio 401 (20003): authentication failed (check the account SID and auth token)"},
		{name: "403", permanent: true, status: 403, fault: &twiliosrv.Fault{Status: 403}},
		{name: "404", permanent: true, status: 404, fault: &twiliosrv.Fault{Status: 404},
			reason: "twilio 404 (20404): resource not found (check the account SID)"},
		{name: "503", status: 503, fault: &twiliosrv.Fault{Status: 503}, reason: "twilio 503 (20503): Service Unavailable"},
		{name: "503 with Retry-After", status: 503, retryAfter: 30 * time.Second,
			fault: &twiliosrv.Fault{Status: 503, Header: http.Header{"Retry-After": {"30"}}}},
		{name: "500 html body", status: 500, fault: &twiliosrv.Fault{Status: 500, Body: "<html><body>oops</body></html>"},
			reason: "twilio 500: internal server error"},
		{name: "502 plain text", status: 502, fault: &twiliosrv.Fault{Status: 502, Body: "Bad Gateway"},
			reason: "twilio 502: Bad Gateway"},
		{name: "429 without hint", status: 429, fault: &twiliosrv.Fault{Status: 429}, reason: "twilio 429 (20429): too many requests"},
		{name: "429 Retry-After seconds", status: 429, retryAfter: 12 * time.Second,
			fault: &twiliosrv.Fault{Status: 429, Header: http.Header{"Retry-After": {"12"}}}},
		{name: "429 Retry-After huge", status: 429, retryAfter: time.Hour,
			fault: &twiliosrv.Fault{Status: 429, Header: http.Header{"Retry-After": {"999999999999"}}}},
		{name: "429 Retry-After garbage", status: 429,
			fault: &twiliosrv.Fault{Status: 429, Header: http.Header{"Retry-After": {"soon"}}}},
		{name: "400 unknown code, leaky message", permanent: true, status: 400, fault: &twiliosrv.Fault{Status: 400, Body: leaky},
			reason: "twilio 400 (99999): Could not send '[body]' to [number], see [link]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv.SetFault(func(twiliosrv.Message) *twiliosrv.Fault { return tt.fault })
			defer srv.SetFault(nil)
			_, err := tw.Send(ctx, msg("del-err", annTo, secretBody))
			checkReason(t, err)
			var pe *PermanentError
			var te *TransientError
			switch {
			case tt.permanent && errors.As(err, &pe):
				if pe.StatusCode != tt.status || (tt.reason != "" && pe.Reason != tt.reason) {
					t.Errorf("got %+v, want status %d reason %q", pe, tt.status, tt.reason)
				}
			case !tt.permanent && errors.As(err, &te):
				if te.StatusCode != tt.status || (tt.reason != "" && te.Reason != tt.reason) {
					t.Errorf("got %+v, want status %d reason %q", te, tt.status, tt.reason)
				}
				if te.RetryAfter != tt.retryAfter {
					t.Errorf("RetryAfter = %v, want %v", te.RetryAfter, tt.retryAfter)
				}
			default:
				t.Fatalf("got %T %v, want permanent=%v", err, err, tt.permanent)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("refused sends stored %d messages", n)
	}
}

func TestTwilioRetryAfterDate(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	h := http.Header{"Retry-After": {at.Add(90 * time.Second).Format(http.TimeFormat)}}
	if got := retryAfter(h, at); got != 90*time.Second {
		t.Errorf("date in the future: %v", got)
	}
	h.Set("Retry-After", at.Add(-time.Minute).Format(http.TimeFormat))
	if got := retryAfter(h, at); got != time.Second {
		t.Errorf("date in the past: %v", got)
	}
	for _, v := range []string{"", "0", "-5", "NaN", "Inf"} {
		h.Set("Retry-After", v)
		if got := retryAfter(h, at); got != 0 && !(v == "Inf" && got == maxRetryAfter) {
			t.Errorf("Retry-After %q: %v", v, got)
		}
	}
}

func TestTwilioWrongCredentials(t *testing.T) {
	_, srv, ts := newAdapter(t, twiliosrv.Options{})
	tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: "wrong", From: twFrom, APIBase: ts.URL})
	_, err := tw.Send(testCtx(t), msg("d", annTo, secretBody))
	var pe *PermanentError
	if !errors.As(err, &pe) || pe.StatusCode != 401 || !strings.Contains(pe.Reason, "(20003)") {
		t.Fatalf("Send with a wrong token: %v", err)
	}
	if _, _, err := tw.FindSent(testCtx(t), msg("d", annTo, secretBody)); !errors.As(err, &pe) || pe.StatusCode != 401 {
		t.Fatalf("FindSent with a wrong token: %v", err)
	}
	other := NewTwilio(TwilioConfig{AccountSID: "AC11111111111111111111111111111111", AuthToken: twToken, From: twFrom, APIBase: ts.URL})
	if _, err := other.Send(testCtx(t), msg("d", annTo, secretBody)); !errors.As(err, &pe) || pe.StatusCode != 401 {
		t.Fatalf("Send for another account: %v", err)
	}
	if len(srv.Messages()) != 0 {
		t.Error("stored a message")
	}
}

func TestTwilioValidationAndConfig(t *testing.T) {
	tw, srv, ts := newAdapter(t, twiliosrv.Options{})
	ctx := testCtx(t)
	for name, m := range map[string]Message{
		"no recipient":    msg("d", "", "hi"),
		"national number": msg("d", "02079460958", "hi"),
		"spaces":          msg("d", "+44 20 7946 0958", "hi"),
		"no body":         msg("d", annTo, "  "),
		"body too long":   msg("d", annTo, strings.Repeat("x", 1601)),
	} {
		var pe *PermanentError
		if _, err := tw.Send(ctx, m); !errors.As(err, &pe) || pe.StatusCode != 0 {
			t.Errorf("%s: Send = %v, want a permanent error before calling Twilio", name, err)
		}
		if _, _, err := tw.FindSent(ctx, m); !errors.As(err, &pe) {
			t.Errorf("%s: FindSent = %v, want a permanent error", name, err)
		}
	}
	for name, cfg := range map[string]TwilioConfig{
		"no SID":   {AuthToken: twToken, From: twFrom, APIBase: ts.URL},
		"no token": {AccountSID: twSID, From: twFrom, APIBase: ts.URL},
		"no From":  {AccountSID: twSID, AuthToken: twToken, APIBase: ts.URL},
	} {
		if cfg.Configured() {
			t.Errorf("%s: Configured() = true", name)
		}
		var pe *PermanentError
		if _, err := NewTwilio(cfg).Send(ctx, msg("d", annTo, "hi")); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "not configured") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if !(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom}).Configured() {
		t.Error("Configured() = false with SID, token and From")
	}
	if (TwilioConfig{AccountSID: " ", AuthToken: twToken, From: twFrom}).Configured() {
		t.Error("Configured() = true with a blank SID")
	}
	if srv.Requests() != 0 {
		t.Errorf("invalid sends reached the server %d times", srv.Requests())
	}
}

func TestTwilioNetworkErrors(t *testing.T) {
	// A port nobody listens on: connection refused.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIBase: "http://" + addr})
	_, err = tw.Send(testCtx(t), msg("d", annTo, secretBody))
	var te *TransientError
	if !errors.As(err, &te) || te.StatusCode != 0 || !strings.Contains(te.Reason, "network error") {
		t.Fatalf("connection refused: %v", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("cause not kept: %v", err)
	}
	checkReason(t, err)
	if _, _, err := tw.FindSent(testCtx(t), msg("d", annTo, secretBody)); !errors.As(err, &te) {
		t.Errorf("FindSent, connection refused: %v", err)
	} else if strings.Contains(err.Error(), "442079460958") {
		t.Errorf("FindSent error leaks the number: %v", err)
	}

	// A caller's deadline while Twilio is slow.
	tw2, srv, _ := newAdapter(t, twiliosrv.Options{})
	srv.SetFault(func(twiliosrv.Message) *twiliosrv.Fault { return &twiliosrv.Fault{Delay: 5 * time.Second} })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = tw2.Send(ctx, msg("d", annTo, secretBody))
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) || te.Reason != "twilio: request timed out" {
		t.Errorf("deadline: %v", err)
	}
}

func TestTwilioFindSentAfterLostAnswer(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault *twiliosrv.Fault
		opts  twiliosrv.Options
	}{
		{name: "connection dropped", fault: &twiliosrv.Fault{AcceptThenFail: true}},
		{name: "500 after accepting", fault: &twiliosrv.Fault{Status: 500, AcceptThenFail: true}},
		// The message is still queued: date_sent is null, and a DateSent
		// filter would miss it.
		{name: "still queued", fault: &twiliosrv.Fault{AcceptThenFail: true}, opts: twiliosrv.Options{HoldQueued: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tw, srv, _ := newAdapter(t, tt.opts)
			ctx := testCtx(t)
			// Other traffic to the same number, and the same text to another.
			if _, err := tw.Send(ctx, msg("other-1", annTo, "Ann invited you: https://usher.example.com/invite/tok_OTHER")); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Send(ctx, msg("other-2", "+4930901820", secretBody)); err != nil {
				t.Fatal(err)
			}

			m := msg("del-lost", annTo, secretBody)
			srv.SetFault(func(twiliosrv.Message) *twiliosrv.Fault { return tt.fault })
			_, err := tw.Send(ctx, m)
			srv.SetFault(nil)
			var te *TransientError
			if !errors.As(err, &te) {
				t.Fatalf("Send = %v, want a transient error", err)
			}
			checkReason(t, err)

			stored := srv.Messages()
			want := stored[len(stored)-1]
			id, found, err := tw.FindSent(ctx, m)
			if err != nil || !found || id != want.SID {
				t.Fatalf("FindSent = %q, %v, %v; want %q", id, found, err, want.SID)
			}

			// Not found: an unknown body, or a number never written to.
			if id, found, err := tw.FindSent(ctx, msg("del-x", annTo, secretBody+" (2)")); err != nil || found {
				t.Errorf("FindSent(other body) = %q, %v, %v", id, found, err)
			}
			if id, found, err := tw.FindSent(ctx, msg("del-y", "+14155552671", secretBody)); err != nil || found {
				t.Errorf("FindSent(other number) = %q, %v, %v", id, found, err)
			}
		})
	}
}

func TestTwilioFindSentWindowAndPaging(t *testing.T) {
	tw, _, _ := newAdapter(t, twiliosrv.Options{})
	ctx := testCtx(t)
	var sids []string
	for i := range 7 {
		sid, err := tw.Send(ctx, msg(fmt.Sprint(i), annTo, fmt.Sprintf("%s #%d", secretBody, i)))
		if err != nil {
			t.Fatal(err)
		}
		sids = append(sids, sid)
	}
	defer func(n int) { findSentPageSize = n }(findSentPageSize)
	findSentPageSize = 2 // the oldest message is on the fourth page

	id, found, err := tw.FindSent(ctx, msg("0", annTo, secretBody+" #0"))
	if err != nil || !found || id != sids[0] {
		t.Fatalf("FindSent across pages = %q, %v, %v; want %q", id, found, err, sids[0])
	}

	// A day later the message is outside the window.
	defer func() { now = time.Now }()
	now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	if id, found, err := tw.FindSent(ctx, msg("0", annTo, secretBody+" #0")); err != nil || found {
		t.Errorf("FindSent a day later = %q, %v, %v", id, found, err)
	}
	now = time.Now

	// More pages than FindSent walks: it gives up rather than say "not sent".
	findSentPageSize = 1
	for i := 7; i < findSentMaxPages+2; i++ {
		if _, err := tw.Send(ctx, msg(fmt.Sprint(i), annTo, fmt.Sprintf("%s #%d", secretBody, i))); err != nil {
			t.Fatal(err)
		}
	}
	var pe *PermanentError
	if _, _, err := tw.FindSent(ctx, msg("z", annTo, "never sent")); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "too many") {
		t.Errorf("FindSent over the page limit = %v", err)
	}
}

func TestTwilioFindSentListErrors(t *testing.T) {
	var mu sync.Mutex
	answer := func(w http.ResponseWriter, r *http.Request) {}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		a := answer
		mu.Unlock()
		a(w, r)
	}))
	t.Cleanup(ts.Close)
	set := func(f func(w http.ResponseWriter, r *http.Request)) {
		mu.Lock()
		answer = f
		mu.Unlock()
	}
	tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIBase: ts.URL})
	ctx := testCtx(t)
	m := msg("d", annTo, secretBody)

	set(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(429)
		fmt.Fprint(w, twiliosrv.ErrorBody(429, 20429, "Too Many Requests"))
	})
	var te *TransientError
	if _, _, err := tw.FindSent(ctx, m); !errors.As(err, &te) || te.RetryAfter != 5*time.Second {
		t.Errorf("429: %v", err)
	}

	set(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "{not json") })
	if _, _, err := tw.FindSent(ctx, m); !errors.As(err, &te) || te.StatusCode != 200 {
		t.Errorf("unreadable list: %v", err)
	}

	// A paging URL on another host is not followed (the credentials would go along).
	set(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"messages": [], "next_page_uri": "https://elsewhere.invalid/2010-04-01/Accounts/x/Messages.json?Page=1"}`)
	})
	var pe *PermanentError
	if _, _, err := tw.FindSent(ctx, m); !errors.As(err, &pe) || !strings.Contains(pe.Reason, "paging URL") {
		t.Errorf("foreign paging URL: %v", err)
	}

	// Inbound messages with the same body, and messages to someone else
	// that a sloppy filter returned, do not count.
	set(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("To") != annTo || r.URL.Query().Get("PageSize") == "" {
			t.Errorf("query = %s", r.URL.RawQuery)
		}
		if u, p, ok := r.BasicAuth(); !ok || u != twSID || p != twToken {
			t.Errorf("basic auth = %q %q %v", u, p, ok)
		}
		body := strings.ReplaceAll(secretBody, `"`, `\"`)
		fmt.Fprintf(w, `{"messages": [
			{"sid": "SM1", "to": %q, "body": %q, "direction": "inbound", "date_created": %q},
			{"sid": "SM2", "to": "+4930901820", "body": %q, "direction": "outbound-api", "date_created": %q}
		], "next_page_uri": null}`, annTo, body, time.Now().UTC().Format(time.RFC1123Z), body, time.Now().UTC().Format(time.RFC1123Z))
	})
	if id, found, err := tw.FindSent(ctx, m); err != nil || found {
		t.Errorf("FindSent = %q, %v, %v", id, found, err)
	}
}

func TestTwilioSendAcceptedWithoutSID(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(201)
		fmt.Fprint(w, `{"status": "queued"}`)
	}))
	t.Cleanup(ts.Close)
	tw := NewTwilio(TwilioConfig{AccountSID: twSID, AuthToken: twToken, From: twFrom, APIBase: ts.URL})
	var te *TransientError
	if _, err := tw.Send(testCtx(t), msg("d", annTo, secretBody)); !errors.As(err, &te) || te.StatusCode != 201 {
		t.Errorf("Send = %v", err)
	}
}

func TestTwilioConcurrency(t *testing.T) {
	tw, srv, _ := newAdapter(t, twiliosrv.Options{CheckNumbers: true})
	var (
		mu    sync.Mutex
		calls int
	)
	srv.SetFault(func(twiliosrv.Message) *twiliosrv.Fault {
		mu.Lock()
		defer mu.Unlock()
		calls++
		switch calls % 4 {
		case 0:
			return &twiliosrv.Fault{Status: 503}
		case 1:
			return &twiliosrv.Fault{AcceptThenFail: true}
		}
		return nil
	})
	ctx := testCtx(t)
	const workers, each = 8, 6
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("+1415555%04d", 2671+w)
			for i := range each {
				m := msg(fmt.Sprintf("w%d-%d", w, i), to, fmt.Sprintf("%s w%d #%d", secretBody, w, i))
				// What a delivery activity does: send, and after a
				// transient failure look for the message before retrying.
				for attempt := 0; ; attempt++ {
					if attempt > 10 {
						t.Errorf("%s: no success after 10 attempts", m.DeliveryID)
						return
					}
					if attempt > 0 {
						id, found, err := tw.FindSent(ctx, m)
						if err != nil {
							t.Errorf("FindSent: %v", err)
							return
						}
						if found {
							if !strings.HasPrefix(id, "SM") {
								t.Errorf("found id %q", id)
							}
							break
						}
					}
					_, err := tw.Send(ctx, m)
					var te *TransientError
					if err == nil {
						break
					}
					if !errors.As(err, &te) {
						t.Errorf("Send: %v", err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	// Every message exactly once, despite the failures.
	count := map[string]int{}
	for _, m := range srv.Messages() {
		count[m.Body]++
	}
	if len(count) != workers*each {
		t.Errorf("%d distinct messages stored, want %d", len(count), workers*each)
	}
	for body, n := range count {
		if n != 1 {
			t.Errorf("%q stored %d times", body, n)
		}
	}
}
