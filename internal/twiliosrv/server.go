// Package twiliosrv is a small local HTTP server that speaks the parts of
// Twilio's 2010-04-01 REST API that Usher uses: creating a Message (sending
// an SMS) and listing and fetching Messages.
//
// Like internal/mailgunsrv it serves two purposes:
//
//   - tests exercise the real sms.Twilio client against it, including
//     failures injected with [Server.SetFault] (rate limits, outages,
//     refusals, and the "accepted but the answer got lost" case);
//   - `usher dev` uses it as the development phone: every SMS Usher "sends"
//     is caught here and can be read at /dev/sms (see [Server.InboxHandler]).
//
// Mount the Server itself (an [http.Handler]) so that it sees the
// /2010-04-01/... paths, and point the client's API base at the server's
// root URL (no path).
//
// Emulated endpoints:
//
//	POST /2010-04-01/Accounts/{AccountSid}/Messages.json        create (form: To, From, Body)
//	GET  /2010-04-01/Accounts/{AccountSid}/Messages.json        list (To, From, DateSent filters, paging)
//	GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json  fetch one
//
// Errors are answered with Twilio's error document:
//
//	{"code": 21211, "message": "…", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}
package twiliosrv

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// APIVersion is the path prefix of every emulated API endpoint.
const APIVersion = "2010-04-01"

// Options configures a Server. The zero value accepts any account SID and
// requires no authentication.
type Options struct {
	// AccountSID, if set, is the only account the server knows: other
	// accounts in the path get 404 (code 20404), and it is the basic-auth
	// user name required when AuthToken is set.
	AccountSID string
	// AuthToken, if set, is required as the basic-auth password. Missing or
	// wrong credentials get 401 with code 20003, as on Twilio.
	AuthToken string
	// CheckNumbers makes the server refuse a To that is not in E.164 form
	// ("+" and 2 to 15 digits, the first not 0) with 400 code 21211, as
	// Twilio refuses numbers it cannot parse. Off, any non-empty To is taken.
	CheckNumbers bool
	// HoldQueued keeps accepted messages in status "queued" with no
	// date_sent, as on a busy account. By default the server "sends" each
	// message at once: status "sent", date_sent = date_created. Either way
	// the create answer says "queued", like Twilio's.
	HoldQueued bool
	// MaxMessages, if > 0, keeps only the newest MaxMessages messages.
	// Useful for a long-running development phone.
	MaxMessages int
	// Logger, if set, gets one line per accepted message (sid, to, from;
	// never the body, which carries secret links).
	Logger *slog.Logger
}

// Message is a message the server accepted, as the client sent it.
type Message struct {
	// SID is "SM" followed by 32 hex digits.
	SID                 string `json:"sid"`
	AccountSID          string `json:"account_sid"`
	From                string `json:"from"`
	MessagingServiceSID string `json:"messaging_service_sid,omitempty"`
	To                  string `json:"to"`
	Body                string `json:"body"`
	// StatusCallback is the StatusCallback form field, if any (the server
	// never calls it).
	StatusCallback string `json:"status_callback,omitempty"`
	// Status is "queued" or "sent" (see Options.HoldQueued).
	Status      string    `json:"status"`
	DateCreated time.Time `json:"date_created"`
	// DateSent is zero while the message is queued.
	DateSent time.Time `json:"date_sent,omitzero"`
}

// Fault describes how the server should misbehave for one create request.
//
//   - Status != 0 (and not AcceptThenFail): answer Status with Header and
//     Body instead of accepting; nothing is stored. An empty Body becomes
//     Twilio's error document for that status, with Code (or a usual code
//     for the status: 20003 for 401, 20404 for 404, 20429 for 429, …).
//   - AcceptThenFail: store the message exactly as if it had been accepted,
//     then make the client see a failure: with Status != 0 answer that
//     status, with Status == 0 close the connection without any answer.
//   - Delay: wait this long before answering (giving up if the client goes
//     away). With AcceptThenFail the message is stored before the delay, so
//     a client timing out still leaves it accepted; otherwise nothing is
//     stored if the client goes away during the delay.
//
// A Fault with only Delay set accepts the message normally after the delay.
type Fault struct {
	Status         int
	Code           int
	Header         http.Header
	Body           string
	AcceptThenFail bool
	Delay          time.Duration
}

// Server is an in-memory Twilio Messages API emulator. It is safe for
// concurrent use.
type Server struct {
	opts Options
	mux  *http.ServeMux

	mu       sync.Mutex
	messages []*Message // arrival order
	dropped  int        // messages dropped by MaxMessages since the last Reset
	requests int
	fault    func(Message) *Fault
	changed  chan struct{} // closed and replaced whenever messages change
}

// New returns a Server configured by opts.
func New(opts Options) *Server {
	s := &Server{opts: opts, changed: make(chan struct{})}
	mux := http.NewServeMux()
	base := "/" + APIVersion + "/Accounts/{account}/"
	mux.HandleFunc("POST "+base+"Messages.json", s.handleCreate)
	mux.HandleFunc("GET "+base+"Messages.json", s.handleList)
	mux.HandleFunc("GET "+base+"Messages/{file}", s.handleFetch)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	s.mux = mux
	return s
}

// ServeHTTP serves the emulated Twilio API under /2010-04-01.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// SetFault installs f, called for every create request that passed
// authentication and validation, with the message that would be stored
// (including its generated SID). f returning nil lets the request succeed
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
	for _, m := range s.messages {
		out = append(out, *m)
	}
	return out
}

// MessagesTo returns the stored messages sent to number, in arrival order.
// Spaces, dashes, dots and parentheses in number are ignored.
func (s *Server) MessagesTo(number string) []Message {
	want := compactNumber(number)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if compactNumber(m.To) == want {
			out = append(out, *m)
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

// Reset forgets all stored messages and zeroes the request counter. The
// fault function, if any, stays installed.
func (s *Server) Reset() {
	s.mu.Lock()
	s.messages = nil
	s.dropped = 0
	s.requests = 0
	s.notifyLocked()
	s.mu.Unlock()
}

// Requests returns how many create (POST .../Messages.json) requests the
// server has seen since it was created or Reset, whatever their outcome.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// droppedLocked is how many messages MaxMessages trimming dropped: the
// arrival index of s.messages[i] is droppedLocked() + i + 1.
func (s *Server) droppedLocked() int { return s.dropped }

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// store records m.
func (s *Server) store(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.HoldQueued {
		m.Status = "sent"
		m.DateSent = m.DateCreated
	}
	s.messages = append(s.messages, &m)
	if max := s.opts.MaxMessages; max > 0 && len(s.messages) > max {
		drop := len(s.messages) - max
		s.dropped += drop
		s.messages = append([]*Message(nil), s.messages[drop:]...)
	}
	s.notifyLocked()
	if s.opts.Logger != nil {
		s.opts.Logger.Info("twiliosrv: accepted message", "sid", m.SID, "to", m.To, "from", m.From)
	}
}

// authorize checks basic auth and the account SID, writing Twilio's answer
// and returning false when the request must stop.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) (account string, ok bool) {
	account = r.PathValue("account")
	if s.opts.AuthToken != "" {
		user, pass, hasAuth := r.BasicAuth()
		wantUser := s.opts.AccountSID
		if wantUser == "" {
			wantUser = account
		}
		if !hasAuth || subtle.ConstantTimeCompare([]byte(user), []byte(wantUser)) != 1 ||
			subtle.ConstantTimeCompare([]byte(pass), []byte(s.opts.AuthToken)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
			writeError(w, http.StatusUnauthorized, 20003, "Authenticate")
			return "", false
		}
	}
	if s.opts.AccountSID != "" && account != s.opts.AccountSID {
		writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return "", false
	}
	return account, true
}

// ErrorBody returns Twilio's JSON error document, for a Fault's Body.
func ErrorBody(status, code int, message string) string {
	b, _ := json.Marshal(twilioError{Code: code, Message: message,
		MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), Status: status})
	return string(b)
}

type twilioError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

// defaultCode is the Twilio error code usually sent with an HTTP status.
func defaultCode(status int) int {
	switch status {
	case http.StatusBadRequest:
		return 21211 // the most common refusal of a send: invalid 'To'
	case http.StatusUnauthorized, http.StatusForbidden:
		return 20003
	case http.StatusNotFound:
		return 20404
	case http.StatusMethodNotAllowed:
		return 20004
	case http.StatusTooManyRequests:
		return 20429
	case http.StatusInternalServerError:
		return 20500
	case http.StatusServiceUnavailable:
		return 20503
	}
	return 20001
}

func writeError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(ErrorBody(status, code, message)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// newSID returns prefix followed by 32 random hex digits, like Twilio SIDs.
func newSID(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// compactNumber drops the formatting people put in phone numbers.
func compactNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '.', '(', ')', '\t':
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}
