package mailgunsrv

import (
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mailgun/mailgun-go/v4"
)

func TestMailbox(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	mux := http.NewServeMux()
	mux.Handle("/v3/", srv)
	mb := srv.MailboxHandler()
	mux.Handle("/dev/mail", mb)
	mux.Handle("/dev/mail.json", mb)
	mux.Handle("/dev/mail/", mb)
	dev := httptest.NewServer(mux)
	defer dev.Close()

	first := mailgun.NewMessage("Usher <noreply@usher.test>", "First <b>subject</b>", "first text", "a@example.com")
	first.SetHTML(`<p onclick="x()">Hello</p><script>alert("pwned")</script><a href="https://usher.test/accept?token=abc&x=1">Accept</a>`)
	if _, _, err := mg.Send(ctxT(t), first); err != nil {
		t.Fatal(err)
	}
	second := mailgun.NewMessage("noreply@usher.test", "Second", "only text <i>here</i>", "b@example.com")
	_ = second.AddTag("set_password")
	if _, _, err := mg.Send(ctxT(t), second); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()

	get := func(path string) (*http.Response, string) {
		t.Helper()
		resp, err := dev.Client().Get(dev.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, page := get("/dev/mail")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /dev/mail: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(page, "<script>alert") || strings.Contains(page, "<b>subject</b>") || strings.Contains(page, "<i>here</i>") {
		t.Error("mailbox page contains unescaped message content")
	}
	if !strings.Contains(page, "First &lt;b&gt;subject&lt;/b&gt;") || !strings.Contains(page, "only text &lt;i&gt;here&lt;/i&gt;") {
		t.Error("mailbox page lacks the escaped subject/text")
	}
	if !strings.Contains(page, `<iframe sandbox="allow-popups`) || !strings.Contains(page, `srcdoc="&lt;p onclick=`) {
		t.Error("HTML body is not in a sandboxed srcdoc iframe")
	}
	if strings.Index(page, "Second") > strings.Index(page, "First") {
		t.Error("mailbox page is not newest first")
	}
	htmlURL := "/dev/mail/" + url.PathEscape(msgs[0].ID+".html")
	if !strings.Contains(page, html.EscapeString(htmlURL)) {
		t.Errorf("page lacks link %s", htmlURL)
	}

	resp, body := get(htmlURL)
	if resp.StatusCode != 200 || !strings.Contains(body, "<script>alert") {
		t.Fatalf("GET %s: %d", htmlURL, resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox") {
		t.Errorf("standalone HTML view CSP = %q", csp)
	}
	if resp, _ := get("/dev/mail/unknown@x.html"); resp.StatusCode != 404 {
		t.Errorf("unknown message: %d", resp.StatusCode)
	}

	resp, js := get("/dev/mail.json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /dev/mail.json: %d", resp.StatusCode)
	}
	var got []Message
	if err := json.Unmarshal([]byte(js), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Subject != "Second" || got[1].ID != msgs[0].ID || got[0].Tags[0] != "set_password" {
		t.Errorf("json = %+v", got)
	}

	srv.Reset()
	_, page = get("/dev/mail")
	if !strings.Contains(page, "No messages yet") {
		t.Error("empty mailbox page")
	}
	_, js = get("/dev/mail.json")
	if strings.TrimSpace(js) != "[]" {
		t.Errorf("empty json = %q", js)
	}
}
