package twiliosrv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testSID   = "AC0123456789abcdef0123456789abcdef"
	testToken = "token-test"
	testFrom  = "+15005550006"
)

func newServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	srv := New(opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	return srv, ts
}

func messagesPath(sid string) string {
	return "/2010-04-01/Accounts/" + sid + "/Messages.json"
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func call(t *testing.T, ts *httptest.Server, method, path string, form url.Values, user, pass string) answer {
	t.Helper()
	a, err := tryCall(ts, method, path, form, user, pass)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// tryCall is call for goroutines other than the test's.
func tryCall(ts *httptest.Server, method, path string, form url.Values, user, pass string) (answer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, ts.URL+path, body)
	if err != nil {
		return answer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" || pass != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &a.body)
	return a, nil
}

func send(t *testing.T, ts *httptest.Server, to, body string) answer {
	t.Helper()
	return call(t, ts, http.MethodPost, messagesPath(testSID),
		url.Values{"To": {to}, "From": {testFrom}, "Body": {body}}, testSID, testToken)
}

func wantError(t *testing.T, a answer, status, code int) {
	t.Helper()
	if a.status != status {
		t.Fatalf("status = %d, want %d (body %s)", a.status, status, a.raw)
	}
	if got, _ := a.body["code"].(float64); int(got) != code {
		t.Fatalf("code = %v, want %d (body %s)", a.body["code"], code, a.raw)
	}
	if got, _ := a.body["status"].(float64); int(got) != status {
		t.Errorf("body status = %v, want %d", a.body["status"], status)
	}
	if mi, _ := a.body["more_info"].(string); mi != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code) {
		t.Errorf("more_info = %q", mi)
	}
	if msg, _ := a.body["message"].(string); msg == "" {
		t.Error("empty message")
	}
}

var sidPattern = regexp.MustCompile(`^SM[0-9a-f]{32}$`)

func TestCreateMessage(t *testing.T) {
	srv, ts := newServer(t, Options{AccountSID: testSID, AuthToken: testToken})
	before := time.Now().Add(-time.Second)
	a := send(t, ts, "+442079460958", "Your invitation: https://usher.test/invite/tok_SECRET")
	if a.status != http.StatusCreated {
		t.Fatalf("status %d: %s", a.status, a.raw)
	}
	b := a.body
	sid, _ := b["sid"].(string)
	if !sidPattern.MatchString(sid) {
		t.Errorf("sid = %q", sid)
	}
	if b["status"] != "queued" || b["to"] != "+442079460958" || b["from"] != testFrom ||
		b["body"] != "Your invitation: https://usher.test/invite/tok_SECRET" || b["account_sid"] != testSID ||
		b["direction"] != "outbound-api" || b["api_version"] != "2010-04-01" || b["date_sent"] != nil ||
		b["num_segments"] != "1" || b["uri"] != "/2010-04-01/Accounts/"+testSID+"/Messages/"+sid+".json" {
		t.Errorf("answer = %s", a.raw)
	}
	created, err := time.Parse(time.RFC1123Z, b["date_created"].(string))
	if err != nil || created.Before(before.Truncate(time.Second)) || created.After(time.Now()) {
		t.Errorf("date_created = %v (%v)", b["date_created"], err)
	}
	if !strings.HasSuffix(b["date_created"].(string), "+0000") {
		t.Errorf("date_created = %v, want GMT", b["date_created"])
	}

	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("stored %d messages", len(msgs))
	}
	m := msgs[0]
	if m.SID != sid || m.To != "+442079460958" || m.From != testFrom || m.AccountSID != testSID ||
		m.Status != "sent" || m.DateSent.IsZero() {
		t.Errorf("stored %+v", m)
	}
	if srv.Requests() != 1 {
		t.Errorf("Requests = %d", srv.Requests())
	}

	// Fetch it back.
	f := call(t, ts, http.MethodGet, "/2010-04-01/Accounts/"+testSID+"/Messages/"+sid+".json", nil, testSID, testToken)
	if f.status != http.StatusOK || f.body["sid"] != sid || f.body["status"] != "sent" || f.body["date_sent"] == nil {
		t.Errorf("fetch: %d %s", f.status, f.raw)
	}
	nf := call(t, ts, http.MethodGet, "/2010-04-01/Accounts/"+testSID+"/Messages/SM00000000000000000000000000000000.json", nil, testSID, testToken)
	wantError(t, nf, http.StatusNotFound, 20404)
}

func TestAuthAndAccount(t *testing.T) {
	srv, ts := newServer(t, Options{AccountSID: testSID, AuthToken: testToken})
	form := url.Values{"To": {"+442079460958"}, "From": {testFrom}, "Body": {"hi"}}
	for name, creds := range map[string][2]string{
		"none":        {"", ""},
		"wrong token": {testSID, "nope"},
		"wrong user":  {"AC00000000000000000000000000000000", testToken},
	} {
		t.Run(name, func(t *testing.T) {
			a := call(t, ts, http.MethodPost, messagesPath(testSID), form, creds[0], creds[1])
			wantError(t, a, http.StatusUnauthorized, 20003)
			l := call(t, ts, http.MethodGet, messagesPath(testSID), nil, creds[0], creds[1])
			wantError(t, l, http.StatusUnauthorized, 20003)
		})
	}
	other := "AC11111111111111111111111111111111"
	wantError(t, call(t, ts, http.MethodPost, messagesPath(other), form, testSID, testToken), http.StatusNotFound, 20404)
	wantError(t, call(t, ts, http.MethodGet, "/2010-04-01/Accounts/"+testSID+"/Calls.json", nil, testSID, testToken), http.StatusNotFound, 20404)
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("stored %d messages", n)
	}

	// Without options anything goes, and the account comes from the path.
	open, ots := newServer(t, Options{})
	a := call(t, ots, http.MethodPost, messagesPath(other), form, "", "")
	if a.status != http.StatusCreated || a.body["account_sid"] != other || len(open.Messages()) != 1 {
		t.Errorf("open server: %d %s", a.status, a.raw)
	}
}

func TestCreateValidation(t *testing.T) {
	srv, ts := newServer(t, Options{CheckNumbers: true})
	tests := []struct {
		name string
		form url.Values
		code int
	}{
		{"missing To", url.Values{"From": {testFrom}, "Body": {"hi"}}, 21604},
		{"missing From", url.Values{"To": {"+442079460958"}, "Body": {"hi"}}, 21603},
		{"missing Body", url.Values{"To": {"+442079460958"}, "From": {testFrom}}, 21602},
		{"body too long", url.Values{"To": {"+442079460958"}, "From": {testFrom}, "Body": {strings.Repeat("a", 1601)}}, 21617},
		{"national number", url.Values{"To": {"02079460958"}, "From": {testFrom}, "Body": {"hi"}}, 21211},
		{"spaces", url.Values{"To": {"+44 20 7946 0958"}, "From": {testFrom}, "Body": {"hi"}}, 21211},
		{"garbage", url.Values{"To": {"hello"}, "From": {testFrom}, "Body": {"hi"}}, 21211},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := call(t, ts, http.MethodPost, messagesPath(testSID), tt.form, "", "")
			wantError(t, a, http.StatusBadRequest, tt.code)
		})
	}
	if n := len(srv.Messages()); n != 0 {
		t.Errorf("stored %d messages", n)
	}
	if srv.Requests() != len(tests) {
		t.Errorf("Requests = %d, want %d", srv.Requests(), len(tests))
	}

	// A messaging service instead of From, and exactly 1600 characters, are fine.
	a := call(t, ts, http.MethodPost, messagesPath(testSID), url.Values{"To": {"+442079460958"},
		"MessagingServiceSid": {"MG0123"}, "Body": {strings.Repeat("é", 1600)}}, "", "")
	if a.status != http.StatusCreated || a.body["messaging_service_sid"] != "MG0123" || a.body["num_segments"] != "24" {
		t.Errorf("status %d: %s", a.status, a.raw)
	}

	// Without CheckNumbers, any To is taken.
	_, lax := newServer(t, Options{})
	if a := call(t, lax, http.MethodPost, messagesPath(testSID), url.Values{"To": {"02079460958"}, "From": {testFrom}, "Body": {"hi"}}, "", ""); a.status != http.StatusCreated {
		t.Errorf("lax server: %d %s", a.status, a.raw)
	}
}

// listAll follows next_page_uri from path and returns every message's sid
// and the number of pages.
func listAll(t *testing.T, ts *httptest.Server, path string) (sids []string, pages int) {
	t.Helper()
	for path != "" {
		a := call(t, ts, http.MethodGet, path, nil, "", "")
		if a.status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, a.status, a.raw)
		}
		pages++
		for _, m := range a.body["messages"].([]any) {
			sids = append(sids, m.(map[string]any)["sid"].(string))
		}
		path, _ = a.body["next_page_uri"].(string)
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	return sids, pages
}

func TestListFiltersAndPaging(t *testing.T) {
	srv, ts := newServer(t, Options{})
	var toAnn []string
	for i := range 5 {
		a := send(t, ts, "+442079460958", fmt.Sprintf("message %d", i))
		toAnn = append([]string{a.body["sid"].(string)}, toAnn...) // newest first
		send(t, ts, "+4930901820", fmt.Sprintf("other %d", i))
	}

	// To filter, newest first, in pages of 2.
	q := url.Values{"To": {"+442079460958"}, "PageSize": {"2"}}
	sids, pages := listAll(t, ts, messagesPath(testSID)+"?"+q.Encode())
	if strings.Join(sids, ",") != strings.Join(toAnn, ",") || pages != 3 {
		t.Errorf("got %v in %d pages, want %v in 3", sids, pages, toAnn)
	}

	// Page shape.
	first := call(t, ts, http.MethodGet, messagesPath(testSID)+"?"+q.Encode(), nil, "", "")
	b := first.body
	if b["page"] != 0.0 || b["page_size"] != 2.0 || b["start"] != 0.0 || b["end"] != 1.0 ||
		b["previous_page_uri"] != nil || !strings.Contains(b["first_page_uri"].(string), "Page=0") {
		t.Errorf("first page: %s", first.raw)
	}
	second := call(t, ts, http.MethodGet, b["next_page_uri"].(string), nil, "", "")
	if second.body["page"] != 1.0 || second.body["start"] != 2.0 || second.body["previous_page_uri"] == nil {
		t.Errorf("second page: %s", second.raw)
	}
	back := call(t, ts, http.MethodGet, second.body["previous_page_uri"].(string), nil, "", "")
	if got := back.body["messages"].([]any); len(got) != 2 || got[0].(map[string]any)["sid"] != toAnn[0] {
		t.Errorf("previous page: %s", back.raw)
	}

	// New messages arriving while paging do not shift the cursor.
	send(t, ts, "+442079460958", "late")
	third := call(t, ts, http.MethodGet, second.body["next_page_uri"].(string), nil, "", "")
	if got := third.body["messages"].([]any); len(got) != 1 || got[0].(map[string]any)["sid"] != toAnn[4] ||
		third.body["next_page_uri"] != nil {
		t.Errorf("third page after a new message: %s", third.raw)
	}

	// From filter; no filter.
	if sids, _ := listAll(t, ts, messagesPath(testSID)+"?From="+url.QueryEscape(testFrom)); len(sids) != 11 {
		t.Errorf("From filter: %d messages", len(sids))
	}
	if sids, _ := listAll(t, ts, messagesPath(testSID)); len(sids) != 11 {
		t.Errorf("no filter: %d messages", len(sids))
	}
	if sids, _ := listAll(t, ts, messagesPath(testSID)+"?To=%2B15550000000"); len(sids) != 0 {
		t.Errorf("unknown To: %v", sids)
	}

	// DateSent filters, in the spellings clients use.
	// Dates relative to when the messages were sent (robust around midnight).
	sentAt := srv.Messages()[0].DateSent.UTC()
	today := sentAt.Format(time.DateOnly)
	tomorrow := sentAt.AddDate(0, 0, 1).Format(time.DateOnly)
	hourAgo := sentAt.Add(-time.Hour).Format(time.RFC3339)
	hourAhead := sentAt.Add(time.Hour).Format(time.RFC3339)
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"DateSent>=" + today, 11},      // parsed as "DateSent>" = today
		{"DateSent%3E=" + today, 11},    // the same, encoded
		{"DateSent%3E%3D=" + today, 11}, // "DateSent>=" as the key
		{"DateSent>=" + tomorrow, 0},    // on or after tomorrow
		{"DateSent=" + today, 11},       // exact day
		{"DateSent<=" + today, 11},      // on or before today
		{"DateSent%3C=" + hourAgo, 0},   // before an hour ago
		{"DateSent%3E=" + hourAgo, 11},  // after an hour ago
		{"DateSent%3E=" + url.QueryEscape(hourAhead), 0},
		{"To=%2B4930901820&DateSent>=" + today, 5},
	} {
		if sids, _ := listAll(t, ts, messagesPath(testSID)+"?"+tt.query); len(sids) != tt.want {
			t.Errorf("%s: %d messages, want %d", tt.query, len(sids), tt.want)
		}
	}
	for _, bad := range []string{"DateSent>=yesterday", "PageSize=0", "PageSize=x", "Page=-1", "PageToken=XX1"} {
		wantError(t, call(t, ts, http.MethodGet, messagesPath(testSID)+"?"+bad, nil, "", ""), http.StatusBadRequest, 20001)
	}
	if srv.Requests() != 11 {
		t.Errorf("Requests = %d (lists must not count)", srv.Requests())
	}
}

func TestHoldQueued(t *testing.T) {
	srv, ts := newServer(t, Options{HoldQueued: true})
	send(t, ts, "+442079460958", "queued one")
	m := srv.Messages()[0]
	if m.Status != "queued" || !m.DateSent.IsZero() {
		t.Errorf("stored %+v", m)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if sids, _ := listAll(t, ts, messagesPath(testSID)+"?DateSent>="+today); len(sids) != 0 {
		t.Errorf("DateSent filter matched a queued message")
	}
	if sids, _ := listAll(t, ts, messagesPath(testSID)+"?To=%2B442079460958"); len(sids) != 1 {
		t.Errorf("To filter: %v", sids)
	}
}

func TestFaults(t *testing.T) {
	srv, ts := newServer(t, Options{})

	t.Run("status with default body", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{Status: 503, Header: http.Header{"Retry-After": {"7"}}} })
		defer srv.SetFault(nil)
		a := send(t, ts, "+442079460958", "x")
		wantError(t, a, http.StatusServiceUnavailable, 20503)
		if a.header.Get("Retry-After") != "7" {
			t.Errorf("Retry-After = %q", a.header.Get("Retry-After"))
		}
	})
	t.Run("code", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{Status: 400, Code: 21610} })
		defer srv.SetFault(nil)
		wantError(t, send(t, ts, "+442079460958", "x"), http.StatusBadRequest, 21610)
	})
	t.Run("401 default", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{Status: 401} })
		defer srv.SetFault(nil)
		a := send(t, ts, "+442079460958", "x")
		wantError(t, a, http.StatusUnauthorized, 20003)
		if a.body["message"] != "Authenticate" {
			t.Errorf("message = %v", a.body["message"])
		}
	})
	t.Run("custom body", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{Status: 502, Body: "<html>bad gateway</html>"} })
		defer srv.SetFault(nil)
		a := send(t, ts, "+442079460958", "x")
		if a.status != 502 || a.raw != "<html>bad gateway</html>" || !strings.HasPrefix(a.header.Get("Content-Type"), "text/plain") {
			t.Errorf("%d %q %q", a.status, a.raw, a.header.Get("Content-Type"))
		}
	})
	if n := len(srv.Messages()); n != 0 {
		t.Fatalf("refused sends stored %d messages", n)
	}

	t.Run("accept then fail with status", func(t *testing.T) {
		var seen Message
		srv.SetFault(func(m Message) *Fault { seen = m; return &Fault{Status: 500, AcceptThenFail: true} })
		defer srv.SetFault(nil)
		wantError(t, send(t, ts, "+442079460958", "kept"), http.StatusInternalServerError, 20500)
		got := srv.MessagesTo("+442079460958")
		if len(got) != 1 || got[0].SID != seen.SID || got[0].Body != "kept" {
			t.Errorf("stored %+v, fault saw %+v", got, seen)
		}
	})
	t.Run("accept then drop the connection", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{AcceptThenFail: true} })
		defer srv.SetFault(nil)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+messagesPath(testSID),
			strings.NewReader(url.Values{"To": {"+4930901820"}, "From": {testFrom}, "Body": {"dropped"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("got status %d, want a transport error", resp.StatusCode)
		}
		if got := srv.MessagesTo("+49 30 901820"); len(got) != 1 || got[0].Body != "dropped" {
			t.Errorf("stored %+v", got)
		}
	})
	t.Run("delay only", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{Delay: 50 * time.Millisecond} })
		defer srv.SetFault(nil)
		start := time.Now()
		if a := send(t, ts, "+15005550009", "slow"); a.status != http.StatusCreated {
			t.Errorf("status %d", a.status)
		}
		if time.Since(start) < 50*time.Millisecond {
			t.Error("no delay")
		}
		if len(srv.MessagesTo("+15005550009")) != 1 {
			t.Error("not stored")
		}
	})
	t.Run("delay, client gone", func(t *testing.T) {
		srv.SetFault(func(Message) *Fault { return &Fault{Status: 500, Delay: 5 * time.Second} })
		defer srv.SetFault(nil)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+messagesPath(testSID),
			strings.NewReader(url.Values{"To": {"+15005550010"}, "From": {testFrom}, "Body": {"gone"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err := ts.Client().Do(req); err == nil {
			resp.Body.Close()
			t.Fatal("want a timeout")
		}
		if len(srv.MessagesTo("+15005550010")) != 0 {
			t.Error("stored a message the client gave up on")
		}
	})
}

func TestWaitResetAndMaxMessages(t *testing.T) {
	srv, ts := newServer(t, Options{MaxMessages: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan []Message)
	go func() {
		msgs, err := srv.WaitForMessages(ctx, 2)
		if err != nil {
			t.Error(err)
		}
		done <- msgs
	}()
	send(t, ts, "+442079460958", "one")
	send(t, ts, "+442079460958", "two")
	if msgs := <-done; len(msgs) != 2 || msgs[0].Body != "one" {
		t.Errorf("WaitForMessages = %+v", msgs)
	}
	for _, b := range []string{"three", "four", "five"} {
		send(t, ts, "+442079460958", b)
	}
	msgs := srv.Messages()
	if len(msgs) != 3 || msgs[0].Body != "three" || msgs[2].Body != "five" {
		t.Errorf("after trimming: %+v", msgs)
	}
	// Paging still works across trimming.
	if sids, _ := listAll(t, ts, messagesPath(testSID)+"?PageSize=1"); len(sids) != 3 || sids[0] != msgs[2].SID {
		t.Errorf("list after trimming: %v", sids)
	}

	srv.Reset()
	if len(srv.Messages()) != 0 || srv.Requests() != 0 {
		t.Error("Reset kept something")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancelShort()
	if _, err := srv.WaitForMessages(short, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForMessages on empty server = %v", err)
	}
}

func TestInbox(t *testing.T) {
	srv, ts := newServer(t, Options{})
	send(t, ts, "+442079460958", "Join Acme: https://usher.test/invite/tok_1.")
	send(t, ts, "+4930901820", `<script>alert(1)</script> & "quotes"`)
	h := httptest.NewServer(srv.InboxHandler())
	t.Cleanup(h.Close)

	resp, err := http.Get(h.URL + "/dev/sms")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	html := string(page)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(html, "<script>alert") || !strings.Contains(html, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Error("body not escaped")
	}
	if !strings.Contains(html, `<a href="https://usher.test/invite/tok_1" rel="noopener noreferrer">https://usher.test/invite/tok_1</a>.`) {
		t.Errorf("link not made clickable:\n%s", html)
	}
	if strings.Index(html, "+4930901820") > strings.Index(html, "+442079460958") {
		t.Error("not newest first")
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Error("no CSP")
	}

	resp, err = http.Get(h.URL + "/dev/sms.json")
	if err != nil {
		t.Fatal(err)
	}
	var msgs []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&msgs); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if len(msgs) != 2 || msgs[0]["to"] != "+4930901820" || msgs[1]["body"] != "Join Acme: https://usher.test/invite/tok_1." ||
		msgs[0]["sid"] == "" || msgs[0]["date_sent"] == nil {
		t.Errorf("json = %v", msgs)
	}

	empty := httptest.NewServer(New(Options{}).InboxHandler())
	t.Cleanup(empty.Close)
	resp, err = http.Get(empty.URL + "/dev/sms")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "No messages yet") {
		t.Error("empty inbox page")
	}
}

func TestSplitLinks(t *testing.T) {
	parts := splitLinks("a http://x.test/1, b https://y.test/2?q=1 c")
	var b strings.Builder
	for _, p := range parts {
		if p.URL != "" {
			fmt.Fprintf(&b, "[%s]", p.URL)
		} else {
			b.WriteString(p.Text)
		}
	}
	if got := b.String(); got != "a [http://x.test/1], b [https://y.test/2?q=1] c" {
		t.Errorf("got %q", got)
	}
	if parts := splitLinks(""); len(parts) != 0 {
		t.Errorf("empty: %v", parts)
	}
}

func TestConcurrency(t *testing.T) {
	srv, ts := newServer(t, Options{AccountSID: testSID, AuthToken: testToken, MaxMessages: 500})
	var calls atomicCounter
	fault := func(m Message) *Fault {
		if calls.add()%5 == 0 {
			return &Fault{Status: 503}
		}
		return nil
	}
	srv.SetFault(fault)
	const workers, each = 8, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			to := fmt.Sprintf("+1415555%04d", w)
			for i := range each {
				a, err := tryCall(ts, http.MethodPost, messagesPath(testSID),
					url.Values{"To": {to}, "From": {testFrom}, "Body": {fmt.Sprintf("w%d m%d", w, i)}}, testSID, testToken)
				if err != nil || (a.status != http.StatusCreated && a.status != http.StatusServiceUnavailable) {
					t.Errorf("send: %v %d %s", err, a.status, a.raw)
				}
				l, err := tryCall(ts, http.MethodGet, messagesPath(testSID)+"?PageSize=5&To="+url.QueryEscape(to), nil, testSID, testToken)
				if err != nil || l.status != http.StatusOK {
					t.Errorf("list: %v %d %s", err, l.status, l.raw)
				}
				_ = srv.MessagesTo(to)
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 20 {
			_ = srv.Messages()
			_ = srv.Requests()
			srv.SetFault(fault) // re-install concurrently with sends
		}
	}()
	go func() {
		defer wg.Done()
		h := srv.InboxHandler()
		for range 10 {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/sms.json", nil))
		}
	}()
	wg.Wait()
	if got, want := srv.Requests(), workers*each; got != want {
		t.Errorf("Requests = %d, want %d", got, want)
	}
	if got, want := len(srv.Messages()), workers*each-workers*each/5; got != want {
		t.Errorf("stored %d, want %d", got, want)
	}
	seen := map[string]bool{}
	for _, m := range srv.Messages() {
		if seen[m.SID] {
			t.Errorf("duplicate sid %s", m.SID)
		}
		seen[m.SID] = true
	}
}

type atomicCounter struct {
	mu sync.Mutex
	n  int
}

func (c *atomicCounter) add() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return c.n
}
