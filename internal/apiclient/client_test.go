package apiclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestImportUsers(t *testing.T) {
	var got struct {
		method, path, query, auth, contentType, ua, body string
		length                                           int64
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.method, got.path, got.query = r.Method, r.URL.Path, r.URL.RawQuery
		got.auth, got.contentType, got.ua = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.Header.Get("User-Agent")
		got.body, got.length = string(body), r.ContentLength
		_, _ = io.WriteString(w, `{"rows":3,"imported":2,"created":1,"errors":[{"row":3,"field":"email","reason":"bad"},{"row":4,"reason":"not a valid CSV row"}],"batch_id":"b-1"}`)
	}))
	defer srv.Close()

	csv := "email\nann@example.com\n"
	c := New(srv.URL+"/prefix/", "usk_1", srv.Client())
	res, err := c.ImportUsers(context.Background(), ImportRequest{
		OrganizationID: "org 1", SendInvitations: true, Channel: "sms", ExpiresIn: "72h", CSV: strings.NewReader(csv),
	})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case got.method != "POST" || got.path != "/prefix/v1/users/import":
		t.Errorf("%s %s", got.method, got.path)
	case got.query != "channel=sms&expires_in=72h&organization_id=org+1&send_invitation=true":
		t.Errorf("query %q", got.query)
	case got.auth != "Bearer usk_1":
		t.Errorf("Authorization %q", got.auth)
	case got.contentType != "text/csv":
		t.Errorf("Content-Type %q", got.contentType)
	case got.ua != DefaultUserAgent:
		t.Errorf("User-Agent %q", got.ua)
	case got.body != csv:
		t.Errorf("body %q", got.body)
	case got.length != -1:
		t.Errorf("Content-Length %d, want a streamed body", got.length)
	}
	if res.Rows != 3 || res.Imported != 2 || res.Created != 1 || len(res.Errors) != 2 || res.BatchID == nil || *res.BatchID != "b-1" {
		t.Errorf("result %+v", res)
	}
	if res.Errors[1] != (ImportError{Row: 4, Reason: "not a valid CSV row"}) {
		t.Errorf("errors %+v", res.Errors)
	}
}

func TestImportUsersWithoutInvitations(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		_, _ = io.WriteString(w, `{"rows":0,"imported":0,"created":0,"errors":null,"batch_id":null}`)
	}))
	defer srv.Close()
	res, err := New(srv.URL, "k", nil).ImportUsers(context.Background(), ImportRequest{OrganizationID: "o", CSV: strings.NewReader("email\n")})
	if err != nil {
		t.Fatal(err)
	}
	if query != "organization_id=o&send_invitation=false" {
		t.Errorf("query %q", query)
	}
	if res.Errors == nil || len(res.Errors) != 0 || res.BatchID != nil {
		t.Errorf("result %+v: want an empty (not nil) Errors and no batch", res)
	}
	if _, err := New(srv.URL, "k", nil).ImportUsers(context.Background(), ImportRequest{OrganizationID: "o"}); err == nil {
		t.Error("no error without a CSV")
	}
}

func TestGetBatch(t *testing.T) {
	var path string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.EscapedPath()
		_, _ = io.WriteString(w, `{"id":"b/1","channel":"email","total":3,"queued":1,"sent":1,"failed":1,"done":2,"finished":false,
			"created_at":"2026-03-14T09:26:53Z","finished_at":null}`)
	}))
	defer srv.Close()
	b, err := New(srv.URL, "k", nil).GetBatch(context.Background(), "b/1")
	if err != nil {
		t.Fatal(err)
	}
	if path != "/v1/batches/b%2F1" {
		t.Errorf("path %q", path)
	}
	want := Batch{ID: "b/1", Channel: "email", Total: 3, Queued: 1, Sent: 1, Failed: 1, Done: 2,
		CreatedAt: time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)}
	if b != want {
		t.Errorf("batch %+v, want %+v", b, want)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   Error
		text   string
		temp   bool
	}{
		{name: "API error", status: 404, body: `{"error":{"code":"batch_not_found","message":"no batch with id \"x\"","details":{"field":"id"}}}`,
			want: Error{Status: 404, Code: "batch_not_found", Message: `no batch with id "x"`, Details: map[string]any{"field": "id"}, RequestID: "r-1"},
			text: `usher API: 404 batch_not_found: no batch with id "x"`},
		{name: "unavailable", status: 503, body: `{"error":{"code":"temporarily_unavailable","message":"try again"}}`,
			want: Error{Status: 503, Code: "temporarily_unavailable", Message: "try again", RequestID: "r-1"},
			text: "usher API: 503 temporarily_unavailable: try again", temp: true},
		{name: "proxy page", status: 502, body: "<html>Bad Gateway</html>\n",
			want: Error{Status: 502, Message: "<html>Bad Gateway</html>", RequestID: "r-1"},
			text: "usher API: 502: <html>Bad Gateway</html>", temp: true},
		{name: "empty", status: 429, want: Error{Status: 429, Message: "Too Many Requests", RequestID: "r-1"},
			text: "usher API: 429: Too Many Requests", temp: true},
		{name: "long", status: 500, body: strings.Repeat("é", 150),
			want: Error{Status: 500, Message: strings.Repeat("é", 100) + "…", RequestID: "r-1"},
			text: "usher API: 500: " + strings.Repeat("é", 100) + "…", temp: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Request-ID", "r-1")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			_, err := New(srv.URL, "k", nil).GetBatch(context.Background(), "x")
			apiErr, ok := AsError(err)
			if !ok {
				t.Fatalf("error %v (%T), want *Error", err, err)
			}
			if apiErr.Status != tc.want.Status || apiErr.Code != tc.want.Code || apiErr.Message != tc.want.Message ||
				apiErr.RequestID != tc.want.RequestID || len(apiErr.Details) != len(tc.want.Details) {
				t.Errorf("error %#v, want %#v", apiErr, tc.want)
			}
			if apiErr.Error() != tc.text {
				t.Errorf("text %q, want %q", apiErr.Error(), tc.text)
			}
			if apiErr.Temporary() != tc.temp {
				t.Errorf("Temporary() = %v", apiErr.Temporary())
			}
		})
	}
}

func TestNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	_, err := New(srv.URL, "k", nil).GetBatch(context.Background(), "x")
	if err == nil {
		t.Fatal("no error from a closed server")
	}
	if _, ok := AsError(err); ok {
		t.Errorf("%v is an *Error; a network failure should not be", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New("http://127.0.0.1:1", "k", nil).GetBatch(ctx, "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

func TestBadAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "<html>not JSON</html>")
	}))
	defer srv.Close()
	_, err := New(srv.URL, "k", nil).GetBatch(context.Background(), "x")
	if err == nil || !strings.Contains(err.Error(), "GET /v1/batches/x: reading the answer") {
		t.Errorf("error %v", err)
	}
}
