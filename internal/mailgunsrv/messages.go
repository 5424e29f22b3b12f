package mailgunsrv

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/mail"
	"strings"
	"time"
)

// maxRequestBytes bounds a send request, like Mailgun's 25 MB message limit.
const maxRequestBytes = 25 << 20

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()

	domain, ok := s.authorize(w, r)
	if !ok {
		return
	}

	form, status, err := parseForm(w, r)
	if err != nil {
		writeMessage(w, status, err.Error())
		return
	}
	m, err := messageFromForm(form, domain)
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}

	s.mu.Lock()
	faultFn := s.fault
	s.mu.Unlock()
	var f *Fault
	if faultFn != nil {
		f = faultFn(m.clone())
	}
	if f == nil {
		s.store(m)
		writeQueued(w, m.ID)
		return
	}

	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if f.AcceptThenFail {
		s.store(m)
		if !sleep(r, f.Delay) {
			return
		}
		if f.Status == 0 {
			abortConnection(w)
			return
		}
		writeFault(w, f)
		return
	}
	if !sleep(r, f.Delay) {
		return
	}
	if f.Status == 0 {
		s.store(m)
		writeQueued(w, m.ID)
		return
	}
	writeFault(w, f)
}

func writeQueued(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusOK, map[string]string{"id": "<" + id + ">", "message": "Queued. Thank you."})
}

// sleep waits d or until the client goes away; it reports whether the
// handler should go on answering.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return r.Context().Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

func writeFault(w http.ResponseWriter, f *Fault) {
	body := f.Body
	if body == "" {
		if f.Status == http.StatusUnauthorized {
			body = "Forbidden"
		} else {
			b, _ := json.Marshal(map[string]string{"message": http.StatusText(f.Status)})
			body = string(b)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		if strings.HasPrefix(strings.TrimSpace(body), "{") {
			w.Header().Set("Content-Type", "application/json")
		} else {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
}

// abortConnection drops the connection without writing any response, so the
// client sees a transport error.
func abortConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// HTTP/2 or a wrapped writer: net/http aborts the stream/connection
	// without logging when a handler panics with ErrAbortHandler.
	panic(http.ErrAbortHandler)
}

// parseForm reads either encoding mailgun-go (and curl) may use.
func parseForm(w http.ResponseWriter, r *http.Request) (map[string][]string, int, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch ct {
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxRequestBytes)
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	default:
		return nil, http.StatusBadRequest, errors.New("unsupported content type, use multipart/form-data or application/x-www-form-urlencoded")
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			//lint:ignore ST1005 Mailgun's own wording, which clients may match
			return nil, http.StatusRequestEntityTooLarge, errors.New("Request Entity Too Large")
		}
		return nil, http.StatusBadRequest, fmt.Errorf("malformed request body: %v", err)
	}
	return r.PostForm, 0, nil
}

func first(form map[string][]string, key string) string {
	if vs := form[key]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

func invalidAddress(param string) error {
	return fmt.Errorf("'%s' parameter is not a valid address. please check documentation", param)
}

func messageFromForm(form map[string][]string, domain string) (Message, error) {
	from := strings.TrimSpace(first(form, "from"))
	if from == "" {
		return Message{}, errors.New("'from' parameter is missing")
	}
	if _, err := mail.ParseAddress(from); err != nil {
		return Message{}, invalidAddress("from")
	}

	var to []string
	for _, v := range form["to"] {
		if strings.TrimSpace(v) == "" {
			continue
		}
		list, err := mail.ParseAddressList(v)
		if err != nil {
			return Message{}, invalidAddress("to")
		}
		for _, a := range list {
			to = append(to, a.Address)
		}
	}
	if len(to) == 0 {
		return Message{}, errors.New("'to' parameter is missing")
	}

	subject := first(form, "subject")
	if strings.TrimSpace(subject) == "" {
		return Message{}, errors.New("'subject' parameter is missing")
	}
	text, html := first(form, "text"), first(form, "html")
	if text == "" && html == "" && first(form, "template") == "" && first(form, "amp-html") == "" {
		//lint:ignore ST1005 Mailgun's own wording, which clients may match
		return Message{}, errors.New("Need at least one of 'text', 'html', 'amp-html' or 'template' parameters specified")
	}

	now := time.Now()
	m := Message{
		ID:         fmt.Sprintf("%s.%s@%s", now.UTC().Format("20060102150405"), randomID()[:16], strings.ToLower(domain)),
		Domain:     domain,
		From:       from,
		To:         to,
		Subject:    subject,
		Text:       text,
		HTML:       html,
		Tags:       append([]string(nil), form["o:tag"]...),
		Headers:    map[string]string{},
		Variables:  map[string]string{},
		ReceivedAt: now,
	}
	switch strings.ToLower(first(form, "o:testmode")) {
	case "yes", "true":
		m.TestMode = true
	}
	for key, vs := range form {
		if len(vs) == 0 {
			continue
		}
		switch {
		case strings.HasPrefix(key, "h:"):
			name := key[2:]
			m.Headers[name] = vs[len(vs)-1]
			if strings.EqualFold(name, "X-Mailgun-Variables") {
				for _, v := range vs {
					mergeJSONVariables(m.Variables, v)
				}
			}
		case strings.HasPrefix(key, "v:"):
			m.Variables[key[2:]] = vs[len(vs)-1]
		}
	}
	return m, nil
}

// mergeJSONVariables adds the members of a JSON object (as sent in
// X-Mailgun-Variables) to vars; strings keep their value, anything else its
// JSON text. Explicit v:* fields win over header-provided ones.
func mergeJSONVariables(vars map[string]string, raw string) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil {
		return
	}
	for k, v := range obj {
		if _, exists := vars[k]; exists {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			vars[k] = s
		} else {
			vars[k] = string(v)
		}
	}
}

// normalizeAddr returns the bare address of "Name <addr>" or addr itself.
func normalizeAddr(s string) string {
	s = strings.TrimSpace(s)
	if a, err := mail.ParseAddress(s); err == nil {
		return a.Address
	}
	return strings.Trim(s, "<>")
}
