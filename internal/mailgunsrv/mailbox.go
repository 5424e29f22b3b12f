package mailgunsrv

import (
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// MailboxHandler returns the development mailbox views:
//
//	GET /dev/mail            HTML page listing caught messages, newest first
//	GET /dev/mail.json       JSON array of the messages, newest first
//	GET /dev/mail/{id}.html  one message's HTML body, served sandboxed
//
// Mount it at the root of a mux for those paths, e.g.
//
//	mux.Handle("/dev/mail", h); mux.Handle("/dev/mail.json", h); mux.Handle("/dev/mail/", h)
//
// Message HTML is never inlined into the page: it is shown in an iframe with
// a sandbox attribute (no scripts, no forms, unique origin; only a user
// clicking a link may navigate away), and the standalone view carries a CSP
// sandbox header.
func (s *Server) MailboxHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dev/mail", s.serveMailboxPage)
	mux.HandleFunc("GET /dev/mail.json", s.serveMailboxJSON)
	mux.HandleFunc("GET /dev/mail/{file}", s.serveMailboxHTML)
	return mux
}

func (s *Server) newestFirst() []Message {
	msgs := s.Messages()
	slices.Reverse(msgs)
	return msgs
}

func (s *Server) serveMailboxJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.newestFirst())
}

func (s *Server) serveMailboxHTML(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue("file"), ".html")
	if !ok {
		http.NotFound(w, r)
		return
	}
	for _, m := range s.Messages() {
		if m.ID != id {
			continue
		}
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Security-Policy", "sandbox; default-src 'none'; img-src * data:; style-src 'unsafe-inline' *; font-src * data:")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		body := m.HTML
		if body == "" {
			body = "<pre>" + template.HTMLEscapeString(m.Text) + "</pre>"
		}
		_, _ = w.Write([]byte(body))
		return
	}
	http.NotFound(w, r)
}

type mailboxView struct {
	Count    int
	Messages []mailboxEntry
}

type mailboxEntry struct {
	Message
	HTMLURL string
	Vars    []string
}

func (s *Server) serveMailboxPage(w http.ResponseWriter, r *http.Request) {
	msgs := s.newestFirst()
	view := mailboxView{Count: len(msgs)}
	for _, m := range msgs {
		e := mailboxEntry{Message: m, HTMLURL: "/dev/mail/" + url.PathEscape(m.ID+".html")}
		for k, v := range m.Variables {
			e.Vars = append(e.Vars, k+"="+v)
		}
		slices.Sort(e.Vars)
		view.Messages = append(view.Messages, e)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-src 'self'; font-src * data:")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if err := mailboxTemplate.Execute(w, view); err != nil {
		http.Error(w, "rendering mailbox: "+err.Error(), http.StatusInternalServerError)
	}
}

var mailboxTemplate = template.Must(template.New("mailbox").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Usher dev mailbox ({{.Count}})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1f2328; }
header { background: #24292f; color: #fff; padding: 12px 24px; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header a { color: #9ecbff; }
main { max-width: 1100px; margin: 0 auto; padding: 16px 24px; }
article { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin-bottom: 16px; }
article > summary, details > summary { cursor: pointer; }
.head { padding: 12px 16px; border-bottom: 1px solid #d0d7de; }
.subject { font-weight: 600; font-size: 16px; }
.meta { color: #57606a; font-size: 13px; margin-top: 4px; }
.meta span { margin-right: 12px; }
.tag { background: #ddf4ff; color: #0969da; border-radius: 10px; padding: 1px 8px; font-size: 12px; }
.test { background: #fff8c5; color: #7d4e00; border-radius: 10px; padding: 1px 8px; font-size: 12px; }
.body { padding: 12px 16px; }
pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa; padding: 12px; border-radius: 6px; margin: 0; }
iframe { width: 100%; height: 480px; border: 1px solid #d0d7de; border-radius: 6px; background: #fff; }
.empty { color: #57606a; text-align: center; padding: 48px; }
</style>
</head>
<body>
<header><h1>Usher dev mailbox</h1><span>{{.Count}} message(s), newest first</span><a href="/dev/mail">refresh</a><a href="/dev/mail.json">JSON</a></header>
<main>
{{- range .Messages}}
<article id="{{.ID}}">
  <div class="head">
    <div class="subject">{{.Subject}}</div>
    <div class="meta">
      <span><b>From:</b> {{.From}}</span>
      <span><b>To:</b> {{range $i, $to := .To}}{{if $i}}, {{end}}{{$to}}{{end}}</span>
      <span><b>At:</b> <time datetime="{{.ReceivedAt.UTC.Format "2006-01-02T15:04:05Z07:00"}}">{{.ReceivedAt.UTC.Format "2006-01-02 15:04:05 UTC"}}</time></span>
      {{- range .Tags}} <span class="tag">{{.}}</span>{{end}}
      {{- if .TestMode}} <span class="test">test mode</span>{{end}}
    </div>
    <div class="meta"><span>ID: {{.ID}}</span>{{range .Vars}}<span>{{.}}</span>{{end}}</div>
  </div>
  <div class="body">
    {{- if .HTML}}
    <details open><summary>HTML (<a href="{{.HTMLURL}}" target="_blank" rel="noopener noreferrer">open alone</a>)</summary>
      <iframe sandbox="allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation" referrerpolicy="no-referrer" title="HTML body of {{.Subject}}" srcdoc="{{.HTML}}"></iframe>
    </details>
    {{- end}}
    {{- if .Text}}
    <details{{if not .HTML}} open{{end}}><summary>Plain text</summary><pre>{{.Text}}</pre></details>
    {{- end}}
  </div>
</article>
{{- else}}
<p class="empty">No messages yet. Anything Usher sends while running in dev mode shows up here.</p>
{{- end}}
</main>
</body>
</html>
`))
