// Package mailgunsrv is a small local HTTP server that speaks the parts of
// Mailgun's v3 HTTP API that Usher uses: sending a message and listing the
// "accepted" events.
//
// It serves two purposes:
//
//   - tests exercise the real mailgun-go client against it, including failures
//     injected with [Server.SetFault] (rate limits, outages, refusals, and the
//     "accepted but the answer got lost" case);
//   - `usher dev` uses it as the development mailbox: everything Usher "sends"
//     is caught here and can be read at /dev/mail (see [Server.MailboxHandler]).
//
// Mount the Server itself (an [http.Handler]) so that it sees the /v3/...
// paths, and point the client at it with mg.SetAPIBase(baseURL + "/v3").
//
// Emulated endpoints:
//
//	POST /v3/{domain}/messages      multipart/form-data or x-www-form-urlencoded
//	GET  /v3/{domain}/events        list "accepted" events (filters, paging)
//	GET  /v3/{domain}/events/{page} follow paging.next/previous/first/last
//
// With Options.WebhookURL set it also posts signed event webhooks (delivered, or a
// permanent failure for the addresses Options.Bounce picks) as Mailgun does.
package mailgunsrv

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Options configures a Server. The zero value accepts any domain and requires
// no authentication.
type Options struct {
	// Domain, if set, is the only sending domain the server knows; requests for
	// any other domain get 404 {"message":"Domain not found: x"} like Mailgun.
	Domain string
	// APIKey, if set, is required as the HTTP basic-auth password (user "api").
	// Wrong or missing credentials get 401 "Forbidden" like Mailgun.
	APIKey string
	// PublicURL, if set, is the base URL (scheme://host[/prefix]) under which
	// the /v3 paths are reachable; it is used to build the absolute paging
	// URLs of the events API. By default they are derived from the request.
	PublicURL string
	// MaxMessages, if > 0, keeps only the newest MaxMessages messages (and
	// their events). Useful for a long-running development mailbox.
	MaxMessages int
	// Logger, if set, gets one line per accepted message (id, recipients,
	// subject; never the body).
	Logger *slog.Logger

	// WebhookURL, if set, receives Mailgun's event webhooks for every accepted
	// message (see webhooks.go and [Server.SetWebhook]), signed with
	// WebhookSigningKey, WebhookDelay after the message was accepted.
	WebhookURL        string
	WebhookSigningKey string
	WebhookDelay      time.Duration
	// Bounce, if set, picks the recipients whose messages bounce: their webhook is a
	// permanent "failed" instead of "delivered" (see [BounceLocalPartPrefix]).
	Bounce func(recipient string) bool
}

// Message is a message the server accepted, as the client sent it.
type Message struct {
	// ID is the Mailgun message id without angle brackets, as it appears in
	// events' message.headers.message-id. The send response wraps it in <>.
	ID     string `json:"id"`
	Domain string `json:"domain"`
	From   string `json:"from"`
	// To holds the bare e-mail address of every recipient given in "to"
	// fields (each field may hold a comma-separated list), in order.
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	Text    string   `json:"text"`
	HTML    string   `json:"html"`
	// Tags are the o:tag values.
	Tags []string `json:"tags"`
	// Headers are the h:* fields, keyed without the "h:" prefix.
	Headers map[string]string `json:"headers"`
	// Variables are the v:* user variables, keyed without the "v:" prefix,
	// merged with the JSON object(s) given in h:X-Mailgun-Variables.
	Variables map[string]string `json:"variables"`
	// TestMode is true when o:testmode was "yes"/"true".
	TestMode   bool      `json:"test_mode"`
	ReceivedAt time.Time `json:"received_at"`
}

func (m Message) clone() Message {
	c := m
	c.To = append([]string(nil), m.To...)
	c.Tags = append([]string(nil), m.Tags...)
	c.Headers = cloneMap(m.Headers)
	c.Variables = cloneMap(m.Variables)
	return c
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// Fault describes how the server should misbehave for one send request.
//
//   - Status != 0 (and not AcceptThenFail): answer Status with Header and Body
//     instead of accepting; nothing is stored. An empty Body becomes Mailgun's
//     usual body for that status ("Forbidden" for 401, otherwise
//     {"message":"<status text>"}).
//   - AcceptThenFail: store the message exactly as if it had been accepted,
//     then make the client see a failure: with Status != 0 answer that
//     status, with Status == 0 close the connection without any answer.
//   - Delay: wait this long before answering (giving up if the client goes
//     away). With AcceptThenFail the message is stored before the delay, so a
//     client timing out still leaves it accepted; otherwise nothing is stored
//     if the client goes away during the delay.
//
// A Fault with only Delay set accepts the message normally after the delay.
type Fault struct {
	Status         int
	Header         http.Header
	Body           string
	AcceptThenFail bool
	Delay          time.Duration
}

// Server is an in-memory Mailgun API emulator. It is safe for concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	messages []*stored
	events   []*event
	seq      int64 // last event sequence number handed out
	requests int
	fault    func(Message) *Fault
	changed  chan struct{} // closed and replaced whenever messages change
	webhooks sync.WaitGroup
}

type stored struct {
	msg Message
}

// event is one "accepted" event: Mailgun logs one per recipient.
type event struct {
	seq       int64
	id        string
	recipient string
	msg       *stored
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v3/{domain}/messages", s.handleSend)
	mux.HandleFunc("GET /v3/{domain}/events", s.handleEvents)
	mux.HandleFunc("GET /v3/{domain}/events/{page}", s.handleEvents)
	mux.HandleFunc("/v3/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Not Found"})
	})
	s.mux = mux
	return s
}

// ServeHTTP serves the emulated Mailgun API under /v3.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetFault installs f, called for every send request that passed
// authentication and validation, with the message that would be stored
// (including its generated ID). f returning nil lets the request succeed
// normally. f may block, e.g. to hold a send until the test releases it.
// SetFault(nil) removes the fault function.
func (s *Server) SetFault(f func(m Message) *Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Messages returns a copy of every stored message in arrival order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.messagesLocked()
}

func (s *Server) messagesLocked() []Message {
	out := make([]Message, 0, len(s.messages))
	for _, st := range s.messages {
		out = append(out, st.msg.clone())
	}
	return out
}

// MessagesTo returns the stored messages with addr (compared
// case-insensitively, display names ignored) among their recipients, in
// arrival order.
func (s *Server) MessagesTo(addr string) []Message {
	want := normalizeAddr(addr)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, st := range s.messages {
		for _, to := range st.msg.To {
			if strings.EqualFold(to, want) {
				out = append(out, st.msg.clone())
				break
			}
		}
	}
	return out
}

// WaitForMessages waits until at least n messages are stored and returns
// them all (as [Server.Messages]), or returns ctx's error.
func (s *Server) WaitForMessages(ctx context.Context, n int) ([]Message, error) {
	for {
		s.mu.Lock()
		if len(s.messages) >= n {
			out := s.messagesLocked()
			s.mu.Unlock()
			return out, nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ch:
		}
	}
}

// Reset forgets all stored messages and events and zeroes the request
// counter. The fault function, if any, stays installed.
func (s *Server) Reset() {
	s.mu.Lock()
	s.messages = nil
	s.events = nil
	s.requests = 0
	s.notifyLocked()
	s.mu.Unlock()
}

// Requests returns how many send (POST .../messages) requests the server has
// seen since it was created or Reset, whatever their outcome.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// store records m and its per-recipient events.
func (s *Server) store(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := &stored{msg: m}
	s.messages = append(s.messages, st)
	accepted := make([]*event, 0, len(m.To))
	for _, rcpt := range m.To {
		s.seq++
		ev := &event{seq: s.seq, id: randomID(), recipient: rcpt, msg: st}
		s.events = append(s.events, ev)
		accepted = append(accepted, ev)
	}
	s.scheduleWebhooksLocked(accepted)
	if max := s.opts.MaxMessages; max > 0 && len(s.messages) > max {
		drop := len(s.messages) - max
		dropped := make(map[*stored]bool, drop)
		for _, old := range s.messages[:drop] {
			dropped[old] = true
		}
		s.messages = append([]*stored(nil), s.messages[drop:]...)
		kept := s.events[:0:0]
		for _, ev := range s.events {
			if !dropped[ev.msg] {
				kept = append(kept, ev)
			}
		}
		s.events = kept
	}
	s.notifyLocked()
	if s.opts.Logger != nil {
		s.opts.Logger.Info("mailgunsrv: accepted message",
			"id", m.ID, "to", strings.Join(m.To, ", "), "subject", m.Subject, "test_mode", m.TestMode)
	}
}

// authorize checks basic auth and the domain, writing Mailgun's answer and
// returning false when the request must stop.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (domain string, ok bool) {
	if s.opts.APIKey != "" {
		user, pass, hasAuth := r.BasicAuth()
		if !hasAuth || user != "api" ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.APIKey)) != 1 {
			writeForbidden(w)
			return "", false
		}
	}
	domain = r.PathValue("domain")
	if s.opts.Domain != "" && !strings.EqualFold(domain, s.opts.Domain) {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "Domain not found: " + domain})
		return "", false
	}
	return domain, true
}

func writeForbidden(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("Forbidden"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

func writeMessage(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// randomID returns 22 URL-safe random characters, like Mailgun event ids.
func randomID() string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])[:22]
}
