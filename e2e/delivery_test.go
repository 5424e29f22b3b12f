package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The test Mailgun reports each accepted e-mail delivered through the real webhook path
// (signed, to POST /v1/webhooks/mailgun), and the invitation shows it.
func TestDeliveryReportedByMailgunWebhook(t *testing.T) {
	org := createOrganization(t, "Delivered Org", nil)
	email := uniqueEmail(t, "delivered")
	id := invite(t, map[string]any{"email": email, "organization_id": org}).str("id")
	waitForMail(t, email, "invitation", 1)
	r := waitForDelivery(t, id, "delivered")
	if r.str("status") != "pending" || r.get("delivery", "last_error") != nil {
		t.Fatalf("after delivery: %s", r.Raw)
	}
	if n := countRows(t, `SELECT COUNT(*) FROM email_deliveries WHERE invitation_id = ? AND outcome = 'delivered' AND outcome_at IS NOT NULL`, id); n != 1 {
		t.Fatalf("%d deliveries recorded as delivered", n)
	}
	// Delivered or not, the invitation goes on as usual.
	token := tokenIn(t, mailTo(email, "invitation")[0], "invite")
	expect(t, call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token, "password": "correct horse battery staple"}, withoutKey), http.StatusOK, "")
}

// A bounce (Mailgun's permanent failure, reported by webhook after Mailgun accepted the
// e-mail) fails the invitation with Mailgun's reason and tells the inviter.
func TestBounceFailsTheInvitationAndTellsTheInviter(t *testing.T) {
	org := createOrganization(t, "Bounce Org", nil)
	inviterID, inviterEmail := createMember(t, org, "Ivy Inviter")
	email := uniqueEmail(t, "bounce")
	id := invite(t, map[string]any{"email": email, "name": "Bob Bounce", "organization_id": org, "inviter_id": inviterID}).str("id")
	waitForMail(t, email, "invitation", 1)
	r := waitForStatus(t, id, "failed")
	if r.str("delivery", "status") != "failed" || !strings.Contains(r.str("failure_reason"), "550") || strings.Contains(r.str("failure_reason"), "@") {
		t.Fatalf("after the bounce: %s", r.Raw)
	}
	notice := waitForMail(t, inviterEmail, "invitation_failed", 1)[0]
	if !strings.Contains(notice.Text, email) || !strings.Contains(notice.Text, "550") || !strings.Contains(notice.Subject, "could not be delivered") {
		t.Fatalf("the inviter's notice: %s\n%s", notice.Subject, notice.Text)
	}
	if n := countRows(t, `SELECT COUNT(*) FROM invitation_events WHERE invitation_id = ? AND action = 'fail'`, id); n != 1 {
		t.Fatalf("%d fail events in the audit trail", n)
	}
	// The link stopped working with the failure.
	token := tokenIn(t, mailTo(email, "invitation")[0], "invite")
	if res := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token}, withoutKey); res.Status == http.StatusOK {
		t.Fatalf("a failed invitation was accepted: %s", res.Raw)
	}
	// The bounce reached the workflow without the address (Mailgun's text quotes it).
	checkHistory(t, id, "bounced", email, inviterEmail, token)
}

// When an invitation expires unaccepted, its inviter hears of it.
func TestInviterToldOfExpiry(t *testing.T) {
	org := createOrganization(t, "Expiry Notice Org", nil)
	inviterID, inviterEmail := createMember(t, org, "Eve Inviter")
	email := uniqueEmail(t, "expiring")
	id := invite(t, map[string]any{"email": email, "organization_id": org, "inviter_id": inviterID, "expires_in": "2s"}).str("id")
	waitForStatus(t, id, "expired")
	notice := waitForMail(t, inviterEmail, "invitation_expired", 1)[0]
	if !strings.Contains(notice.Text, email) || !strings.Contains(notice.Subject, "expired") {
		t.Fatalf("the inviter's notice: %s\n%s", notice.Subject, notice.Text)
	}
}

// The webhook endpoint needs no API key but a good signature, within the time window,
// used once.
func TestMailgunWebhookSignaturesEndToEnd(t *testing.T) {
	sign := func(key string, ts time.Time, token string) map[string]any {
		timestamp := strconv.FormatInt(ts.Unix(), 10)
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(timestamp + token))
		return map[string]any{
			"signature":  map[string]string{"timestamp": timestamp, "token": token, "signature": hex.EncodeToString(mac.Sum(nil))},
			"event-data": map[string]any{"id": "e2e-" + token, "event": "delivered", "timestamp": float64(ts.Unix()), "user-variables": map[string]any{"usher_delivery_id": "no-such-delivery"}},
		}
	}
	token := func() string { return strconv.FormatInt(time.Now().UnixNano(), 36) + "e2etokene2etokene2etoken" }

	good := sign(mailgunWebhookKey, time.Now(), token())
	r := call(t, "POST", "/v1/webhooks/mailgun", good, withoutKey)
	expect(t, r, http.StatusOK, "")
	if r.str("status") != "ignored" {
		t.Fatalf("an event about no known e-mail: %s", r.Raw)
	}
	expect(t, call(t, "POST", "/v1/webhooks/mailgun", good, withoutKey), http.StatusForbidden, "replayed_signature")
	expect(t, call(t, "POST", "/v1/webhooks/mailgun", sign("not-the-key", time.Now(), token()), withoutKey), http.StatusUnauthorized, "invalid_signature")
	expect(t, call(t, "POST", "/v1/webhooks/mailgun", sign(mailgunWebhookKey, time.Now().Add(-10*time.Minute), token()), withoutKey), http.StatusUnauthorized, "stale_signature")
	expect(t, call(t, "POST", "/v1/webhooks/mailgun", `{"signature":{}}`, withoutKey), http.StatusBadRequest, "invalid_request")
}
