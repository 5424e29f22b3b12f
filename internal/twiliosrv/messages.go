package twiliosrv

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxRequestBytes bounds a create request.
	maxRequestBytes = 1 << 20
	// maxBodyChars is Twilio's limit on a message body (error 21617).
	maxBodyChars = 1600

	defaultPageSize = 50
	maxPageSize     = 1000
)

// e164 is what CheckNumbers accepts as a To.
var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()

	account, ok := s.authorize(w, r)
	if !ok {
		return
	}
	form, err := parseForm(w, r)
	if err != nil {
		writeError(w, http.StatusBadRequest, 20001, err.Error())
		return
	}
	m, code, refusal := s.messageFromForm(form, account)
	if refusal != "" {
		writeError(w, http.StatusBadRequest, code, refusal)
		return
	}

	s.mu.Lock()
	faultFn := s.fault
	s.mu.Unlock()
	var f *Fault
	if faultFn != nil {
		f = faultFn(m)
	}
	if f == nil {
		s.store(m)
		writeJSON(w, http.StatusCreated, apiMessage(m))
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
		writeJSON(w, http.StatusCreated, apiMessage(m))
		return
	}
	writeFault(w, f)
}

// messageFromForm builds the message to store, or returns the Twilio error
// code and message refusing it.
func (s *Server) messageFromForm(form url.Values, account string) (m Message, code int, refusal string) {
	to := strings.TrimSpace(form.Get("To"))
	from := strings.TrimSpace(form.Get("From"))
	service := strings.TrimSpace(form.Get("MessagingServiceSid"))
	body := form.Get("Body")
	switch {
	case to == "":
		return m, 21604, "A 'To' phone number is required."
	case from == "" && service == "":
		return m, 21603, "A 'From' phone number is required."
	case body == "" && form.Get("MediaUrl") == "" && form.Get("ContentSid") == "":
		return m, 21602, "Message body is required."
	case utf8.RuneCountInString(body) > maxBodyChars:
		return m, 21617, "The concatenated message body exceeds the 1600 character limit."
	case s.opts.CheckNumbers && !e164.MatchString(to):
		return m, 21211, "The 'To' number " + to + " is not a valid phone number."
	}
	return Message{
		SID:                 newSID("SM"),
		AccountSID:          account,
		From:                from,
		MessagingServiceSID: service,
		To:                  to,
		Body:                body,
		StatusCallback:      form.Get("StatusCallback"),
		Status:              "queued",
		DateCreated:         time.Now().UTC(),
	}, 0, ""
}

// parseForm reads an application/x-www-form-urlencoded (or multipart) body.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var err error
	switch ct {
	case "multipart/form-data":
		err = r.ParseMultipartForm(maxRequestBytes)
	case "application/x-www-form-urlencoded":
		err = r.ParseForm()
	default:
		return nil, errors.New("unsupported content type, use application/x-www-form-urlencoded")
	}
	if err != nil {
		return nil, fmt.Errorf("malformed request body: %v", err)
	}
	return r.PostForm, nil
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
		code := f.Code
		if code == 0 {
			code = defaultCode(f.Status)
		}
		msg := http.StatusText(f.Status)
		if f.Status == http.StatusUnauthorized {
			msg = "Authenticate"
		}
		body = ErrorBody(f.Status, code, msg)
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

func (s *Server) handleFetch(w http.ResponseWriter, r *http.Request) {
	account, ok := s.authorize(w, r)
	if !ok {
		return
	}
	sid, isJSON := strings.CutSuffix(r.PathValue("file"), ".json")
	if isJSON {
		s.mu.Lock()
		for _, m := range s.messages {
			if m.SID == sid && m.AccountSID == account {
				cp := *m
				s.mu.Unlock()
				writeJSON(w, http.StatusOK, apiMessage(cp))
				return
			}
		}
		s.mu.Unlock()
	}
	writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
}

// listQuery is a parsed list request.
type listQuery struct {
	to, from string
	sent     []dateFilter
	pageSize int
	page     int
	// after/before: the page starts after (is just before) the message
	// with this arrival index, in the newest-first order. 0 = none.
	after, before int
	// filters are the filter parameters as received, repeated in paging URIs.
	filters url.Values
}

type dateFilter struct {
	op       string // "=", ">=", "<="
	at       time.Time
	dateOnly bool
}

func (f dateFilter) match(sent time.Time) bool {
	if sent.IsZero() {
		return false // queued messages have no date_sent
	}
	sent = sent.UTC()
	switch f.op {
	case ">=":
		return !sent.Before(f.at)
	case "<=":
		if f.dateOnly {
			return sent.Before(f.at.AddDate(0, 0, 1))
		}
		return !sent.After(f.at)
	default:
		y1, m1, d1 := sent.Date()
		y2, m2, d2 := f.at.Date()
		return y1 == y2 && m1 == m2 && d1 == d2
	}
}

// parseListQuery reads Twilio's list parameters. The DateSent inequalities
// are written "DateSent>=2024-05-01" in Twilio's documentation, which a URL
// parser reads as the parameter "DateSent>" with the value "2024-05-01";
// both spellings ("DateSent>" and "DateSent>=") mean "on or after", as on
// Twilio, and likewise for "<".
func parseListQuery(q url.Values) (listQuery, error) {
	lq := listQuery{pageSize: defaultPageSize, filters: url.Values{}}
	for key, vs := range q {
		if len(vs) == 0 {
			continue
		}
		v := vs[len(vs)-1]
		switch key {
		case "To":
			lq.to = compactNumber(v)
			lq.filters.Set(key, v)
		case "From":
			lq.from = compactNumber(v)
			lq.filters.Set(key, v)
		case "DateSent", "DateSent>", "DateSent>=", "DateSent<", "DateSent<=":
			op := "="
			if strings.Contains(key, ">") {
				op = ">="
			} else if strings.Contains(key, "<") {
				op = "<="
			}
			f, err := parseDateFilter(op, v)
			if err != nil {
				return lq, err
			}
			lq.sent = append(lq.sent, f)
			lq.filters.Set(key, v)
		case "PageSize":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return lq, fmt.Errorf("invalid PageSize %q", v)
			}
			lq.pageSize = min(n, maxPageSize)
		case "Page":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return lq, fmt.Errorf("invalid Page %q", v)
			}
			lq.page = n
		case "PageToken":
			n, err := strconv.Atoi(v[min(2, len(v)):])
			switch {
			case err != nil || n <= 0:
				return lq, fmt.Errorf("invalid PageToken %q", v)
			case strings.HasPrefix(v, "PA"):
				lq.after = n
			case strings.HasPrefix(v, "PB"):
				lq.before = n
			default:
				return lq, fmt.Errorf("invalid PageToken %q", v)
			}
		}
	}
	return lq, nil
}

func parseDateFilter(op, v string) (dateFilter, error) {
	v = strings.TrimSpace(v)
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return dateFilter{op: op, at: t, dateOnly: true}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return dateFilter{op: op, at: t.UTC()}, nil
	}
	return dateFilter{}, fmt.Errorf("invalid DateSent %q: use YYYY-MM-DD", v)
}

// indexed is a stored message with its 1-based arrival index.
type indexed struct {
	idx int
	msg Message
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	account, ok := s.authorize(w, r)
	if !ok {
		return
	}
	lq, err := parseListQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, 20001, err.Error())
		return
	}

	// Matching messages, newest first. Arrival indexes stay valid across
	// MaxMessages trimming because they count from the first message ever
	// stored since the last Reset.
	s.mu.Lock()
	offset := s.droppedLocked()
	var list []indexed
	for i := len(s.messages) - 1; i >= 0; i-- {
		m := s.messages[i]
		if m.AccountSID != account ||
			(lq.to != "" && compactNumber(m.To) != lq.to) ||
			(lq.from != "" && compactNumber(m.From) != lq.from) {
			continue
		}
		matches := true
		for _, f := range lq.sent {
			matches = matches && f.match(m.DateSent)
		}
		if matches {
			list = append(list, indexed{idx: offset + i + 1, msg: *m})
		}
	}
	s.mu.Unlock()

	// Select the page.
	start, end := 0, 0
	switch {
	case lq.after > 0:
		start = len(list)
		for i, it := range list {
			if it.idx < lq.after { // older than the cursor
				start = i
				break
			}
		}
		end = min(start+lq.pageSize, len(list))
	case lq.before > 0:
		end = 0
		for i, it := range list {
			if it.idx <= lq.before {
				break
			}
			end = i + 1
		}
		start = max(0, end-lq.pageSize)
	default:
		start = min(lq.page*lq.pageSize, len(list))
		end = min(start+lq.pageSize, len(list))
	}
	page := list[start:end]

	path := "/" + APIVersion + "/Accounts/" + url.PathEscape(account) + "/Messages.json"
	pageURI := func(page int, token string) string {
		v := url.Values{}
		for k, vs := range lq.filters {
			v[k] = slices.Clone(vs)
		}
		v.Set("PageSize", strconv.Itoa(lq.pageSize))
		v.Set("Page", strconv.Itoa(page))
		if token != "" {
			v.Set("PageToken", token)
		}
		return path + "?" + v.Encode()
	}
	var next, previous any // JSON null unless set
	if end < len(list) && len(page) > 0 {
		next = pageURI(lq.page+1, "PA"+strconv.Itoa(page[len(page)-1].idx))
	}
	if start > 0 && len(page) > 0 && lq.page > 0 {
		previous = pageURI(lq.page-1, "PB"+strconv.Itoa(page[0].idx))
	}
	msgs := make([]map[string]any, 0, len(page))
	for _, it := range page {
		msgs = append(msgs, apiMessage(it.msg))
	}
	first := lq.page * lq.pageSize
	last := first
	if len(page) > 0 {
		last = first + len(page) - 1
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"first_page_uri":    pageURI(0, ""),
		"end":               last,
		"previous_page_uri": previous,
		"messages":          msgs,
		"uri":               r.URL.RequestURI(),
		"page_size":         lq.pageSize,
		"start":             first,
		"next_page_uri":     next,
		"page":              lq.page,
	})
}

// apiMessage is Twilio's JSON representation of m.
func apiMessage(m Message) map[string]any {
	uri := "/" + APIVersion + "/Accounts/" + m.AccountSID + "/Messages/" + m.SID
	var dateSent, service any
	if !m.DateSent.IsZero() {
		dateSent = m.DateSent.UTC().Format(time.RFC1123Z)
	}
	if m.MessagingServiceSID != "" {
		service = m.MessagingServiceSID
	}
	updated := m.DateCreated
	if m.DateSent.After(updated) {
		updated = m.DateSent
	}
	return map[string]any{
		"account_sid":           m.AccountSID,
		"api_version":           APIVersion,
		"body":                  m.Body,
		"date_created":          m.DateCreated.UTC().Format(time.RFC1123Z),
		"date_sent":             dateSent,
		"date_updated":          updated.UTC().Format(time.RFC1123Z),
		"direction":             "outbound-api",
		"error_code":            nil,
		"error_message":         nil,
		"from":                  m.From,
		"messaging_service_sid": service,
		"num_media":             "0",
		"num_segments":          strconv.Itoa(segments(m.Body)),
		"price":                 nil,
		"price_unit":            "USD",
		"sid":                   m.SID,
		"status":                m.Status,
		"subresource_uris":      map[string]string{"media": uri + "/Media.json"},
		"to":                    m.To,
		"uri":                   uri + ".json",
	}
}

// segments estimates how many SMS parts body takes: GSM-7 (approximated as
// printable ASCII plus newlines) fits 160 characters in one part and 153 per
// part when split; anything else is UCS-2, 70 and 67.
func segments(body string) int {
	n := utf8.RuneCountInString(body)
	single, multi := 160, 153
	for _, r := range body {
		if r > 0x7e || (r < 0x20 && r != '\n' && r != '\r') {
			single, multi = 70, 67
			break
		}
	}
	if n <= single {
		return 1
	}
	return (n + multi - 1) / multi
}
