package twiliosrv

import (
	"html/template"
	"net/http"
	"regexp"
	"slices"
)

// InboxHandler returns the development phone views (the SMS counterpart of
// mailgunsrv's MailboxHandler):
//
//	GET /dev/sms       HTML page listing caught messages, newest first
//	GET /dev/sms.json  JSON array of the messages ([Message]), newest first
//
// Mount it for both paths, e.g.
//
//	mux.Handle("/dev/sms", h); mux.Handle("/dev/sms.json", h)
//
// Message bodies are shown as escaped text; http(s) links in them are made
// clickable.
func (s *Server) InboxHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /dev/sms", s.serveInboxPage)
	mux.HandleFunc("GET /dev/sms.json", s.serveInboxJSON)
	return mux
}

func (s *Server) newestFirst() []Message {
	msgs := s.Messages()
	slices.Reverse(msgs)
	return msgs
}

func (s *Server) serveInboxJSON(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, s.newestFirst())
}

type inboxView struct {
	Count    int
	Messages []inboxEntry
}

type inboxEntry struct {
	Message
	Parts []bodyPart
}

// bodyPart is a run of body text, or a link when URL is set.
type bodyPart struct {
	Text string
	URL  string
}

var bodyLink = regexp.MustCompile(`https?://[^\s<>"']+`)

// splitLinks cuts body into text and link parts. Trailing punctuation is
// left out of links ("see https://x.test/a." links to https://x.test/a).
func splitLinks(body string) []bodyPart {
	var parts []bodyPart
	last := 0
	for _, loc := range bodyLink.FindAllStringIndex(body, -1) {
		start, end := loc[0], loc[1]
		for end > start && isTrailingPunct(body[end-1]) {
			end--
		}
		if start > last {
			parts = append(parts, bodyPart{Text: body[last:start]})
		}
		parts = append(parts, bodyPart{Text: body[start:end], URL: body[start:end]})
		last = end
	}
	if last < len(body) {
		parts = append(parts, bodyPart{Text: body[last:]})
	}
	return parts
}

func isTrailingPunct(c byte) bool {
	switch c {
	case '.', ',', ';', ':', '!', '?', ')', ']':
		return true
	}
	return false
}

func (s *Server) serveInboxPage(w http.ResponseWriter, r *http.Request) {
	msgs := s.newestFirst()
	view := inboxView{Count: len(msgs)}
	for _, m := range msgs {
		view.Messages = append(view.Messages, inboxEntry{Message: m, Parts: splitLinks(m.Body)})
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	if err := inboxTemplate.Execute(w, view); err != nil {
		http.Error(w, "rendering inbox: "+err.Error(), http.StatusInternalServerError)
	}
}

var inboxTemplate = template.Must(template.New("inbox").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Usher dev SMS ({{.Count}})</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1f2328; }
header { background: #24292f; color: #fff; padding: 12px 24px; display: flex; gap: 16px; align-items: baseline; }
header h1 { font-size: 18px; margin: 0; }
header a { color: #9ecbff; }
main { max-width: 800px; margin: 0 auto; padding: 16px 24px; }
article { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; margin-bottom: 16px; }
.head { padding: 12px 16px; border-bottom: 1px solid #d0d7de; }
.to { font-weight: 600; font-size: 16px; }
.meta { color: #57606a; font-size: 13px; margin-top: 4px; }
.meta span { margin-right: 12px; }
.status { background: #ddf4ff; color: #0969da; border-radius: 10px; padding: 1px 8px; font-size: 12px; }
.body { padding: 12px 16px; }
.bubble { white-space: pre-wrap; word-break: break-word; background: #e7f3e8; padding: 10px 14px; border-radius: 14px; display: inline-block; max-width: 90%; }
.empty { color: #57606a; text-align: center; padding: 48px; }
</style>
</head>
<body>
<header><h1>Usher dev SMS</h1><span>{{.Count}} message(s), newest first</span><a href="/dev/sms">refresh</a><a href="/dev/sms.json">JSON</a></header>
<main>
{{- range .Messages}}
<article id="{{.SID}}">
  <div class="head">
    <div class="to">To: {{.To}}</div>
    <div class="meta">
      <span><b>From:</b> {{if .From}}{{.From}}{{else}}{{.MessagingServiceSID}}{{end}}</span>
      <span><b>At:</b> <time datetime="{{.DateCreated.UTC.Format "2006-01-02T15:04:05Z07:00"}}">{{.DateCreated.UTC.Format "2006-01-02 15:04:05 UTC"}}</time></span>
      <span class="status">{{.Status}}</span>
    </div>
    <div class="meta"><span>SID: {{.SID}}</span></div>
  </div>
  <div class="body"><div class="bubble">{{range .Parts}}{{if .URL}}<a href="{{.URL}}" rel="noopener noreferrer">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}</div></div>
</article>
{{- else}}
<p class="empty">No messages yet. Any SMS Usher sends while running in dev mode shows up here.</p>
{{- end}}
</main>
</body>
</html>
`))
