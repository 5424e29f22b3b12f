package mailgunsrv

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mailgun/mailgun-go/v4"
	"github.com/mailgun/mailgun-go/v4/events"
)

// listAll follows a mailgun-go event iterator to its end and returns the
// accepted events. It fails the test if paging does not terminate.
func listAll(t *testing.T, mg *mailgun.MailgunImpl, opts *mailgun.ListEventOptions) []*events.Accepted {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	it := mg.ListEvents(opts)
	var out []*events.Accepted
	var page []mailgun.Event
	for pages := 0; it.Next(ctx, &page); pages++ {
		if pages > 1000 {
			t.Fatal("paging does not terminate")
		}
		for _, e := range page {
			a, ok := e.(*events.Accepted)
			if !ok {
				t.Fatalf("unexpected event %T", e)
			}
			out = append(out, a)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	return out
}

func sendWith(t *testing.T, mg *mailgun.MailgunImpl, to, tag string, vars map[string]string) string {
	t.Helper()
	m := mailgun.NewMessage("Usher <noreply@usher.test>", "Subject for "+to, "text", to)
	if tag != "" {
		_ = m.AddTag(tag)
	}
	for k, v := range vars {
		_ = m.AddVariable(k, v)
	}
	_, id, err := mg.Send(context.Background(), m)
	if err != nil {
		t.Fatalf("send to %s: %v", to, err)
	}
	return strings.Trim(id, "<>")
}

func TestEventsShapeAndFilters(t *testing.T) {
	_, _, mg := newTestServer(t, Options{})
	id1 := sendWith(t, mg, "alice@example.com", "invitation", map[string]string{"usher_delivery_id": "d-1"})
	id2 := sendWith(t, mg, "bob@example.com", "set_password", map[string]string{"usher_delivery_id": "d-2"})
	id3 := sendWith(t, mg, "alice@example.com", "invitation", map[string]string{"usher_delivery_id": "d-3"})

	all := listAll(t, mg, nil)
	if len(all) != 3 {
		t.Fatalf("got %d events", len(all))
	}
	// Default traversal is descending: newest first.
	if all[0].Message.Headers.MessageID != id3 || all[2].Message.Headers.MessageID != id1 {
		t.Errorf("order: %s, %s, %s", all[0].Message.Headers.MessageID, all[1].Message.Headers.MessageID, all[2].Message.Headers.MessageID)
	}
	e := all[1]
	if e.GetName() != "accepted" || e.ID == "" || e.Timestamp == 0 || e.Recipient != "bob@example.com" ||
		e.RecipientDomain != "example.com" || len(e.Tags) != 1 || e.Tags[0] != "set_password" ||
		e.Message.Headers.MessageID != id2 || e.Message.Headers.Subject != "Subject for bob@example.com" {
		t.Errorf("event = %+v", e)
	}
	if uv, ok := e.UserVariables.(map[string]any); !ok || uv["usher_delivery_id"] != "d-2" {
		t.Errorf("user-variables = %#v", e.UserVariables)
	}
	if time.Since(e.GetTimestamp()) > time.Minute {
		t.Errorf("timestamp %v", e.GetTimestamp())
	}

	tests := []struct {
		name   string
		filter map[string]string
		want   []string
	}{
		{"event", map[string]string{"event": "accepted"}, []string{id3, id2, id1}},
		{"other event", map[string]string{"event": "delivered"}, nil},
		{"event OR", map[string]string{"event": "failed OR accepted"}, []string{id3, id2, id1}},
		{"recipient", map[string]string{"recipient": "alice@example.com"}, []string{id3, id1}},
		{"recipient OR", map[string]string{"recipient": "bob@example.com OR nobody@example.com"}, []string{id2}},
		{"tags", map[string]string{"tags": "set_password"}, []string{id2}},
		{"message-id", map[string]string{"message-id": id1}, []string{id1}},
		{"user variable", map[string]string{"user-variables": `{"usher_delivery_id":"d-3"}`}, []string{id3}},
		{"user variable unknown", map[string]string{"user-variables": `{"usher_delivery_id":"nope"}`}, nil},
		{"user variable missing key", map[string]string{"user-variables": `{"other":"d-1"}`}, nil},
		{"combined", map[string]string{"event": "accepted", "recipient": "alice@example.com",
			"user-variables": `{"usher_delivery_id":"d-1"}`}, []string{id1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := listAll(t, mg, &mailgun.ListEventOptions{Filter: tt.filter})
			var ids []string
			for _, e := range got {
				ids = append(ids, e.Message.Headers.MessageID)
			}
			if strings.Join(ids, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestEventsTimeRangeAndPaging(t *testing.T) {
	_, _, mg := newTestServer(t, Options{})
	var ids []string
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"} {
		ids = append(ids, sendWith(t, mg, to, "", nil))
	}
	now := time.Now()

	asc := listAll(t, mg, &mailgun.ListEventOptions{Begin: now.Add(-24 * time.Hour), ForceAscending: true, Limit: 2})
	if len(asc) != 5 || asc[0].Message.Headers.MessageID != ids[0] || asc[4].Message.Headers.MessageID != ids[4] {
		t.Errorf("ascending: %d events", len(asc))
	}
	desc := listAll(t, mg, &mailgun.ListEventOptions{Limit: 2, ForceDescending: true})
	if len(desc) != 5 || desc[0].Message.Headers.MessageID != ids[4] {
		t.Errorf("descending: %d events", len(desc))
	}
	withEnd := listAll(t, mg, &mailgun.ListEventOptions{Begin: now.Add(-time.Hour), End: now.Add(time.Hour), Limit: 3})
	if len(withEnd) != 5 || withEnd[0].Message.Headers.MessageID != ids[0] {
		t.Errorf("begin<end: %d events", len(withEnd))
	}
	future := listAll(t, mg, &mailgun.ListEventOptions{Begin: now.Add(time.Hour), ForceAscending: true})
	if len(future) != 0 {
		t.Errorf("events after begin in the future: %d", len(future))
	}
	past := listAll(t, mg, &mailgun.ListEventOptions{Begin: now.Add(-time.Hour), End: now.Add(-30 * time.Minute)})
	if len(past) != 0 {
		t.Errorf("events in a past window: %d", len(past))
	}
}

func TestEventsPagingLinks(t *testing.T) {
	_, ts, mg := newTestServer(t, Options{})
	for _, to := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		sendWith(t, mg, to, "", nil)
	}
	get := func(u string) (items []json.RawMessage, paging map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.SetBasicAuth("api", testKey)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
		}
		var body struct {
			Items  []json.RawMessage `json:"items"`
			Paging map[string]string `json:"paging"`
		}
		if err := json.Unmarshal(b, &body); err != nil {
			t.Fatal(err)
		}
		return body.Items, body.Paging
	}
	items, p := get(ts.URL + "/v3/" + testDomain + "/events?ascending=yes&begin=0&limit=2")
	if len(items) != 2 {
		t.Fatalf("first page %d items", len(items))
	}
	for _, k := range []string{"first", "last", "next", "previous"} {
		if !strings.HasPrefix(p[k], ts.URL+"/v3/"+testDomain+"/events/") {
			t.Errorf("paging.%s = %q", k, p[k])
		}
	}
	items2, p2 := get(p["next"])
	if len(items2) != 1 {
		t.Fatalf("second page %d items", len(items2))
	}
	items3, p3 := get(p2["next"])
	if len(items3) != 0 {
		t.Fatalf("third page %d items", len(items3))
	}
	prev, _ := get(p2["previous"])
	if len(prev) != 2 {
		t.Errorf("previous page %d items", len(prev))
	}
	last, _ := get(p["last"])
	if len(last) != 2 {
		t.Errorf("last page %d items", len(last))
	}
	// Polling: the empty page's next URL yields events sent later.
	sendWith(t, mg, "d@example.com", "", nil)
	items4, _ := get(p3["next"])
	if len(items4) != 1 {
		t.Errorf("polling after a new send: %d items", len(items4))
	}

	// Bad parameters are refused like Mailgun does.
	for _, q := range []string{"limit=x", "begin=yesterday", "ascending=maybe", "user-variables=notjson",
		"begin=100&end=50&ascending=yes"} {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v3/"+testDomain+"/events?"+q, nil)
		req.SetBasicAuth("api", testKey)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", q, resp.StatusCode)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v3/"+testDomain+"/events/"+url.PathEscape("garbage!"), nil)
	req.SetBasicAuth("api", testKey)
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("garbage page token: status %d", resp.StatusCode)
	}
}

func TestEventsPerRecipientAndDomain(t *testing.T) {
	srv, _, mg := newTestServer(t, Options{})
	m := mailgun.NewMessage("noreply@usher.test", "s", "t", "a@example.com", "b@example.org")
	_ = m.AddVariable("json", map[string]int{"n": 1})
	if _, _, err := mg.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	evs := listAll(t, mg, &mailgun.ListEventOptions{ForceAscending: true, Begin: time.Now().Add(-time.Minute)})
	if len(evs) != 2 || evs[0].Recipient != "a@example.com" || evs[1].Recipient != "b@example.org" ||
		evs[0].ID == evs[1].ID || evs[0].Message.Headers.MessageID != evs[1].Message.Headers.MessageID {
		t.Fatalf("events = %+v", evs)
	}
	if uv := evs[0].UserVariables.(map[string]any); uv["json"].(map[string]any)["n"] != float64(1) {
		t.Errorf("structured variable = %#v", uv["json"])
	}
	if got := srv.Messages()[0].Variables["json"]; got != `{"n":1}` {
		t.Errorf("stored variable %q", got)
	}
	// Events of another domain are not visible (server without a fixed domain).
	open := New(Options{})
	ots := startServer(t, open)
	a := mailgun.NewMailgun("one.test", "k")
	a.SetAPIBase(ots + "/v3")
	b := mailgun.NewMailgun("two.test", "k")
	b.SetAPIBase(ots + "/v3")
	sendWith(t, a, "x@example.com", "", nil)
	if n := len(listAll(t, b, nil)); n != 0 {
		t.Errorf("domain two sees %d events of domain one", n)
	}
	if n := len(listAll(t, a, nil)); n != 1 {
		t.Errorf("domain one sees %d events", n)
	}
}

func startServer(t *testing.T, h http.Handler) string {
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}
