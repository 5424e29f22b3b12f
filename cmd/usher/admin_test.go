package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/internal/domain"
)

// fakeAdmin speaks the admin part of Usher's API: invitations, join requests and batches,
// with the objects of testdata/admin_*.json (written as the API writes them, and checked
// against api/openapi.yaml by TestAdminFixturesMatchOpenAPI). Actions follow the domain's
// rules (domain.CheckAction, domain.CheckJoinAction) and answer the API's errors.
type fakeAdmin struct {
	invitations  []map[string]any
	joinRequests []map[string]any
	// conflicts are invitations whose renewal the API refuses with invitation_pending,
	// naming the open invitation.
	conflicts map[string]string
	// onAction is called before each action (POST); it may block or cancel.
	onAction func(path string)

	mu       sync.Mutex
	requests []string // "METHOD path?query body"
}

var fakeNow = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func loadFixture(t *testing.T, name string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var out []map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

func newFakeAdmin(t *testing.T) *fakeAdmin {
	return &fakeAdmin{
		invitations:  loadFixture(t, "admin_invitations.json"),
		joinRequests: loadFixture(t, "admin_join_requests.json"),
		conflicts:    map[string]string{},
	}
}

func (f *fakeAdmin) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/invitations", f.listInvitations)
	mux.HandleFunc("GET /v1/invitations/{id}", f.getInvitation)
	mux.HandleFunc("POST /v1/invitations/{id}/{action}", f.actOnInvitation)
	mux.HandleFunc("GET /v1/join-requests", f.listJoinRequests)
	mux.HandleFunc("GET /v1/join-requests/{id}", f.getJoinRequest)
	mux.HandleFunc("POST /v1/join-requests/{id}/{action}", f.actOnJoinRequest)
	mux.HandleFunc("GET /v1/batches/{id}", f.getBatch)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		line := r.Method + " " + r.URL.RequestURI()
		if len(body) > 0 {
			line += " " + string(body)
		}
		f.mu.Lock()
		f.requests = append(f.requests, line)
		f.mu.Unlock()
		w.Header().Set("X-Request-ID", "req-42")
		if r.Header.Get("Authorization") != "Bearer "+testAPIKey {
			writeFakeError(w, http.StatusUnauthorized, "unauthorized", "send an API key as Authorization: Bearer <key>", nil)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeAdmin) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func writeDomainError(w http.ResponseWriter, err *domain.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(err.Code.HTTPStatus())
	_ = json.NewEncoder(w).Encode(map[string]any{"error": err})
}

func writeFakeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func invalidParam(field, format string, a ...any) *domain.Error {
	return domain.Errorf(domain.CodeInvalidRequest, "%s: %s", field, fmt.Sprintf(format, a...)).WithDetail("field", field)
}

// page answers like api/pagination.go: keyset pages of limit rows (default 50, at most
// 200), with a base64 cursor naming the last row.
func page(w http.ResponseWriter, r *http.Request, rows []map[string]any) {
	limit := 50
	if raw := r.URL.Query().Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > 200 {
			writeDomainError(w, invalidParam("limit", "must be a number from 1 to %d", 200))
			return
		}
		limit = n
	}
	if raw := r.URL.Query().Get("cursor"); raw != "" {
		after, err := base64.RawURLEncoding.DecodeString(raw)
		i := slices.IndexFunc(rows, func(row map[string]any) bool { return row["id"] == string(after) })
		if err != nil || i < 0 {
			writeDomainError(w, invalidParam("cursor", "is not a cursor this API returned"))
			return
		}
		rows = rows[i+1:]
	}
	var next *string
	if len(rows) > limit {
		rows = rows[:limit]
		cursor := base64.RawURLEncoding.EncodeToString([]byte(rows[limit-1]["id"].(string)))
		next = &cursor
	}
	writeFakeJSON(w, map[string]any{"data": append([]map[string]any{}, rows...), "next_cursor": next})
}

func (f *fakeAdmin) listInvitations(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s := q.Get("status"); s != "" && !domain.Status(s).Valid() {
		writeDomainError(w, invalidParam("status", "must be one of %v", domain.Statuses))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var rows []map[string]any
	for _, inv := range f.invitations {
		if (q.Get("status") == "" || inv["status"] == q.Get("status")) &&
			(q.Get("organization_id") == "" || inv["organization_id"] == q.Get("organization_id")) &&
			(q.Get("email") == "" || inv["email"] == strings.ToLower(q.Get("email"))) {
			rows = append(rows, inv)
		}
	}
	page(w, r, rows)
}

func (f *fakeAdmin) invitation(id string) map[string]any {
	for _, inv := range f.invitations {
		if inv["id"] == id {
			return inv
		}
	}
	return nil
}

func (f *fakeAdmin) getInvitation(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	inv := f.invitation(r.PathValue("id"))
	if inv == nil {
		writeDomainError(w, domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", r.PathValue("id")))
		return
	}
	writeFakeJSON(w, inv)
}

func (f *fakeAdmin) actOnInvitation(w http.ResponseWriter, r *http.Request) {
	if f.onAction != nil {
		f.onAction(r.URL.Path)
	}
	action := domain.Action(r.PathValue("action"))
	var expiresIn time.Duration
	if action == domain.ActionRenew {
		var body struct {
			ExpiresIn string `json:"expires_in"`
		}
		if raw, _ := io.ReadAll(r.Body); len(raw) > 0 {
			if err := json.Unmarshal(raw, &body); err != nil {
				writeDomainError(w, domain.Errorf(domain.CodeInvalidRequest, "the body is not valid JSON"))
				return
			}
		}
		if body.ExpiresIn != "" {
			d, err := domain.ParseExpiresIn(body.ExpiresIn)
			if err != nil {
				writeDomainError(w, err.(*domain.Error))
				return
			}
			expiresIn = d
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	inv := f.invitation(r.PathValue("id"))
	if inv == nil {
		writeDomainError(w, domain.Errorf(domain.CodeInvitationNotFound, "no invitation with id %q", r.PathValue("id")))
		return
	}
	status := domain.Status(inv["status"].(string))
	if err := domain.CheckAction(status, action); err != nil {
		writeDomainError(w, err.(*domain.Error))
		return
	}
	now := fakeNow.Format(time.RFC3339Nano)
	switch action {
	case domain.ActionRenew:
		if open, ok := f.conflicts[inv["id"].(string)]; ok {
			writeDomainError(w, domain.Errorf(domain.CodeInvitationPending,
				"an open invitation for that e-mail address already exists in the organization").WithDetail("invitation_id", open))
			return
		}
		if expiresIn == 0 {
			expiresIn, _ = time.ParseDuration(inv["expires_in"].(string))
		}
		inv["expires_at"] = fakeNow.Add(expiresIn).Format(time.RFC3339Nano)
		if status == domain.StatusExpired {
			inv["delivery"] = map[string]any{"status": "queued", "attempts": inv["delivery"].(map[string]any)["attempts"], "last_error": nil}
		}
		inv["status"] = "pending"
	case domain.ActionRevoke:
		inv["status"], inv["revoked_at"] = "revoked", now
	case domain.ActionResend:
		inv["delivery"] = map[string]any{"status": "queued", "attempts": inv["delivery"].(map[string]any)["attempts"], "last_error": nil}
	default:
		http.NotFound(w, r)
		return
	}
	inv["updated_at"] = now
	writeFakeJSON(w, inv)
}

func (f *fakeAdmin) listJoinRequests(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if s := q.Get("status"); s != "" && !domain.JoinStatus(s).Valid() {
		writeDomainError(w, invalidParam("status", "must be one of %v", domain.JoinStatuses))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var rows []map[string]any
	for _, jr := range f.joinRequests {
		if (q.Get("status") == "" || jr["status"] == q.Get("status")) && (q.Get("member_id") == "" || jr["member_id"] == q.Get("member_id")) {
			rows = append(rows, jr)
		}
	}
	page(w, r, rows)
}

func (f *fakeAdmin) joinRequest(id string) map[string]any {
	for _, jr := range f.joinRequests {
		if jr["id"] == id {
			return jr
		}
	}
	return nil
}

func (f *fakeAdmin) getJoinRequest(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	jr := f.joinRequest(r.PathValue("id"))
	if jr == nil {
		writeDomainError(w, domain.Errorf(domain.CodeJoinRequestNotFound, "no join request with id %q", r.PathValue("id")))
		return
	}
	writeFakeJSON(w, jr)
}

func (f *fakeAdmin) actOnJoinRequest(w http.ResponseWriter, r *http.Request) {
	action := domain.JoinAction(r.PathValue("action"))
	var body struct {
		Role string `json:"role"`
	}
	if raw, _ := io.ReadAll(r.Body); len(raw) > 0 && action == domain.JoinActionApprove {
		if err := json.Unmarshal(raw, &body); err != nil {
			writeDomainError(w, domain.Errorf(domain.CodeInvalidRequest, "the body is not valid JSON"))
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	jr := f.joinRequest(r.PathValue("id"))
	if jr == nil {
		writeDomainError(w, domain.Errorf(domain.CodeJoinRequestNotFound, "no join request with id %q", r.PathValue("id")))
		return
	}
	if err := domain.CheckJoinAction(domain.JoinStatus(jr["status"].(string)), action); err != nil {
		writeDomainError(w, err.(*domain.Error))
		return
	}
	now := fakeNow.Format(time.RFC3339Nano)
	switch action {
	case domain.JoinActionApprove:
		role := body.Role
		if role == "" {
			role = "member"
		}
		jr["status"], jr["role"], jr["user_id"], jr["decided_at"] = "approved", role, "0190f3c2-0000-7000-8000-0000000000f2", now
	case domain.JoinActionReject:
		jr["status"], jr["decided_at"] = "rejected", now
	case domain.JoinActionCancel:
		jr["status"] = "cancelled"
	default:
		http.NotFound(w, r)
		return
	}
	jr["updated_at"] = now
	writeFakeJSON(w, jr)
}

func (f *fakeAdmin) getBatch(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != testBatchID {
		writeDomainError(w, domain.Errorf(domain.CodeBatchNotFound, "no batch with id %q", r.PathValue("id")))
		return
	}
	// As api/people.go's getBatch writes it.
	writeFakeJSON(w, map[string]any{
		"id": testBatchID, "channel": "sms", "total": 120, "queued": 7, "sent": 110, "failed": 3,
		"done": 113, "finished": false, "created_at": testCreatedAt, "finished_at": nil,
	})
}

// admin runs "usher <args>" against f.
func (f *fakeAdmin) run(t *testing.T, args ...string) cliResult {
	t.Helper()
	return cliTest{api: f.handler()}.run(t, args...)
}

// sameJSON checks that got (printed by the CLI) holds the same JSON value as want (the
// API's objects).
func sameJSON(t *testing.T, got string, want any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, got)
	}
	raw, _ := json.Marshal(want)
	_ = json.Unmarshal(raw, &w)
	if !reflect.DeepEqual(g, w) {
		t.Errorf("the JSON printed is not the API's objects\n--- got ---\n%s\n--- want ---\n%s", got, raw)
	}
}

const (
	invPending  = "0190f3c2-0001-7000-8000-00000000a001"
	invExpiredB = "0190f3c2-0002-7000-8000-00000000a002"
	invExpiredC = "0190f3c2-0003-7000-8000-00000000a003"
	invExpiredD = "0190f3c2-0004-7000-8000-00000000a004"
	invAccepted = "0190f3c2-0005-7000-8000-00000000a005"
	joinPending = "0190f3c2-0002-7000-8000-00000000c002"
	joinClosed  = "0190f3c2-0004-7000-8000-00000000c004"
)

func TestAdminFixturesMatchOpenAPI(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	check := func(schema string, v any) {
		t.Helper()
		ref := doc.Components.Schemas[schema]
		if ref == nil || ref.Value == nil {
			t.Fatalf("no schema %s in openapi.yaml", schema)
		}
		raw, _ := json.Marshal(v)
		var plain any
		_ = json.Unmarshal(raw, &plain)
		if err := ref.Value.VisitJSON(plain); err != nil {
			t.Errorf("%s does not match the %s schema: %v\n%s", schema, schema, err, raw)
		}
		// Nothing the API does not have, either.
		for k := range plain.(map[string]any) {
			if _, ok := ref.Value.Properties[k]; !ok && len(ref.Value.AllOf) == 0 {
				t.Errorf("%s has %q, which the schema has not", schema, k)
			}
		}
	}
	f := newFakeAdmin(t)
	for _, inv := range f.invitations {
		check("Invitation", inv)
	}
	for _, jr := range f.joinRequests {
		check("JoinRequest", jr)
	}
	res := f.run(t, "batches", "show", testBatchID, "--json")
	var batch any
	_ = json.Unmarshal([]byte(res.stdout), &batch)
	check("Batch", batch)
	// And what the fake answers after an action.
	res = f.run(t, "invitations", "renew", invExpiredB, "--json")
	var renewed any
	_ = json.Unmarshal([]byte(res.stdout), &renewed)
	check("Invitation", renewed)
}

func TestInvitationsListTable(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "list", "--organization", testOrg)
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_list.golden", res.stdout)
	if res.stderr != "" {
		t.Errorf("stderr: %q", res.stderr)
	}
	if want := []string{"GET /v1/invitations?organization_id=" + testOrg}; !slices.Equal(f.calls(), want) {
		t.Errorf("requests %q, want %q", f.calls(), want)
	}
}

func TestInvitationsListPage(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "list", "--status", "expired", "--limit", "2")
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_list_page.golden", res.stdout)
	cursor := base64.RawURLEncoding.EncodeToString([]byte(invExpiredC))
	if want := "There are more invitations: add --cursor " + cursor + " for the next page, or --all for every one.\n"; res.stderr != want {
		t.Errorf("stderr %q, want %q", res.stderr, want)
	}
	res = f.run(t, "invitations", "list", "--status", "expired", "--limit", "2", "--cursor", cursor)
	checkCode(t, res, exitOK)
	if !strings.Contains(res.stdout, invExpiredB) || strings.Contains(res.stdout, invExpiredC) || res.stderr != "" {
		t.Errorf("second page:\n%s\nstderr: %s", res.stdout, res.stderr)
	}
}

func TestInvitationsListJSON(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "list", "--all", "--limit", "3", "--json")
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_list.json.golden", res.stdout)
	sameJSON(t, res.stdout, f.invitations)
	if n := len(f.calls()); n != 3 {
		t.Errorf("%d requests, want 3 pages of 3: %q", n, f.calls())
	}
}

func TestInvitationsListEmpty(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "list", "--email", "nobody@example.com")
	checkCode(t, res, exitOK)
	if res.stdout != "No invitations.\n" {
		t.Errorf("stdout %q", res.stdout)
	}
	res = f.run(t, "invitations", "list", "--email", "nobody@example.com", "--json")
	if res.stdout != "[]\n" {
		t.Errorf("--json stdout %q, want an empty array", res.stdout)
	}
}

func TestInvitationsShow(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "show", invAccepted)
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_show.golden", res.stdout)

	res = f.run(t, "invitations", "show", invAccepted, "--json")
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_show.json.golden", res.stdout)
	sameJSON(t, res.stdout, f.invitation(invAccepted))
}

func TestJoinRequestsList(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "join-requests", "list")
	checkCode(t, res, exitOK)
	checkGolden(t, "join_requests_list.golden", res.stdout)

	res = f.run(t, "join-requests", "list", "--json", "--status", "pending", "--member", "0190f3c2-0000-7000-8000-0000000000e1")
	checkCode(t, res, exitOK)
	checkGolden(t, "join_requests_list.json.golden", res.stdout)
	sameJSON(t, res.stdout, []any{f.joinRequest(joinPending)})
	if got := f.calls()[1]; got != "GET /v1/join-requests?member_id=0190f3c2-0000-7000-8000-0000000000e1&status=pending" {
		t.Errorf("request %q", got)
	}
}

func TestJoinRequestsShow(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "join-requests", "show", joinPending)
	checkCode(t, res, exitOK)
	checkGolden(t, "join_requests_show.golden", res.stdout)

	res = f.run(t, "join-requests", "show", joinPending, "--json")
	checkCode(t, res, exitOK)
	checkGolden(t, "join_requests_show.json.golden", res.stdout)
	sameJSON(t, res.stdout, f.joinRequest(joinPending))
}

func TestJoinRequestsActions(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "join-requests", "approve", joinPending, "--role", "admin")
	checkCode(t, res, exitOK)
	checkGolden(t, "join_requests_approve.golden", res.stdout)
	if got := f.calls()[0]; got != "POST /v1/join-requests/"+joinPending+`/approve {"role":"admin"}` {
		t.Errorf("request %q", got)
	}
	// Approved now: rejecting it is refused, and the CLI says so with exit 3.
	res = f.run(t, "join-requests", "reject", joinPending)
	checkCode(t, res, exitAPI)
	if want := "usher: reject of join request " + joinPending + " failed: usher API: 409 already_decided: this request was already approved\n  status: approved\n  request ID: req-42\n"; res.stderr != want {
		t.Errorf("stderr %q, want %q", res.stderr, want)
	}
	res = f.run(t, "join-requests", "cancel", "0190f3c2-0003-7000-8000-00000000c003", "--json")
	checkCode(t, res, exitOK)
	if !strings.Contains(res.stdout, `"status": "cancelled"`) {
		t.Errorf("stdout:\n%s", res.stdout)
	}
	if got := f.calls()[2]; got != "POST /v1/join-requests/0190f3c2-0003-7000-8000-00000000c003/cancel" {
		t.Errorf("request %q: cancel sends no body", got)
	}
}

func TestBatchesShow(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "batches", "show", testBatchID)
	checkCode(t, res, exitOK)
	checkGolden(t, "batches_show.golden", res.stdout)

	res = f.run(t, "batches", "show", testBatchID, "--json")
	checkCode(t, res, exitOK)
	checkGolden(t, "batches_show.json.golden", res.stdout)
}

func TestInvitationsRenewOne(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "renew", invExpiredD, "--expires-in", "72h")
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_renew.golden", res.stdout)
	if want := []string{"POST /v1/invitations/" + invExpiredD + `/renew {"expires_in":"72h"}`}; !slices.Equal(f.calls(), want) {
		t.Errorf("requests %q, want %q", f.calls(), want)
	}

	// Without --expires-in there is no body: the invitation's own expires_in applies.
	res = f.run(t, "invitations", "renew", invPending, "--json")
	checkCode(t, res, exitOK)
	checkGolden(t, "invitations_renew.json.golden", res.stdout)
	if got := f.calls()[1]; got != "POST /v1/invitations/"+invPending+"/renew" {
		t.Errorf("request %q", got)
	}
}

func TestInvitationsRevokeAndResendOne(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "resend", invPending)
	checkCode(t, res, exitOK)
	if !strings.HasPrefix(res.stdout, "Invitation "+invPending+" resent.\n") {
		t.Errorf("stdout:\n%s", res.stdout)
	}
	res = f.run(t, "invitations", "revoke", invPending, "--json")
	checkCode(t, res, exitOK)
	if !strings.Contains(res.stdout, `"status": "revoked"`) {
		t.Errorf("stdout:\n%s", res.stdout)
	}
	want := []string{"POST /v1/invitations/" + invPending + "/resend", "POST /v1/invitations/" + invPending + "/revoke"}
	if !slices.Equal(f.calls(), want) {
		t.Errorf("requests %q, want %q", f.calls(), want)
	}
}

func TestInvitationsBulkRenew(t *testing.T) {
	f := newFakeAdmin(t)
	f.conflicts[invExpiredC] = "0190f3c2-0009-7000-8000-00000000a009"
	res := f.run(t, "invitations", "renew", "--status", "expired", "--organization", testOrg, "--expires-in", "72h")
	checkCode(t, res, exitProblems)
	checkGolden(t, "invitations_bulk_renew.golden", res.stdout)
	if !strings.HasPrefix(res.stderr, "Renewing 3 invitations, 3 at a time. Ctrl-C stops.\n") {
		t.Errorf("stderr:\n%s", res.stderr)
	}
	calls := f.calls()
	if want := "GET /v1/invitations?limit=200&organization_id=" + testOrg + "&status=expired"; calls[0] != want {
		t.Errorf("first request %q, want the listing %q", calls[0], want)
	}
	renews := slices.Sorted(slices.Values(calls[1:]))
	want := []string{
		"POST /v1/invitations/" + invExpiredB + `/renew {"expires_in":"72h"}`,
		"POST /v1/invitations/" + invExpiredC + `/renew {"expires_in":"72h"}`,
		"POST /v1/invitations/" + invExpiredD + `/renew {"expires_in":"72h"}`,
	}
	if !slices.Equal(renews, want) {
		t.Errorf("renewals %q, want %q", renews, want)
	}
	// Renewing again finds only the one that failed.
	res = f.run(t, "invitations", "renew", "--status", "expired", "--organization", testOrg, "--expires-in", "72h", "--json")
	checkCode(t, res, exitProblems)
	checkGolden(t, "invitations_bulk_renew_again.json.golden", res.stdout)
}

func TestInvitationsBulkRenewJSON(t *testing.T) {
	f := newFakeAdmin(t)
	f.conflicts[invExpiredC] = "0190f3c2-0009-7000-8000-00000000a009"
	res := f.run(t, "invitations", "renew", "--status", "expired", "--organization", testOrg, "--expires-in", "72h", "--json")
	checkCode(t, res, exitProblems)
	checkGolden(t, "invitations_bulk_renew.json.golden", res.stdout)
	var report bulkReport
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil {
		t.Fatalf("stdout is not one JSON object: %v", err)
	}
	if report.Matched != 3 || report.Succeeded != 2 || report.Failed != 1 || report.FailuresByCode["invitation_pending"] != 1 {
		t.Errorf("report %+v", report)
	}
}

func TestInvitationsBulkProgress(t *testing.T) {
	// One at a time, the progress lines (stderr is not a terminal) come in a known order.
	f := newFakeAdmin(t)
	f.conflicts[invExpiredC] = "0190f3c2-0009-7000-8000-00000000a009"
	res := f.run(t, "invitations", "renew", "--status", "expired", "--concurrency", "1")
	checkCode(t, res, exitProblems)
	checkGolden(t, "invitations_bulk_renew.stderr.golden", res.stderr)

	// On a terminal, a bar.
	f = newFakeAdmin(t)
	res = cliTest{api: f.handler(), terminal: true}.run(t, "invitations", "resend", "--all-matching")
	checkCode(t, res, exitProblems)
	for _, want := range []string{"resent 1, failed 6", "(7/7)", "100%"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("the bar on stderr has no %q:\n%q", want, res.stderr)
		}
	}
	if !strings.Contains(res.stdout, "Resent 1 of 7 invitations; 6 failed.\n\nFailures by error code:\n  invalid_state  6\n") {
		t.Errorf("stdout:\n%s", res.stdout)
	}
}

func TestInvitationsBulkNothingMatches(t *testing.T) {
	f := newFakeAdmin(t)
	res := f.run(t, "invitations", "revoke", "--email", "nobody@example.com")
	checkCode(t, res, exitOK)
	if res.stdout != "No invitations match: nothing to revoke.\n" || res.stderr != "" {
		t.Errorf("stdout %q, stderr %q", res.stdout, res.stderr)
	}
}

func TestInvitationsBulkInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := newFakeAdmin(t)
	var n int
	f.onAction = func(string) {
		f.mu.Lock()
		n++
		stop := n == 2
		f.mu.Unlock()
		if stop {
			cancel()
		}
	}
	res := cliTest{api: f.handler(), ctx: ctx}.run(t, "invitations", "renew", "--status", "expired", "--concurrency", "1")
	checkCode(t, res, exitInterrupted)
	if !strings.HasPrefix(res.stdout, "Interrupted: renewed 1 of 3 invitations; 1 failed, 1 not attempted.\n") ||
		!strings.Contains(res.stdout, "interrupted  1") {
		t.Errorf("stdout:\n%s", res.stdout)
	}
}

func TestAdminAPIErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		stderr string // all of it, or a prefix when it ends with "…"
	}{
		{name: "unknown invitation", args: []string{"invitations", "show", "0190f3c2-dead-7000-8000-000000000000"},
			stderr: "usher: reading invitation 0190f3c2-dead-7000-8000-000000000000 failed: usher API: 404 invitation_not_found: no invitation with id \"0190f3c2-dead-7000-8000-000000000000\"\n  request ID: req-42\n"},
		{name: "invalid state", args: []string{"invitations", "renew", invAccepted},
			stderr: "usher: renew of invitation " + invAccepted + " failed: usher API: 409 invalid_state: cannot renew an invitation in status \"accepted\"\n  status: accepted\n  request ID: req-42\n"},
		{name: "unknown batch", args: []string{"batches", "show", "nope", "--json"},
			stderr: "usher: reading batch nope failed: usher API: 404 batch_not_found: no batch with id \"nope\"\n  request ID: req-42\n"},
		{name: "closed join request", args: []string{"join-requests", "cancel", joinClosed},
			stderr: "usher: cancel of join request " + joinClosed + " failed: usher API: 409 invalid_state: cannot cancel a join request in status \"cancelled\"\n  status: cancelled\n  request ID: req-42\n"},
		{name: "refused key", env: map[string]string{"USHER_API_KEY": "usk_wrong"}, args: []string{"join-requests", "list"},
			stderr: "usher: listing join requests failed: usher API: 401 unauthorized: send an API key as Authorization: Bearer <key>\n  check USHER_API_KEY: the server does not accept it\n  request ID: req-42\n"},
		{name: "unreachable", env: map[string]string{"USHER_API_URL": "http://127.0.0.1:1"}, args: []string{"invitations", "renew", "--status", "expired"},
			stderr: "usher: listing the invitations to renew failed: cannot reach Usher at http://127.0.0.1:1: …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAdmin(t)
			res := cliTest{api: f.handler(), env: tc.env}.run(t, tc.args...)
			checkCode(t, res, exitAPI)
			if prefix, ok := strings.CutSuffix(tc.stderr, "…"); ok {
				if !strings.HasPrefix(res.stderr, prefix) {
					t.Errorf("stderr %q, want it to start with %q", res.stderr, prefix)
				}
			} else if res.stderr != tc.stderr {
				t.Errorf("stderr %q, want %q", res.stderr, tc.stderr)
			}
			if res.stdout != "" {
				t.Errorf("stdout: %q", res.stdout)
			}
		})
	}
}

func TestAdminUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{name: "missing key", env: map[string]string{"USHER_API_KEY": ""}, args: []string{"invitations", "list"}, want: "usher: USHER_API_KEY is not set"},
		{name: "bad URL", env: map[string]string{"USHER_API_URL": "localhost:8080"}, args: []string{"batches", "show", testBatchID},
			want: `usher: USHER_API_URL "localhost:8080" is not an http(s) address`},
		{name: "unknown subcommand", args: []string{"invitations", "delete", invPending}, want: `unknown command "delete" for "usher invitations"`},
		{name: "unknown flag", args: []string{"invitations", "list", "--organisation", testOrg}, want: "unknown flag: --organisation"},
		{name: "bad status", args: []string{"invitations", "list", "--status", "open"}, want: "--status must be one of draft, pending, accepted, expired, revoked, failed"},
		{name: "bad join status", args: []string{"join-requests", "list", "--status", "open"}, want: "--status must be one of unconfirmed, pending"},
		{name: "bad limit", args: []string{"invitations", "list", "--limit", "500"}, want: "--limit must be a number from 1 to 200"},
		{name: "all and cursor", args: []string{"join-requests", "list", "--all", "--cursor", "abc"}, want: "--all and --cursor do not go together"},
		{name: "list with an argument", args: []string{"invitations", "list", invPending}, want: "list takes no arguments"},
		{name: "show without ID", args: []string{"invitations", "show"}, want: "give one invitation ID"},
		{name: "show two IDs", args: []string{"join-requests", "show", "a", "b"}, want: "give one join request ID"},
		{name: "batch without ID", args: []string{"batches", "show"}, want: "give one batch ID"},
		{name: "bulk without filter", args: []string{"invitations", "renew", "--expires-in", "72h"},
			want: "give an invitation ID, or filters (--status, --organization, --email) to renew every match; --all-matching renews every invitation"},
		{name: "ID and filter", args: []string{"invitations", "revoke", invPending, "--status", "pending"}, want: "give an invitation ID or filters, not both"},
		{name: "two IDs", args: []string{"invitations", "resend", invPending, invExpiredB}, want: "give one invitation ID, or filters"},
		{name: "bad expiry", args: []string{"invitations", "renew", invPending, "--expires-in", "3 days"}, want: `--expires-in: "3 days" is not a duration such as "72h"`},
		{name: "expiry too long", args: []string{"invitations", "renew", "--status", "expired", "--expires-in", "1000h"}, want: "--expires-in: must be between 1s and 720h0m0s"},
		{name: "no expiry on revoke", args: []string{"invitations", "revoke", invPending, "--expires-in", "1h"}, want: "unknown flag: --expires-in"},
		{name: "bad concurrency", args: []string{"invitations", "renew", "--status", "expired", "--concurrency", "0"}, want: "--concurrency must be a number from 1 to 32"},
		{name: "bad role", args: []string{"join-requests", "approve", joinPending, "--role", "owner"}, want: "--role must be one of member, admin, guest"},
		{name: "role on reject", args: []string{"join-requests", "reject", joinPending, "--role", "admin"}, want: "unknown flag: --role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAdmin(t)
			res := cliTest{api: f.handler(), env: tc.env}.run(t, tc.args...)
			checkCode(t, res, exitUsage)
			if !strings.Contains(res.stderr, tc.want) {
				t.Errorf("stderr has no %q:\n%s", tc.want, res.stderr)
			}
			if calls := f.calls(); len(calls) != 0 {
				t.Errorf("the API was called: %q", calls)
			}
			if res.stdout != "" {
				t.Errorf("stdout: %q", res.stdout)
			}
		})
	}
}

func TestAdminUsageErrorGolden(t *testing.T) {
	res := newFakeAdmin(t).run(t, "invitations", "renew")
	checkCode(t, res, exitUsage)
	checkGolden(t, "invitations_renew_usage.stderr.golden", res.stderr)
}
