package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNewUserJourney(t *testing.T) {
	org := createOrganization(t, "Acme Corp", nil)
	inviterID, inviterEmail := createMember(t, org, "Ines Inviter")
	email := uniqueEmail(t, "newbie")

	created := invite(t, map[string]any{
		"email": strings.ToUpper(email[:1]) + email[1:], "name": "Nina Newbie", "organization_id": org,
		"role": "admin", "inviter_id": inviterID, "metadata": map[string]any{"source": "e2e"},
	})
	id := created.str("id")
	if created.str("status") != "pending" || created.str("email") != email || created.str("role") != "admin" {
		t.Fatalf("created: %s", created.Raw)
	}
	if strings.Contains(string(created.Raw), "token") {
		t.Fatalf("the invitation JSON mentions a token: %s", created.Raw)
	}

	invitation := waitForMail(t, email, "invitation", 1)[0]
	token := tokenIn(t, invitation, "invite")
	if !strings.Contains(invitation.Text, "Acme Corp") || !strings.Contains(invitation.Text, "Ines Inviter") {
		t.Fatalf("the invitation does not say who invited them to what: %q", invitation.Text)
	}
	for k, v := range invitation.Variables {
		if strings.Contains(v, token) {
			t.Fatalf("the token is in Mailgun variable %s, which recipients can see", k)
		}
	}
	sent := waitForDelivery(t, id, "sent")
	if sent.get("delivery", "attempts") != float64(1) {
		t.Fatalf("delivery: %s", sent.Raw)
	}

	lookup := call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": token}, withoutKey)
	expect(t, lookup, http.StatusOK, "")
	if lookup.str("status") != "pending" || lookup.str("organization", "name") != "Acme Corp" ||
		lookup.str("inviter", "name") != "Ines Inviter" || lookup.get("existing_user") != false ||
		lookup.str("role") != "admin" || strings.Contains(lookup.str("email_hint"), email) {
		t.Fatalf("lookup: %s", lookup.Raw)
	}

	accepted := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey)
	expect(t, accepted, http.StatusOK, "")
	userID := accepted.str("user_id")
	if accepted.str("status") != "accepted" || accepted.get("existing_user") != false || userID == "" {
		t.Fatalf("accept: %s", accepted.Raw)
	}

	again := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey)
	expect(t, again, http.StatusConflict, "invitation_used")

	passwordMail := waitForMail(t, email, "set_password", 1)[0]
	passwordToken := tokenIn(t, passwordMail, "password")
	waitForMail(t, inviterEmail, "invitation_accepted", 1)

	inv := waitForStatus(t, id, "accepted")
	if inv.str("user_id") != userID || inv.get("accepted_at") == nil {
		t.Fatalf("invitation after accept: %s", inv.Raw)
	}
	user := call(t, "GET", "/v1/users/"+userID, nil)
	expect(t, user, http.StatusOK, "")
	memberships, _ := user.get("memberships").([]any)
	if len(memberships) != 1 || memberships[0].(map[string]any)["role"] != "admin" || user.get("has_password") != false {
		t.Fatalf("user: %s", user.Raw)
	}

	weak := call(t, "POST", "/v1/public/password", map[string]any{"token": passwordToken, "password": "short"}, withoutKey)
	expect(t, weak, http.StatusUnprocessableEntity, "weak_password")
	set := call(t, "POST", "/v1/public/password", map[string]any{"token": passwordToken, "password": "correct horse battery"}, withoutKey)
	expect(t, set, http.StatusOK, "")
	reused := call(t, "POST", "/v1/public/password", map[string]any{"token": passwordToken, "password": "another good password"}, withoutKey)
	expect(t, reused, http.StatusNotFound, "invalid_token")
	if u := call(t, "GET", "/v1/users/"+userID, nil); u.get("has_password") != true {
		t.Fatalf("password not set: %s", u.Raw)
	}

	if n := countRows(t, "SELECT COUNT(*) FROM users WHERE email = ?", email); n != 1 {
		t.Fatalf("%d users for one e-mail", n)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM invitation_events WHERE invitation_id = ?", id); n < 3 {
		t.Fatalf("audit trail has %d events, want create, send and accept at least", n)
	}
	if n := len(mailTo(email, "invitation")); n != 1 {
		t.Fatalf("%d invitation e-mails", n)
	}
	checkHistory(t, id, "accepted-new-user", token, passwordToken, email)
}

func TestExistingUserJourney(t *testing.T) {
	home := createOrganization(t, "Home Org", nil)
	org := createOrganization(t, "Second Org", map[string]any{"login_url": "https://app.example.com/login"})
	userID, email := createMember(t, home, "Ella Existing")

	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")

	lookup := call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": token}, withoutKey)
	if lookup.get("existing_user") != true {
		t.Fatalf("lookup: %s", lookup.Raw)
	}
	accepted := call(t, "POST", "/v1/public/invitations/accept",
		map[string]any{"token": token, "password": "an attempt to take over"}, withoutKey)
	expect(t, accepted, http.StatusOK, "")
	if accepted.str("user_id") != userID || accepted.get("existing_user") != true ||
		accepted.str("redirect_url") != "https://app.example.com/login" {
		t.Fatalf("accept: %s", accepted.Raw)
	}
	waitForStatus(t, id, "accepted")

	user := call(t, "GET", "/v1/users/"+userID, nil)
	if memberships, _ := user.get("memberships").([]any); len(memberships) != 2 || user.get("has_password") != true {
		t.Fatalf("user: %s", user.Raw)
	}
	// The existing account is not handed a new password by whoever holds the link.
	time.Sleep(500 * time.Millisecond)
	if n := len(mailTo(email, "set_password")); n != 0 {
		t.Fatalf("an existing user got %d set-password e-mails", n)
	}
}

func TestAcceptWithPasswordMakesTheAccountUsableAtOnce(t *testing.T) {
	org := createOrganization(t, "Pw Org", nil)
	email := uniqueEmail(t, "pw")
	id := invite(t, map[string]any{"email": email, "organization_id": org, "redirect_url": "https://app.example.com/welcome"}).str("id")
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")

	weak := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token, "password": "aaaaaaaaaaaa"}, withoutKey)
	expect(t, weak, http.StatusUnprocessableEntity, "weak_password")

	accepted := call(t, "POST", "/v1/public/invitations/accept",
		map[string]any{"token": token, "name": "Pat Password", "password": "a long enough secret"}, withoutKey)
	expect(t, accepted, http.StatusOK, "")
	var passwordHash string
	if err := env.db.DB.Get(&passwordHash, "SELECT password_hash FROM users WHERE id = ?", accepted.str("user_id")); err != nil {
		t.Fatal(err)
	}
	if accepted.get("password_set") != true || accepted.str("redirect_url") != "https://app.example.com/welcome" {
		t.Fatalf("accept: %s", accepted.Raw)
	}
	user := call(t, "GET", "/v1/users/"+accepted.str("user_id"), nil)
	if user.get("has_password") != true || user.str("name") != "Pat Password" {
		t.Fatalf("user: %s", user.Raw)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(mailTo(email, "set_password")); n != 0 {
		t.Fatalf("%d set-password e-mails for an account that has a password", n)
	}
	if n := countRows(t, "SELECT COUNT(*) FROM acceptance_credentials"); n != 0 {
		t.Fatalf("%d staged passwords left behind", n)
	}
	waitForStatus(t, id, "accepted")
	checkHistory(t, id, "accepted-with-password", token, "a long enough secret", passwordHash)
}

func TestExpiryAndRenewal(t *testing.T) {
	org := createOrganization(t, "Expiring Org", nil)
	email := uniqueEmail(t, "late")
	id := invite(t, map[string]any{"email": email, "organization_id": org, "expires_in": "2s"}).str("id")
	oldToken := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")

	waitForStatus(t, id, "expired")
	late := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": oldToken}, withoutKey)
	expect(t, late, http.StatusGone, "invitation_expired")
	lookup := call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": oldToken}, withoutKey)
	if lookup.str("status") != "expired" {
		t.Fatalf("lookup of an expired invitation: %s", lookup.Raw)
	}
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/resend", nil), http.StatusConflict, "invalid_state")

	renewed := call(t, "POST", "/v1/invitations/"+id+"/renew", map[string]any{"expires_in": "1h"})
	expect(t, renewed, http.StatusOK, "")
	expiresAt, err := time.Parse(time.RFC3339Nano, renewed.str("expires_at"))
	if err != nil || renewed.str("status") != "pending" || time.Until(expiresAt) < 59*time.Minute {
		t.Fatalf("renew: %s", renewed.Raw)
	}
	newToken := tokenIn(t, waitForMail(t, email, "invitation", 2)[1], "invite")
	if newToken == oldToken {
		t.Fatal("renewal reused the old link")
	}
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": oldToken}, withoutKey), http.StatusNotFound, "invalid_token")

	// Renewing a pending invitation moves its expiry and keeps its link.
	moved := call(t, "POST", "/v1/invitations/"+id+"/renew", map[string]any{"expires_in": "48h"})
	expect(t, moved, http.StatusOK, "")
	if moved.str("expires_at") == renewed.str("expires_at") {
		t.Fatalf("second renew did not move the expiry: %s", moved.Raw)
	}
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/renew", map[string]any{"expires_in": "1000h"}), http.StatusBadRequest, "invalid_expiry")
	// Without a body, the invitation's own expires_in (2s) applies.
	short := call(t, "POST", "/v1/invitations/"+id+"/renew", nil)
	expect(t, short, http.StatusOK, "")
	if at, _ := time.Parse(time.RFC3339Nano, short.str("expires_at")); time.Until(at) > 3*time.Second {
		t.Fatalf("renew without a body: %s", short.Raw)
	}
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/renew", map[string]any{"expires_in": "1h"}), http.StatusOK, "")

	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": newToken}, withoutKey), http.StatusOK, "")
	waitForStatus(t, id, "accepted")
	if n := len(mailTo(email, "invitation")); n != 2 {
		t.Fatalf("%d invitation e-mails, want the first and the renewal's", n)
	}
	checkHistory(t, id, "reopened-then-accepted", oldToken, newToken, email)
}

func TestResendAndRevoke(t *testing.T) {
	org := createOrganization(t, "Revoking Org", nil)
	email := uniqueEmail(t, "revoked")
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	first := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")
	waitForDelivery(t, id, "sent")

	expect(t, call(t, "POST", "/v1/invitations/"+id+"/resend", nil), http.StatusOK, "")
	second := tokenIn(t, waitForMail(t, email, "invitation", 2)[1], "invite")
	if first == second {
		t.Fatal("resend reused the link")
	}
	old := call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": first}, withoutKey)
	expect(t, old, http.StatusNotFound, "invalid_token")
	if old.str("error", "details", "reason") != "replaced" {
		t.Fatalf("old link: %s", old.Raw)
	}
	expect(t, call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": second}, withoutKey), http.StatusOK, "")

	revoked := call(t, "POST", "/v1/invitations/"+id+"/revoke", nil)
	expect(t, revoked, http.StatusOK, "")
	if revoked.str("status") != "revoked" || revoked.get("revoked_at") == nil {
		t.Fatalf("revoke: %s", revoked.Raw)
	}
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": second}, withoutKey), http.StatusGone, "invitation_revoked")
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/revoke", nil), http.StatusConflict, "invalid_state")
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/renew", map[string]any{"expires_in": "1h"}), http.StatusConflict, "invalid_state")

	checkHistory(t, id, "resent-then-revoked", first, second, email)
	// A revoked invitation no longer blocks a new one.
	invite(t, map[string]any{"email": email, "organization_id": org})
}

func TestDraftIsSentLater(t *testing.T) {
	org := createOrganization(t, "Draft Org", nil)
	email := uniqueEmail(t, "draft")
	draft := invite(t, map[string]any{"email": email, "organization_id": org, "send": false, "expires_in": "24h"})
	id := draft.str("id")
	if draft.str("status") != "draft" || draft.get("expires_at") != nil {
		t.Fatalf("draft: %s", draft.Raw)
	}
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/resend", nil), http.StatusConflict, "invalid_state")
	time.Sleep(300 * time.Millisecond)
	if n := len(mailTo(email, "invitation")); n != 0 {
		t.Fatalf("a draft sent %d e-mails", n)
	}

	sent := call(t, "POST", "/v1/invitations/"+id+"/send", nil)
	expect(t, sent, http.StatusOK, "")
	if sent.str("status") != "pending" || sent.get("expires_at") == nil {
		t.Fatalf("send: %s", sent.Raw)
	}
	waitForMail(t, email, "invitation", 1)
	expect(t, call(t, "POST", "/v1/invitations/"+id+"/send", nil), http.StatusConflict, "invalid_state")
}

func TestConflicts(t *testing.T) {
	org := createOrganization(t, "Conflict Org", nil)
	email := uniqueEmail(t, "twice")
	first := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")

	dup := call(t, "POST", "/v1/invitations", map[string]any{"email": email, "organization_id": org})
	expect(t, dup, http.StatusConflict, "invitation_pending")
	if dup.str("error", "details", "invitation_id") != first {
		t.Fatalf("conflict does not point at the open invitation: %s", dup.Raw)
	}

	_, memberEmail := createMember(t, org, "Already Here")
	expect(t, call(t, "POST", "/v1/invitations", map[string]any{"email": memberEmail, "organization_id": org}), http.StatusConflict, "already_member")

	// The same person may be invited to another organization meanwhile.
	other := createOrganization(t, "Other Org", nil)
	invite(t, map[string]any{"email": email, "organization_id": other})
}

// "sent" is also met by "delivered", which the test Mailgun's webhook reports soon after.
func waitForDelivery(t testing.TB, id, status string) response {
	t.Helper()
	var r response
	eventually(t, 60*time.Second, "delivery of "+id+" to be "+status, func() bool {
		r = call(t, "GET", "/v1/invitations/"+id, nil)
		got := r.str("delivery", "status")
		return got == status || (status == "sent" && got == "delivered")
	})
	return r
}
