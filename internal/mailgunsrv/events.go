package mailgunsrv

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	defaultEventLimit = 100
	maxEventLimit     = 300
)

// Filter fields understood by GET /v3/{domain}/events, as on Mailgun. A
// filter value may be a Mailgun filter expression of the form "a OR b"
// (for event, recipient, to, from, tags, message-id). Unknown fields are
// ignored.
//
// user-variables takes a JSON object, e.g. {"usher_delivery_id":"abc"}; an
// event matches when every member equals the event's user variable of the
// same name. This is the form Mailgun's events API accepts for filtering on
// data attached with v:* fields.
var filterFields = []string{"event", "recipient", "to", "from", "subject", "message-id", "tags", "user-variables"}

// pageQuery is everything needed to (re)compute one page; it is what the
// opaque paging URLs encode.
type pageQuery struct {
	Filters   map[string]string `json:"f,omitempty"`
	Limit     int               `json:"l"`
	Ascending bool              `json:"a"`
	Begin     int64             `json:"b"`           // unix micro
	End       *int64            `json:"e,omitempty"` // unix micro; nil = open range
	Mode      string            `json:"m"`           // first, last, after, before
	Seq       int64             `json:"s,omitempty"` // cursor for after/before
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	domain, ok := s.authorize(w, r)
	if !ok {
		return
	}
	var (
		q   pageQuery
		err error
	)
	if token := r.PathValue("page"); token != "" {
		q, err = decodePage(token)
	} else {
		q, err = parseEventQuery(r.URL.Query(), time.Now())
	}
	if err != nil {
		writeMessage(w, http.StatusBadRequest, err.Error())
		return
	}

	list := s.matchingEvents(domain, q)
	page := selectPage(list, q)

	items := make([]eventItem, 0, len(page))
	for _, ev := range page {
		items = append(items, makeItem(ev))
	}

	base := s.baseURL(r) + "/v3/" + url.PathEscape(domain) + "/events/"
	link := func(mode string, seq int64) string {
		p := q
		p.Mode, p.Seq = mode, seq
		return base + encodePage(p)
	}
	current := base + encodePage(q)
	paging := map[string]string{
		"first": link("first", 0),
		"last":  link("last", 0),
	}
	if len(page) > 0 {
		paging["next"] = link("after", page[len(page)-1].seq)
		paging["previous"] = link("before", page[0].seq)
	} else {
		// An empty page: asking again later may return new events (Mailgun's
		// polling semantics), so next/previous point back at this page.
		paging["next"] = current
		paging["previous"] = current
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "paging": paging})
}

func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func encodePage(q pageQuery) string {
	b, _ := json.Marshal(q)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodePage(token string) (pageQuery, error) {
	var q pageQuery
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &q)
	}
	if err != nil || q.Limit <= 0 {
		return pageQuery{}, errors.New("invalid page URL")
	}
	return q, nil
}

// parseEventQuery interprets the query parameters of a first request the
// way Mailgun documents them: begin defaults to now; with end given the
// direction follows from begin/end, otherwise from ascending (default no).
func parseEventQuery(v url.Values, now time.Time) (pageQuery, error) {
	q := pageQuery{Limit: defaultEventLimit, Mode: "first", Filters: map[string]string{}}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return q, fmt.Errorf("invalid limit %q", l)
		}
		q.Limit = min(n, maxEventLimit)
	}
	begin := now
	if b := v.Get("begin"); b != "" {
		t, err := parseMailgunTime(b)
		if err != nil {
			return q, fmt.Errorf("invalid begin %q", b)
		}
		begin = t
	}
	q.Begin = begin.UnixMicro()

	asc := v.Get("ascending")
	switch asc {
	case "", "yes", "no":
	default:
		return q, fmt.Errorf("invalid ascending %q, use yes or no", asc)
	}
	if e := v.Get("end"); e != "" {
		t, err := parseMailgunTime(e)
		if err != nil {
			return q, fmt.Errorf("invalid end %q", e)
		}
		end := t.UnixMicro()
		q.End = &end
		q.Ascending = end >= q.Begin
		if (asc == "yes" && !q.Ascending) || (asc == "no" && q.Ascending) {
			return q, errors.New("'ascending' contradicts the relation of 'begin' and 'end'")
		}
	} else {
		q.Ascending = asc == "yes"
	}

	for _, f := range filterFields {
		if val := v.Get(f); val != "" {
			q.Filters[f] = val
		}
	}
	if uv, ok := q.Filters["user-variables"]; ok {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(uv), &obj); err != nil {
			return q, errors.New("'user-variables' must be a JSON object")
		}
	}
	return q, nil
}

// parseMailgunTime accepts RFC 2822 dates (what mailgun-go sends) and epoch
// seconds, possibly fractional.
func parseMailgunTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)), nil
	}
	for _, layout := range []string{
		"Mon, 2 Jan 2006 15:04:05 -0700",
		"Mon, 2 Jan 2006 15:04:05 MST",
		"2 Jan 2006 15:04:05 -0700",
		time.RFC1123Z,
		time.RFC1123,
		time.RFC3339,
	} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("bad time")
}

// matchingEvents returns the events of domain within q's time range that
// pass q's filters, in traversal order.
func (s *Server) matchingEvents(domain string, q pageQuery) []*event {
	var uv map[string]json.RawMessage
	if raw, ok := q.Filters["user-variables"]; ok {
		_ = json.Unmarshal([]byte(raw), &uv)
	}

	s.mu.Lock()
	all := append([]*event(nil), s.events...)
	s.mu.Unlock()

	var out []*event
	for _, ev := range all {
		m := &ev.msg.msg
		if !strings.EqualFold(m.Domain, domain) {
			continue
		}
		ts := m.ReceivedAt.UnixMicro()
		if q.Ascending {
			if ts < q.Begin || (q.End != nil && ts > *q.End) {
				continue
			}
		} else {
			if ts > q.Begin || (q.End != nil && ts < *q.End) {
				continue
			}
		}
		if !matchFilters(ev, q.Filters, uv) {
			continue
		}
		out = append(out, ev)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if q.Ascending {
			return out[i].seq < out[j].seq
		}
		return out[i].seq > out[j].seq
	})
	return out
}

// selectPage cuts the page q asks for out of list (in traversal order).
func selectPage(list []*event, q pageQuery) []*event {
	// isAfter reports whether ev comes after the cursor in traversal order.
	isAfter := func(ev *event) bool {
		if q.Ascending {
			return ev.seq > q.Seq
		}
		return ev.seq < q.Seq
	}
	var sel []*event
	switch q.Mode {
	case "after":
		for _, ev := range list {
			if isAfter(ev) {
				sel = append(sel, ev)
			}
		}
		return sel[:min(len(sel), q.Limit)]
	case "before":
		for _, ev := range list {
			if ev.seq != q.Seq && !isAfter(ev) {
				sel = append(sel, ev)
			}
		}
		return sel[max(0, len(sel)-q.Limit):]
	case "last":
		return list[max(0, len(list)-q.Limit):]
	default: // first
		return list[:min(len(list), q.Limit)]
	}
}

func matchFilters(ev *event, filters map[string]string, uv map[string]json.RawMessage) bool {
	m := &ev.msg.msg
	for field, expr := range filters {
		switch field {
		case "event":
			if !matchAny(expr, func(t string) bool { return strings.EqualFold(t, "accepted") }) {
				return false
			}
		case "recipient":
			if !matchAny(expr, func(t string) bool { return strings.EqualFold(normalizeAddr(t), ev.recipient) }) {
				return false
			}
		case "to":
			if !matchAny(expr, func(t string) bool {
				for _, to := range m.To {
					if strings.EqualFold(normalizeAddr(t), to) {
						return true
					}
				}
				return false
			}) {
				return false
			}
		case "from":
			if !matchAny(expr, func(t string) bool {
				return strings.EqualFold(normalizeAddr(t), normalizeAddr(m.From)) ||
					strings.Contains(strings.ToLower(m.From), strings.ToLower(t))
			}) {
				return false
			}
		case "subject":
			t := strings.Trim(strings.TrimSpace(expr), `"`)
			if !strings.Contains(strings.ToLower(m.Subject), strings.ToLower(t)) {
				return false
			}
		case "message-id":
			if !matchAny(expr, func(t string) bool { return strings.Trim(t, "<>") == m.ID }) {
				return false
			}
		case "tags":
			if !matchAny(expr, func(t string) bool {
				for _, tag := range m.Tags {
					if strings.EqualFold(tag, t) {
						return true
					}
				}
				return false
			}) {
				return false
			}
		case "user-variables":
			for k, want := range uv {
				got, ok := m.Variables[k]
				if !ok || !variableEquals(got, want) {
					return false
				}
			}
		}
	}
	return true
}

// matchAny splits a filter expression on OR and reports whether any term
// (quotes removed) satisfies match.
func matchAny(expr string, match func(string) bool) bool {
	for _, term := range strings.Split(expr, " OR ") {
		term = strings.Trim(strings.TrimSpace(term), `"`)
		if term != "" && match(term) {
			return true
		}
	}
	return false
}

// variableEquals compares a stored variable (a string) with a filter value
// (JSON): strings compare as strings, other JSON values by their compact
// JSON text.
func variableEquals(got string, want json.RawMessage) bool {
	var s string
	if json.Unmarshal(want, &s) == nil {
		return got == s
	}
	var a, b bytes.Buffer
	if json.Compact(&a, want) != nil {
		return false
	}
	if json.Compact(&b, []byte(got)) != nil {
		return false
	}
	return a.String() == b.String()
}

// eventItem is the JSON shape of a Mailgun "accepted" event.
type eventItem struct {
	Event           string         `json:"event"`
	ID              string         `json:"id"`
	Timestamp       float64        `json:"timestamp"`
	LogLevel        string         `json:"log-level"`
	Method          string         `json:"method"`
	Envelope        eventEnvelope  `json:"envelope"`
	Flags           eventFlags     `json:"flags"`
	Message         eventMessage   `json:"message"`
	Recipient       string         `json:"recipient"`
	RecipientDomain string         `json:"recipient-domain"`
	Tags            []string       `json:"tags"`
	Campaigns       []any          `json:"campaigns"`
	UserVariables   map[string]any `json:"user-variables"`
}

type eventEnvelope struct {
	Sender    string `json:"sender"`
	Targets   string `json:"targets"`
	Transport string `json:"transport"`
}

type eventFlags struct {
	IsAuthenticated bool `json:"is-authenticated"`
	IsTestMode      bool `json:"is-test-mode"`
}

type eventMessage struct {
	Headers     eventHeaders `json:"headers"`
	Attachments []any        `json:"attachments"`
	Recipients  []string     `json:"recipients"`
	Size        int          `json:"size"`
}

type eventHeaders struct {
	To        string `json:"to"`
	MessageID string `json:"message-id"`
	From      string `json:"from"`
	Subject   string `json:"subject"`
}

func makeItem(ev *event) eventItem {
	m := &ev.msg.msg
	uv := make(map[string]any, len(m.Variables))
	for k, v := range m.Variables {
		// Like Mailgun, JSON objects/arrays attached as variables come back
		// as structured data; everything else as the string that was sent.
		t := strings.TrimSpace(v)
		if (strings.HasPrefix(t, "{") || strings.HasPrefix(t, "[")) && json.Valid([]byte(t)) {
			uv[k] = json.RawMessage(t)
		} else {
			uv[k] = v
		}
	}
	tags := m.Tags
	if tags == nil {
		tags = []string{}
	}
	rdomain := ""
	if i := strings.LastIndex(ev.recipient, "@"); i >= 0 {
		rdomain = ev.recipient[i+1:]
	}
	return eventItem{
		Event:     "accepted",
		ID:        ev.id,
		Timestamp: float64(m.ReceivedAt.UnixMicro()) / 1e6,
		LogLevel:  "info",
		Method:    "http",
		Envelope: eventEnvelope{
			Sender:  normalizeAddr(m.From),
			Targets: ev.recipient,
		},
		Flags: eventFlags{IsAuthenticated: true, IsTestMode: m.TestMode},
		Message: eventMessage{
			Headers: eventHeaders{
				To:        strings.Join(m.To, ", "),
				MessageID: m.ID,
				From:      m.From,
				Subject:   m.Subject,
			},
			Attachments: []any{},
			Recipients:  append([]string(nil), m.To...),
			Size:        len(m.Text) + len(m.HTML),
		},
		Recipient:       ev.recipient,
		RecipientDomain: rdomain,
		Tags:            tags,
		Campaigns:       []any{},
		UserVariables:   uv,
	}
}
