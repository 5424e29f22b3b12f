package mailgunsrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"
)

const (
	testDomain = "mg.usher.test"
	testKey    = "key-test-123"
)

// newTestServer starts a Server behind httptest and returns a real
// mailgun-go client pointed at it.
func newTestServer(t *testing.T, opts Options) (*Server, *httptest.Server, *mailgun.MailgunImpl) {
	t.Helper()
	if opts.Domain == "" {
		opts.Domain = testDomain
	}
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	srv := New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	mg := mailgun.NewMailgun(testDomain, testKey)
	// mailgun-go v4.23.0 wants the base including the version segment
	// (it refuses URLs whose path does not match /v[1-5]).
	mg.SetAPIBase(ts.URL + "/v3")
	mg.SetClient(ts.Client())
	return srv, ts, mg
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sendSimple(ctx context.Context, mg *mailgun.MailgunImpl, to string) (string, string, error) {
	m := mailgun.NewMessage("Usher <noreply@usher.test>", "Hello", "Hello there", to)
	return mg.Send(ctx, m)
}

func TestSendAndReadBack(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	ctx := ctxT(t)

	m := mailgun.NewMessage("Usher <noreply@usher.test>", "You're invited", "plain body",
		"Alice <alice@example.com>", "bob@example.com")
	m.SetHTML("<p>html body</p>")
	if err := m.AddTag("invitation"); err != nil {
		t.Fatal(err)
	}
	if err := m.AddVariable("usher_delivery_id", "d-1"); err != nil {
		t.Fatal(err)
	}
	m.AddHeader("X-Usher", "yes")
	m.EnableTestMode()

	msg, id, err := mg.Send(ctx, m)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if msg != "Queued. Thank you." {
		t.Errorf("message = %q", msg)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("stored %d messages, want 1", len(got))
	}
	g := got[0]
	if id != "<"+g.ID+">" {
		t.Errorf("returned id %q, stored ID %q", id, g.ID)
	}
	if !strings.HasSuffix(g.ID, "@"+testDomain) {
		t.Errorf("ID %q should end with @domain", g.ID)
	}
	if g.Domain != testDomain || g.From != "Usher <noreply@usher.test>" || g.Subject != "You're invited" ||
		g.Text != "plain body" || g.HTML != "<p>html body</p>" || !g.TestMode {
		t.Errorf("stored message = %+v", g)
	}
	if strings.Join(g.To, ",") != "alice@example.com,bob@example.com" {
		t.Errorf("To = %v", g.To)
	}
	if len(g.Tags) != 1 || g.Tags[0] != "invitation" {
		t.Errorf("Tags = %v", g.Tags)
	}
	if g.Variables["usher_delivery_id"] != "d-1" {
		t.Errorf("Variables = %v", g.Variables)
	}
	if g.Headers["X-Usher"] != "yes" {
		t.Errorf("Headers = %v", g.Headers)
	}
	if g.ReceivedAt.IsZero() {
		t.Error("ReceivedAt not set")
	}
	if len(srv.MessagesTo("BOB@example.com")) != 1 || len(srv.MessagesTo("Alice <alice@example.com>")) != 1 ||
		len(srv.MessagesTo("carol@example.com")) != 0 {
		t.Error("MessagesTo does not match recipients")
	}
	if srv.Requests() != 1 {
		t.Errorf("Requests = %d", srv.Requests())
	}

	// Returned messages are copies.
	got[0].Variables["usher_delivery_id"] = "mutated"
	got[0].To[0] = "mutated"
	if again := srv.Messages()[0]; again.Variables["usher_delivery_id"] != "d-1" || again.To[0] != "alice@example.com" {
		t.Error("Messages() exposes internal state")
	}
}

func postForm(t *testing.T, ts *httptest.Server, path string, form url.Values, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, ts.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSendURLEncoded(t *testing.T) {
	srv, ts, _ := newTestServer(t, Options{})
	form := url.Values{
		"from":                  {"noreply@usher.test"},
		"to":                    {"a@example.com, B <b@example.com>", "c@example.com"},
		"subject":               {"Hi"},
		"text":                  {"body"},
		"o:tag":                 {"t1", "t2"},
		"v:k":                   {"v"},
		"h:X-Mailgun-Variables": {`{"k":"ignored","n":5,"s":"str"}`},
		"o:testmode":            {"yes"},
	}
	status, body := postForm(t, ts, "/v3/"+testDomain+"/messages", form, "api", testKey)
	if status != http.StatusOK {
		t.Fatalf("status %d body %s", status, body)
	}
	var resp map[string]string
	if err := json.Unmarshal([]byte(body), &resp); err != nil {
		t.Fatalf("response %q: %v", body, err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("stored %d", len(msgs))
	}
	m := msgs[0]
	if resp["id"] != "<"+m.ID+">" || resp["message"] != "Queued. Thank you." || len(resp) != 2 {
		t.Errorf("response = %v", resp)
	}
	if strings.Join(m.To, ",") != "a@example.com,b@example.com,c@example.com" {
		t.Errorf("To = %v", m.To)
	}
	if strings.Join(m.Tags, ",") != "t1,t2" || !m.TestMode {
		t.Errorf("Tags = %v TestMode = %v", m.Tags, m.TestMode)
	}
	if m.Variables["k"] != "v" || m.Variables["n"] != "5" || m.Variables["s"] != "str" {
		t.Errorf("Variables = %v", m.Variables)
	}
}

func TestValidation(t *testing.T) {
	srv, ts, _ := newTestServer(t, Options{})
	base := url.Values{"from": {"noreply@usher.test"}, "to": {"a@example.com"}, "subject": {"s"}, "text": {"t"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for kk, vv := range base {
			f[kk] = vv
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"missing from", with("from", ""), "'from' parameter is missing"},
		{"missing to", with("to", ""), "'to' parameter is missing"},
		{"invalid to", with("to", "not-an-address"), "'to' parameter is not a valid address. please check documentation"},
		{"invalid from", with("from", "nobody"), "'from' parameter is not a valid address. please check documentation"},
		{"missing subject", with("subject", ""), "'subject' parameter is missing"},
		{"missing body", with("text", ""), "Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postForm(t, ts, "/v3/"+testDomain+"/messages", tt.form, "api", testKey)
			if status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", status)
			}
			var resp map[string]string
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp["message"] != tt.want {
				t.Errorf("body %s, want message %q", body, tt.want)
			}
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("stored %d invalid messages", n)
	}
	if srv.Requests() != len(tests) {
		t.Errorf("Requests = %d, want %d", srv.Requests(), len(tests))
	}
}

func TestInvalidRecipientThroughClient(t *testing.T) {
	_, _, mg := newTestServer(t, Options{})
	_, _, err := sendSimple(ctxT(t), mg, "not-an-address")
	if got := mailgun.GetStatusFromErr(err); got != http.StatusBadRequest {
		t.Fatalf("status = %d (err %v), want 400", got, err)
	}
	var ure *mailgun.UnexpectedResponseError
	if !errors.As(err, &ure) || !strings.Contains(string(ure.Data), "'to' parameter is not a valid address") {
		t.Errorf("err = %v", err)
	}
}

func TestAuthentication(t *testing.T) {
	srv, ts, _ := newTestServer(t, Options{})
	bad := mailgun.NewMailgun(testDomain, "wrong-key")
	bad.SetAPIBase(ts.URL + "/v3")
	ctx := ctxT(t)

	_, _, err := sendSimple(ctx, bad, "a@example.com")
	if mailgun.GetStatusFromErr(err) != http.StatusUnauthorized {
		t.Fatalf("send with wrong key: %v", err)
	}
	var ure *mailgun.UnexpectedResponseError
	if errors.As(err, &ure) && string(ure.Data) != "Forbidden" {
		t.Errorf("body = %q, want Forbidden", ure.Data)
	}

	it := bad.ListEvents(nil)
	var page []mailgun.Event
	if it.Next(ctx, &page) || mailgun.GetStatusFromErr(it.Err()) != http.StatusUnauthorized {
		t.Errorf("events with wrong key: %v", it.Err())
	}

	status, _ := postForm(t, ts, "/v3/"+testDomain+"/messages", url.Values{}, "", "")
	if status != http.StatusUnauthorized {
		t.Errorf("no auth: status %d", status)
	}
	status, _ = postForm(t, ts, "/v3/"+testDomain+"/messages", url.Values{}, "user", testKey)
	if status != http.StatusUnauthorized {
		t.Errorf("wrong user: status %d", status)
	}
	if len(srv.Messages()) != 0 || srv.Requests() != 3 {
		t.Errorf("messages %d requests %d", len(srv.Messages()), srv.Requests())
	}
}

func TestNoAuthWhenNoKey(t *testing.T) {
	srv := New(Options{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	mg := mailgun.NewMailgun("any.test", "whatever")
	mg.SetAPIBase(ts.URL + "/v3")
	if _, _, err := sendSimple(ctxT(t), mg, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].Domain != "any.test" {
		t.Errorf("messages = %+v", m)
	}
}

func TestUnknownDomain(t *testing.T) {
	_, ts, _ := newTestServer(t, Options{})
	other := mailgun.NewMailgun("other.test", testKey)
	other.SetAPIBase(ts.URL + "/v3")
	_, _, err := sendSimple(ctxT(t), other, "a@example.com")
	if mailgun.GetStatusFromErr(err) != http.StatusNotFound {
		t.Fatalf("err = %v", err)
	}
	var ure *mailgun.UnexpectedResponseError
	errors.As(err, &ure)
	if strings.TrimSpace(string(ure.Data)) != `{"message":"Domain not found: other.test"}` {
		t.Errorf("body = %s", ure.Data)
	}
}

func TestFaultStatuses(t *testing.T) {
	srv, ts, mg := newTestServer(t, Options{})
	ctx := ctxT(t)
	for _, status := range []int{429, 503, 400, 401, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv.Reset()
			srv.SetFault(func(Message) *Fault {
				return &Fault{Status: status, Header: http.Header{"X-Ratelimit-Reset": {"1700000000000"}}}
			})
			defer srv.SetFault(nil)
			_, _, err := sendSimple(ctx, mg, "a@example.com")
			if got := mailgun.GetStatusFromErr(err); got != status {
				t.Fatalf("status = %d (err %v), want %d", got, err, status)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("stored %d messages for a refused send", n)
			}
			if srv.Requests() != 1 {
				t.Errorf("Requests = %d", srv.Requests())
			}
		})
	}

	// Headers and body reach the client as given.
	srv.SetFault(func(Message) *Fault {
		return &Fault{Status: 429, Header: http.Header{"Retry-After": {"7"}}, Body: `{"message":"slow down"}`}
	})
	defer srv.SetFault(nil)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v3/"+testDomain+"/messages",
		strings.NewReader(url.Values{"from": {"a@usher.test"}, "to": {"b@example.com"}, "subject": {"s"}, "text": {"t"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("api", testKey)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "7" || string(b) != `{"message":"slow down"}` {
		t.Errorf("got %d %v %s", resp.StatusCode, resp.Header, b)
	}
}

func TestFaultSeesMessage(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	var (
		mu   sync.Mutex
		seen Message
	)
	srv.SetFault(func(m Message) *Fault {
		mu.Lock()
		seen = m
		mu.Unlock()
		if m.To[0] == "refuse@example.com" {
			return &Fault{Status: 400, Body: `{"message":"refused"}`}
		}
		return nil
	})
	ctx := ctxT(t)
	if _, _, err := sendSimple(ctx, mg, "refuse@example.com"); mailgun.GetStatusFromErr(err) != 400 {
		t.Fatalf("err = %v", err)
	}
	mu.Lock()
	if seen.ID == "" || seen.Subject != "Hello" {
		t.Errorf("fault got %+v", seen)
	}
	mu.Unlock()
	_, id, err := sendSimple(ctx, mg, "ok@example.com")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if id != "<"+seen.ID+">" {
		t.Errorf("fault saw ID %q, client got %q", seen.ID, id)
	}
}

func TestAcceptThenFail(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	ctx := ctxT(t)

	srv.SetFault(func(Message) *Fault { return &Fault{AcceptThenFail: true} })
	_, _, err := sendSimple(ctx, mg, "lost@example.com")
	if err == nil {
		t.Fatal("expected a transport error")
	}
	if mailgun.GetStatusFromErr(err) != -1 {
		t.Errorf("expected no HTTP status, got %v", err)
	}
	if n := len(srv.MessagesTo("lost@example.com")); n != 1 {
		t.Fatalf("stored %d, want the message kept", n)
	}

	srv.SetFault(func(Message) *Fault { return &Fault{AcceptThenFail: true, Status: 500} })
	_, _, err = sendSimple(ctx, mg, "lost2@example.com")
	if mailgun.GetStatusFromErr(err) != 500 {
		t.Fatalf("err = %v", err)
	}
	if n := len(srv.MessagesTo("lost2@example.com")); n != 1 {
		t.Fatalf("stored %d", n)
	}
	srv.SetFault(nil)
	if _, _, err := sendSimple(ctx, mg, "fine@example.com"); err != nil {
		t.Fatalf("after clearing the fault: %v", err)
	}
	if srv.Requests() != 3 || len(srv.Messages()) != 3 {
		t.Errorf("requests %d messages %d", srv.Requests(), len(srv.Messages()))
	}
}

func TestDelayRespectsContext(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})

	srv.SetFault(func(Message) *Fault { return &Fault{Delay: 10 * time.Second} })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	_, _, err := sendSimple(ctx, mg, "slow@example.com")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("client waited for the whole delay")
	}

	// A plain delay accepts once it is over.
	srv.SetFault(func(Message) *Fault { return &Fault{Delay: 20 * time.Millisecond} })
	if _, _, err := sendSimple(ctxT(t), mg, "later@example.com"); err != nil {
		t.Fatal(err)
	}

	// AcceptThenFail stores before delaying: a client timing out still leaves it accepted.
	srv.SetFault(func(Message) *Fault { return &Fault{AcceptThenFail: true, Delay: 10 * time.Second} })
	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	_, _, err = sendSimple(ctx, mg, "timeout@example.com")
	cancel()
	if err == nil {
		t.Fatal("expected timeout")
	}

	// The handler of the first request notices the client went away and
	// stores nothing; give it a moment.
	time.Sleep(50 * time.Millisecond)
	if n := len(srv.MessagesTo("slow@example.com")); n != 0 {
		t.Errorf("abandoned delayed send stored %d", n)
	}
	if n := len(srv.MessagesTo("later@example.com")); n != 1 {
		t.Errorf("delayed send stored %d", n)
	}
	if n := len(srv.MessagesTo("timeout@example.com")); n != 1 {
		t.Errorf("accept-then-fail with timeout stored %d", n)
	}
}

func TestFaultCanHoldSend(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	entered := make(chan struct{})
	release := make(chan struct{})
	srv.SetFault(func(Message) *Fault {
		close(entered)
		<-release
		return nil
	})
	done := make(chan error, 1)
	go func() {
		_, _, err := sendSimple(ctxT(t), mg, "held@example.com")
		done <- err
	}()
	<-entered
	if srv.Requests() != 1 || len(srv.Messages()) != 0 {
		t.Fatalf("while held: requests %d messages %d", srv.Requests(), len(srv.Messages()))
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(srv.Messages()) != 1 {
		t.Error("released send not stored")
	}
}

func TestConcurrentSends(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	ctx := ctxT(t)
	const n = 40
	var wg sync.WaitGroup
	ids := make(chan string, n)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := mailgun.NewMessage("noreply@usher.test", "s", "t", fmt.Sprintf("user%d@example.com", i))
			_ = m.AddVariable("i", i)
			_, id, err := mg.Send(ctx, m)
			if err != nil {
				errs <- err
				return
			}
			ids <- id
		}()
	}
	// Readers run alongside the writers.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = srv.Messages()
				_ = srv.MessagesTo("user1@example.com")
				_ = srv.Requests()
			}
		}
	}()
	msgs, err := srv.WaitForMessages(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		if seen[id] {
			t.Errorf("duplicate id %s", id)
		}
		seen[id] = true
	}
	if len(msgs) != n || srv.Requests() != n || len(seen) != n {
		t.Errorf("messages %d requests %d ids %d", len(msgs), srv.Requests(), len(seen))
	}
	events := listAll(t, mg, &mailgun.ListEventOptions{Limit: 7})
	if len(events) != n {
		t.Errorf("listed %d events, want %d", len(events), n)
	}
}

func TestWaitForMessages(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := srv.WaitForMessages(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	go func() {
		time.Sleep(20 * time.Millisecond)
		_, _, _ = sendSimple(context.Background(), mg, "a@example.com")
	}()
	msgs, err := srv.WaitForMessages(ctxT(t), 1)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("msgs %d err %v", len(msgs), err)
	}
}

func TestResetAndMaxMessages(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{MaxMessages: 2})
	ctx := ctxT(t)
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		if _, _, err := sendSimple(ctx, mg, to); err != nil {
			t.Fatal(err)
		}
	}
	msgs := srv.Messages()
	if len(msgs) != 2 || msgs[0].To[0] != "b@example.com" || msgs[1].To[0] != "c@example.com" {
		t.Fatalf("kept %+v", msgs)
	}
	if ev := listAll(t, mg, nil); len(ev) != 2 {
		t.Errorf("events after trimming = %d", len(ev))
	}
	srv.Reset()
	if len(srv.Messages()) != 0 || srv.Requests() != 0 || len(listAll(t, mg, nil)) != 0 {
		t.Error("Reset left state behind")
	}
}
