package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/workflows"
)

// publishProfile makes a member of org findable on the join page.
func publishProfile(t *testing.T, memberID, org, displayName string) {
	t.Helper()
	r := call(t, "PATCH", "/v1/users/"+memberID, map[string]any{"public_profile": map[string]any{
		"display_name": displayName, "organization_id": org, "city": "Lisbon", "bio": "Happy to vouch for people I know.",
	}})
	expect(t, r, http.StatusOK, "")
	if r.str("public_profile", "display_name") != displayName {
		t.Fatalf("profile: %s", r.Raw)
	}
}

func TestJoinRequestJourney(t *testing.T) {
	org := createOrganization(t, "Guild", nil)
	memberID, memberEmail := createMember(t, org, "Maria Member")
	publishProfile(t, memberID, org, "Maria M.")
	_, privateEmail := createMember(t, org, "Pat Private")

	found := call(t, "POST", "/v1/public/members/search", map[string]any{"email": memberEmail}, withoutKey)
	expect(t, found, http.StatusOK, "")
	if found.str("member_id") != memberID || found.str("display_name") != "Maria M." || found.str("organization", "name") != "Guild" {
		t.Fatalf("search: %s", found.Raw)
	}
	if _, ok := found.Body["email"]; ok {
		t.Fatalf("the search reveals the member's e-mail: %s", found.Raw)
	}
	private := call(t, "POST", "/v1/public/members/search", map[string]any{"email": privateEmail}, withoutKey)
	nobody := call(t, "POST", "/v1/public/members/search", map[string]any{"email": uniqueEmail(t, "nobody")}, withoutKey)
	expect(t, private, http.StatusNotFound, "member_not_found")
	expect(t, nobody, http.StatusNotFound, "member_not_found")
	if string(private.Raw) != string(nobody.Raw) {
		t.Fatalf("a private account answers differently from no account:\n%s\n%s", private.Raw, nobody.Raw)
	}

	visitor := uniqueEmail(t, "visitor")
	body := map[string]any{"member_id": memberID, "name": "Vera Visitor", "email": visitor, "message": "We met at the meetup."}
	created := call(t, "POST", "/v1/public/join-requests", body, withoutKey)
	expect(t, created, http.StatusAccepted, "")
	id := created.str("id")
	if created.str("status") != "unconfirmed" {
		t.Fatalf("created: %s", created.Raw)
	}
	again := call(t, "POST", "/v1/public/join-requests", body, withoutKey)
	if again.str("id") != id {
		t.Fatalf("a repeated request made a new one: %s", again.Raw)
	}

	confirmToken := tokenIn(t, waitForMail(t, visitor, "join_confirm", 1)[0], "join/confirm")
	time.Sleep(300 * time.Millisecond)
	if n := len(mailTo(memberEmail, "join_request")); n != 0 {
		t.Fatal("the member heard of an unconfirmed request")
	}
	confirmed := call(t, "POST", "/v1/public/join-requests/confirm", map[string]any{"token": confirmToken}, withoutKey)
	expect(t, confirmed, http.StatusOK, "")
	if confirmed.str("status") != "pending" {
		t.Fatalf("confirm: %s", confirmed.Raw)
	}
	expect(t, call(t, "POST", "/v1/public/join-requests/confirm", map[string]any{"token": confirmToken}, withoutKey), http.StatusConflict, "already_confirmed")

	decision := waitForMail(t, memberEmail, "join_request", 1)[0]
	decideToken := tokenIn(t, decision, "join-requests")
	if !contains(decision.Text, "Vera Visitor") || !contains(decision.Text, visitor) || !contains(decision.Text, "We met at the meetup.") {
		t.Fatalf("the member's e-mail does not say who wants in: %q", decision.Text)
	}
	expect(t, call(t, "POST", "/v1/public/join-requests/decide", map[string]any{"token": confirmToken, "decision": "approve"}, withoutKey),
		http.StatusNotFound, "invalid_token")
	expect(t, call(t, "POST", "/v1/public/join-requests/decide", map[string]any{"token": decideToken, "decision": "maybe"}, withoutKey),
		http.StatusBadRequest, "invalid_request")

	approved := call(t, "POST", "/v1/public/join-requests/decide", map[string]any{"token": decideToken, "decision": "approve", "role": "admin"}, withoutKey)
	expect(t, approved, http.StatusOK, "")
	if approved.str("status") != "approved" {
		t.Fatalf("approve: %s", approved.Raw)
	}
	expect(t, call(t, "POST", "/v1/public/join-requests/decide", map[string]any{"token": decideToken, "decision": "reject"}, withoutKey),
		http.StatusConflict, "already_decided")

	passwordToken := tokenIn(t, waitForMail(t, visitor, "join_approved", 1)[0], "password")
	expect(t, call(t, "POST", "/v1/public/password", map[string]any{"token": passwordToken, "password": "a fine new password"}, withoutKey), http.StatusOK, "")

	jr := call(t, "GET", "/v1/join-requests/"+id, nil)
	expect(t, jr, http.StatusOK, "")
	if jr.str("status") != "approved" || jr.str("role") != "admin" || jr.str("user_id") == "" || jr.get("confirmed_at") == nil {
		t.Fatalf("join request: %s", jr.Raw)
	}
	user := call(t, "GET", "/v1/users/"+jr.str("user_id"), nil)
	if memberships, _ := user.get("memberships").([]any); len(memberships) != 1 || memberships[0].(map[string]any)["role"] != "admin" || user.get("has_password") != true {
		t.Fatalf("visitor's account: %s", user.Raw)
	}
	list := call(t, "GET", "/v1/join-requests?member_id="+memberID+"&status=approved", nil)
	if data, _ := list.get("data").([]any); len(data) != 1 {
		t.Fatalf("list: %s", list.Raw)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", visitor); n != 1 {
		t.Fatalf("%d accounts for the visitor", n)
	}
	waitForMail(t, visitor, "join_approved", 1)
	eventually(t, 30*time.Second, "the workflow to finish", func() bool {
		d, err := env.client.DescribeWorkflowExecution(context.Background(), workflows.JoinRequestWorkflowID(id), "")
		return err == nil && d.WorkflowExecutionInfo.CloseTime != nil
	})
	checkWorkflowHistory(t, workflows.JoinRequestWorkflowID(id), "join-approved", confirmToken, decideToken, passwordToken, visitor, memberEmail)
}

func TestJoinRequestRejectedAndCancelledByApp(t *testing.T) {
	org := createOrganization(t, "Club", nil)
	memberID, _ := createMember(t, org, "Mo Member")
	publishProfile(t, memberID, org, "Mo")

	request := func(email string) (id, confirmToken string) {
		r := call(t, "POST", "/v1/public/join-requests", map[string]any{"member_id": memberID, "name": "V", "email": email}, withoutKey)
		expect(t, r, http.StatusAccepted, "")
		return r.str("id"), tokenIn(t, waitForMail(t, email, "join_confirm", 1)[0], "join/confirm")
	}

	rejectedVisitor := uniqueEmail(t, "rejected")
	id, token := request(rejectedVisitor)
	expect(t, call(t, "POST", "/v1/join-requests/"+id+"/reject", nil), http.StatusConflict, "invalid_state")
	expect(t, call(t, "POST", "/v1/public/join-requests/confirm", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
	rejected := call(t, "POST", "/v1/join-requests/"+id+"/reject", nil)
	expect(t, rejected, http.StatusOK, "")
	if rejected.str("status") != "rejected" {
		t.Fatalf("reject: %s", rejected.Raw)
	}
	waitForMail(t, rejectedVisitor, "join_rejected", 1)
	checkWorkflowHistory(t, workflows.JoinRequestWorkflowID(id), "join-rejected", token, rejectedVisitor)

	cancelledVisitor := uniqueEmail(t, "cancelled")
	id, token = request(cancelledVisitor)
	cancelled := call(t, "POST", "/v1/join-requests/"+id+"/cancel", nil)
	expect(t, cancelled, http.StatusOK, "")
	if cancelled.str("status") != "cancelled" {
		t.Fatalf("cancel: %s", cancelled.Raw)
	}
	expect(t, call(t, "POST", "/v1/public/join-requests/confirm", map[string]any{"token": token}, withoutKey), http.StatusConflict, "invalid_state")
	// A closed request no longer blocks a new one.
	if again := call(t, "POST", "/v1/public/join-requests", map[string]any{"member_id": memberID, "name": "V", "email": cancelledVisitor}, withoutKey); again.str("id") == id {
		t.Fatal("a cancelled request was returned as the open one")
	}
}

func TestJoinRequestFromAMemberIsToldToLogIn(t *testing.T) {
	org := createOrganization(t, "Circle", map[string]any{"login_url": "https://circle.example.com/login"})
	memberID, _ := createMember(t, org, "Mia")
	publishProfile(t, memberID, org, "Mia")
	_, colleague := createMember(t, org, "Colleague")
	r := call(t, "POST", "/v1/public/join-requests", map[string]any{"member_id": memberID, "name": "C", "email": colleague}, withoutKey)
	expect(t, r, http.StatusAccepted, "")
	told := waitForMail(t, colleague, "join_already_member", 1)[0]
	if !contains(told.Text, "https://circle.example.com/login") {
		t.Fatalf("the e-mail does not point to the login page: %q", told.Text)
	}
	eventually(t, 30*time.Second, "the request to close", func() bool {
		return call(t, "GET", "/v1/join-requests/"+r.str("id"), nil).str("status") == "cancelled"
	})
	if n := len(mailTo(colleague, "join_confirm")); n != 0 {
		t.Fatal("a member was asked to confirm a request to join their own organization")
	}
}

func TestMemberSearchIsRateLimitedPerAddress(t *testing.T) {
	server := &api.Server{Store: env.store, Temporal: env.client, Logger: quietLogger(), Join: api.JoinSettings{SearchesPerMinute: 6}}
	limited := httptest.NewServer(server.Handler())
	defer limited.Close()
	statuses := map[int]int{}
	for range 20 {
		res, err := http.Post(limited.URL+"/v1/public/members/search", "application/json", stringsReader(`{"email":"nobody@example.com"}`))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		statuses[res.StatusCode]++
		if res.StatusCode == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if statuses[http.StatusTooManyRequests] == 0 || statuses[http.StatusNotFound] == 0 || statuses[http.StatusNotFound] > 6 {
		t.Fatalf("answers %v: want a few 404s, then 429s", statuses)
	}
	// Another server's limiter (another address, as far as the limit is concerned) is unaffected.
	expect(t, call(t, "POST", "/v1/public/members/search", map[string]any{"email": "nobody@example.com"}, withoutKey), http.StatusNotFound, "member_not_found")
}

func TestPublicProfileValidation(t *testing.T) {
	org := createOrganization(t, "Profile Org", nil)
	other := createOrganization(t, "Elsewhere", nil)
	memberID, _ := createMember(t, org, "Pam")
	cases := []struct {
		body any
		code string
	}{
		{map[string]any{"public_profile": map[string]any{"display_name": "", "organization_id": org}}, "invalid_request"},
		{map[string]any{"public_profile": map[string]any{"display_name": "Pam", "organization_id": other}}, "invalid_request"},
		{map[string]any{"public_profile": "yes"}, "invalid_request"},
		{map[string]any{"locale": "not a locale"}, "invalid_request"},
	}
	for _, tc := range cases {
		expect(t, call(t, "PATCH", "/v1/users/"+memberID, tc.body), http.StatusBadRequest, tc.code)
	}
	publishProfile(t, memberID, org, "Pam")
	withdrawn := call(t, "PATCH", "/v1/users/"+memberID, map[string]any{"public_profile": nil})
	expect(t, withdrawn, http.StatusOK, "")
	if withdrawn.get("public_profile") != nil {
		t.Fatalf("withdraw: %s", withdrawn.Raw)
	}
	expect(t, call(t, "PATCH", "/v1/users/0193aaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa", map[string]any{"name": "x"}), http.StatusNotFound, "user_not_found")
}
