package apiclient

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// recorder answers every request with answer and records "METHOD URI body".
type recorder struct {
	mu     sync.Mutex
	got    []string
	answer func(r *http.Request) string
}

func (rec *recorder) serve(t *testing.T) *Client {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		line := r.Method + " " + r.URL.RequestURI()
		if len(body) > 0 {
			line += " " + r.Header.Get("Content-Type") + " " + string(body)
		}
		rec.mu.Lock()
		rec.got = append(rec.got, line)
		rec.mu.Unlock()
		_, _ = io.WriteString(w, rec.answer(r))
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, "k", srv.Client())
}

const invitationJSON = `{"id":"%s","status":"pending","email":"ann@example.com","name":"Ann","organization_id":"o-1","role":"member",
	"inviter_id":null,"user_id":null,"locale":"en","redirect_url":null,"metadata":{"b":1,"a":[2]},"expires_in":"72h0m0s",
	"expires_at":"2026-03-17T09:26:53Z","created_at":"2026-03-14T09:26:53Z","updated_at":"2026-03-14T09:26:53.5Z",
	"accepted_at":null,"revoked_at":null,"failure_reason":null,"delivery":{"status":"sent","attempts":2,"last_error":"x"}}`

func TestListInvitations(t *testing.T) {
	rec := &recorder{answer: func(*http.Request) string {
		return `{"data":[` + fmt.Sprintf(invitationJSON, "i-1") + `],"next_cursor":"abc"}`
	}}
	c := rec.serve(t)
	page, err := c.ListInvitations(context.Background(), InvitationFilter{Status: "expired", Email: "a+b@example.com", OrganizationID: "o 1"},
		PageRequest{Limit: 10, Cursor: "xyz"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "GET /v1/invitations?cursor=xyz&email=a%2Bb%40example.com&limit=10&organization_id=o+1&status=expired"; rec.got[0] != want {
		t.Errorf("request %q, want %q", rec.got[0], want)
	}
	if page.NextCursor == nil || *page.NextCursor != "abc" || len(page.Data) != 1 {
		t.Fatalf("page %+v", page)
	}
	inv := page.Data[0]
	if inv.ID != "i-1" || string(inv.Metadata) != `{"b":1,"a":[2]}` || inv.Delivery.Attempts != 2 || *inv.Delivery.LastError != "x" ||
		inv.ExpiresAt == nil || inv.UpdatedAt.Nanosecond() != 5e8 || inv.AcceptedAt != nil {
		t.Errorf("invitation %+v", inv)
	}

	// No filter, no paging: no query at all; an empty page has an empty (not nil) Data.
	rec.answer = func(*http.Request) string { return `{"data":null,"next_cursor":null}` }
	page, err = c.ListInvitations(context.Background(), InvitationFilter{}, PageRequest{})
	if err != nil || rec.got[1] != "GET /v1/invitations" || page.Data == nil || page.NextCursor != nil {
		t.Errorf("request %q, page %+v, error %v", rec.got[1], page, err)
	}
}

func TestWalkInvitations(t *testing.T) {
	ids := []string{"i-5", "i-4", "i-3", "i-2", "i-1"}
	rec := &recorder{answer: func(r *http.Request) string {
		start := 0
		if raw := r.URL.Query().Get("cursor"); raw != "" {
			after, _ := base64.RawURLEncoding.DecodeString(raw)
			start = slices.Index(ids, string(after)) + 1
		}
		end := min(start+2, len(ids))
		var data []string
		for _, id := range ids[start:end] {
			data = append(data, fmt.Sprintf(invitationJSON, id))
		}
		next := "null"
		if end < len(ids) {
			next = `"` + base64.RawURLEncoding.EncodeToString([]byte(ids[end-1])) + `"`
		}
		return `{"data":[` + strings.Join(data, ",") + `],"next_cursor":` + next + `}`
	}}
	c := rec.serve(t)
	var got []string
	err := c.WalkInvitations(context.Background(), InvitationFilter{Status: "expired"}, 2, func(page []Invitation) error {
		for _, inv := range page {
			got = append(got, inv.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, ids) || len(rec.got) != 3 {
		t.Errorf("walked %q in %d requests (%q)", got, len(rec.got), rec.got)
	}
	if !strings.HasPrefix(rec.got[2], "GET /v1/invitations?cursor=") || !strings.Contains(rec.got[2], "&limit=2&status=expired") {
		t.Errorf("last request %q", rec.got[2])
	}
}

func TestInvitationActions(t *testing.T) {
	rec := &recorder{answer: func(*http.Request) string { return fmt.Sprintf(invitationJSON, "i/1") }}
	c := rec.serve(t)
	ctx := context.Background()
	for _, call := range []func() (Invitation, error){
		func() (Invitation, error) { return c.GetInvitation(ctx, "i/1") },
		func() (Invitation, error) { return c.RenewInvitation(ctx, "i/1", "72h") },
		func() (Invitation, error) { return c.RenewInvitation(ctx, "i/1", "") },
		func() (Invitation, error) { return c.RevokeInvitation(ctx, "i/1") },
		func() (Invitation, error) { return c.ResendInvitation(ctx, "i/1") },
	} {
		if inv, err := call(); err != nil || inv.ID != "i/1" {
			t.Errorf("invitation %+v, error %v", inv, err)
		}
	}
	want := []string{
		"GET /v1/invitations/i%2F1",
		`POST /v1/invitations/i%2F1/renew application/json {"expires_in":"72h"}`,
		"POST /v1/invitations/i%2F1/renew",
		"POST /v1/invitations/i%2F1/revoke",
		"POST /v1/invitations/i%2F1/resend",
	}
	if !slices.Equal(rec.got, want) {
		t.Errorf("requests\n%q\nwant\n%q", rec.got, want)
	}
}

func TestJoinRequests(t *testing.T) {
	const jr = `{"id":"j-1","status":"approved","status_reason":null,"member_id":"m-1","organization_id":"o-1",
		"visitor_email":"bo@example.com","visitor_name":"Bo","message":"hi","locale":"en","role":"admin","user_id":"u-1",
		"confirm_expires_at":"2026-03-15T09:00:00Z","decide_by":"2026-03-21T09:00:00Z","created_at":"2026-03-14T09:00:00Z",
		"updated_at":"2026-03-14T10:00:00Z","confirmed_at":"2026-03-14T09:05:00Z","decided_at":"2026-03-14T10:00:00Z"}`
	rec := &recorder{answer: func(r *http.Request) string {
		if r.URL.Path == "/v1/join-requests" {
			return `{"data":[` + jr + `],"next_cursor":null}`
		}
		return jr
	}}
	c := rec.serve(t)
	ctx := context.Background()
	page, err := c.ListJoinRequests(ctx, JoinRequestFilter{Status: "pending", MemberID: "m-1"}, PageRequest{Limit: 5})
	if err != nil || len(page.Data) != 1 || *page.Data[0].Role != "admin" || page.Data[0].DecidedAt == nil {
		t.Fatalf("page %+v, error %v", page, err)
	}
	var walked int
	if err := c.WalkJoinRequests(ctx, JoinRequestFilter{}, 0, func(p []JoinRequest) error { walked += len(p); return nil }); err != nil || walked != 1 {
		t.Errorf("walked %d, error %v", walked, err)
	}
	for _, call := range []func() (JoinRequest, error){
		func() (JoinRequest, error) { return c.GetJoinRequest(ctx, "j-1") },
		func() (JoinRequest, error) { return c.ApproveJoinRequest(ctx, "j-1", "admin") },
		func() (JoinRequest, error) { return c.ApproveJoinRequest(ctx, "j-1", "") },
		func() (JoinRequest, error) { return c.RejectJoinRequest(ctx, "j-1") },
		func() (JoinRequest, error) { return c.CancelJoinRequest(ctx, "j-1") },
	} {
		if got, err := call(); err != nil || got.ID != "j-1" {
			t.Errorf("join request %+v, error %v", got, err)
		}
	}
	want := []string{
		"GET /v1/join-requests?limit=5&member_id=m-1&status=pending",
		"GET /v1/join-requests",
		"GET /v1/join-requests/j-1",
		`POST /v1/join-requests/j-1/approve application/json {"role":"admin"}`,
		"POST /v1/join-requests/j-1/approve",
		"POST /v1/join-requests/j-1/reject",
		"POST /v1/join-requests/j-1/cancel",
	}
	if !slices.Equal(rec.got, want) {
		t.Errorf("requests\n%q\nwant\n%q", rec.got, want)
	}
}

func TestActionError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusConflict)
		_, _ = io.WriteString(w, `{"error":{"code":"invalid_state","message":"cannot renew an invitation in status \"accepted\"","details":{"status":"accepted"}}}`)
	}))
	defer srv.Close()
	_, err := New(srv.URL, "k", nil).RenewInvitation(context.Background(), "i-1", "1h")
	apiErr, ok := AsError(err)
	if !ok || apiErr.Status != 409 || apiErr.Code != "invalid_state" || apiErr.Details["status"] != "accepted" {
		t.Errorf("error %#v", err)
	}
}
