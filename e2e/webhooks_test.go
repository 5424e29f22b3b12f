package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/webhooks"
	"github.com/usherhq/usher/workflows"
)

// receiver is an app's webhook endpoint that fails its first few requests, then recovers.
type receiver struct {
	mu       sync.Mutex
	failures int // requests still to answer 500
	requests []receivedWebhook
}

type receivedWebhook struct {
	header http.Header
	body   []byte
	status int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	status := http.StatusOK
	if r.failures > 0 {
		r.failures--
		status = http.StatusInternalServerError
	}
	r.requests = append(r.requests, receivedWebhook{header: req.Header.Clone(), body: body, status: status})
	w.WriteHeader(status)
	_, _ = w.Write([]byte(`{"ok":` + map[bool]string{true: "true", false: "false"}[status == 200] + `}`))
}

// deduplicated returns the bodies the receiver took, once per Usher-Webhook-Id, as a
// receiver that deduplicates would process them, and how many requests it got in all.
func (r *receiver) deduplicated() (map[string]receivedWebhook, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]receivedWebhook{}
	for _, got := range r.requests {
		if id := got.header.Get(webhooks.HeaderID); got.status == http.StatusOK && out[id].body == nil {
			out[id] = got
		}
	}
	return out, len(r.requests)
}

// A receiver that fails and then recovers gets each event of an invitation's journey
// exactly once after deduplication, signed, with no token or e-mail address in it; the
// deliveries listing shows the failed attempts, then the success.
func TestWebhooksReachARecoveringReceiver(t *testing.T) {
	const failFirst = 3
	rcv := &receiver{failures: failFirst}
	srv := httptest.NewServer(rcv)
	defer srv.Close()

	org := createOrganization(t, "Hooked Inc", nil)
	created := call(t, "POST", "/v1/webhook-endpoints", map[string]any{
		"url": srv.URL + "/usher", "events": []string{"*"}, "organization_id": org, "description": "e2e receiver",
	})
	expect(t, created, http.StatusCreated, "")
	endpointID, secret := created.str("id"), created.str("secret")
	if !strings.HasPrefix(secret, "whsec_") || created.str("status") != "active" {
		t.Fatalf("created endpoint: %s", created.Raw)
	}
	defer call(t, "DELETE", "/v1/webhook-endpoints/"+endpointID, nil)
	got := call(t, "GET", "/v1/webhook-endpoints/"+endpointID, nil)
	expect(t, got, http.StatusOK, "")
	if strings.Contains(string(got.Raw), secret) || got.get("secret") != nil {
		t.Fatalf("the secret is shown again: %s", got.Raw)
	}
	var sealed []byte
	if err := env.db.DB.Get(&sealed, "SELECT secret_ciphertext FROM webhook_endpoints WHERE id = ?", endpointID); err != nil || strings.Contains(string(sealed), secret) {
		t.Fatalf("the secret is stored in the clear (%v)", err)
	}

	// The journey: create → sent → accept (new account).
	email := uniqueEmail(t, "hooked")
	inv := invite(t, map[string]any{"email": email, "name": "Hugo Hooked", "organization_id": org, "role": "member"})
	invitationID := inv.str("id")
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")
	waitForDelivery(t, invitationID, "sent")
	accepted := call(t, "POST", "/v1/public/invitations/accept", map[string]any{"token": token, "password": "correct horse battery"}, withoutKey)
	expect(t, accepted, http.StatusOK, "")
	userID := accepted.str("user_id")

	want := map[string]string{ // type → subject
		"invitation.created": invitationID, "invitation.sent": invitationID,
		"invitation.accepted": invitationID, "user.created": userID,
	}
	var byID map[string]receivedWebhook
	var total int
	eventually(t, 60*time.Second, "the four events at the receiver", func() bool {
		byID, total = rcv.deduplicated()
		return len(byID) >= len(want)
	})
	time.Sleep(500 * time.Millisecond) // anything more that was coming would have come by now
	byID, total = rcv.deduplicated()
	if total < len(want)+failFirst {
		t.Fatalf("%d requests, want at least %d (%d failed first)", total, len(want)+failFirst, failFirst)
	}

	seen := map[string]int{}
	for id, got := range byID {
		if err := webhooks.Verify(secret, got.header, got.body, time.Now(), 0); err != nil {
			t.Fatalf("webhook %s: %v", id, err)
		}
		for _, leak := range []string{token, email, "Hugo", "$2a$", "password_hash"} {
			if strings.Contains(string(got.body), leak) {
				t.Fatalf("webhook %s carries %q: %s", id, leak, got.body)
			}
		}
		var p struct {
			ID             string         `json:"id"`
			Type           string         `json:"type"`
			CreatedAt      time.Time      `json:"created_at"`
			OrganizationID string         `json:"organization_id"`
			Data           map[string]any `json:"data"`
		}
		if err := json.Unmarshal(got.body, &p); err != nil {
			t.Fatal(err)
		}
		if p.ID != id || p.OrganizationID != org || p.CreatedAt.IsZero() || got.header.Get("Content-Type") != "application/json" {
			t.Fatalf("webhook %s: %s", id, got.body)
		}
		if p.Type == "invitation.delivered" { // if the Mailgun test server reports deliveries
			continue
		}
		subject, wanted := want[p.Type]
		if !wanted {
			t.Fatalf("unexpected event %s: %s", p.Type, got.body)
		}
		seen[p.Type]++
		switch p.Type {
		case "user.created":
			if p.Data["user_id"] != subject || p.Data["source"] != "invitation" || p.Data["invitation_id"] != invitationID {
				t.Fatalf("user.created: %s", got.body)
			}
		case "invitation.accepted":
			if p.Data["invitation_id"] != subject || p.Data["user_id"] != userID || p.Data["role"] != "member" ||
				p.Data["existing_user"] != false || p.Data["sent_at"] == nil {
				t.Fatalf("invitation.accepted: %s", got.body)
			}
		default:
			if p.Data["invitation_id"] != subject {
				t.Fatalf("%s: %s", p.Type, got.body)
			}
		}
	}
	for typ := range want {
		if seen[typ] != 1 {
			t.Fatalf("%s received %d times after deduplication (all: %v)", typ, seen[typ], seen)
		}
	}

	// The listing shows every delivery delivered, and the failed attempts before.
	var deliveries []any
	eventually(t, 30*time.Second, "every delivery delivered", func() bool {
		list := call(t, "GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries?limit=2", nil)
		expect(t, list, http.StatusOK, "")
		deliveries, _ = list.get("data").([]any)
		if len(deliveries) != 2 || list.str("next_cursor") == "" {
			return false
		}
		next := call(t, "GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries?limit=10&cursor="+list.str("next_cursor"), nil)
		more, _ := next.get("data").([]any)
		deliveries = append(deliveries, more...)
		for _, d := range deliveries {
			if d.(map[string]any)["status"] != "delivered" {
				return false
			}
		}
		return len(deliveries) == len(byID)
	})
	var failedAttempts, attempts int
	for _, raw := range deliveries {
		d := raw.(map[string]any)
		list, _ := d["attempts"].([]any)
		if len(list) == 0 || int(d["attempt_count"].(float64)) != len(list) {
			t.Fatalf("delivery %s: %v", d["id"], d)
		}
		last := list[len(list)-1].(map[string]any)
		if last["status_code"] != float64(200) {
			t.Fatalf("last attempt of %s: %v", d["id"], last)
		}
		for _, a := range list[:len(list)-1] {
			if a.(map[string]any)["status_code"] != float64(500) || a.(map[string]any)["error"] == nil {
				t.Fatalf("failed attempt of %s: %v", d["id"], a)
			}
			failedAttempts++
		}
		attempts += len(list)
		one := call(t, "GET", "/v1/webhook-endpoints/"+endpointID+"/deliveries/"+d["id"].(string), nil)
		expect(t, one, http.StatusOK, "")
	}
	if failedAttempts != failFirst || attempts != total {
		t.Fatalf("%d failed attempts listed (want %d), %d attempts listed for %d requests", failedAttempts, failFirst, attempts, total)
	}
	var delivery string
	if err := env.db.DB.Get(&delivery, "SELECT id FROM webhook_deliveries WHERE endpoint_id = ? AND event_type = 'invitation.created'", endpointID); err != nil {
		t.Fatal(err)
	}
	checkWorkflowHistory(t, workflows.WebhookDeliveryWorkflowID(delivery), "webhook-delivered", secret, token, email)

	// Disabling stops the endpoint; it stays listed.
	disabled := call(t, "DELETE", "/v1/webhook-endpoints/"+endpointID, nil)
	expect(t, disabled, http.StatusOK, "")
	if disabled.str("status") != "disabled" || disabled.get("disabled_at") == nil {
		t.Fatalf("disabled: %s", disabled.Raw)
	}
}

func TestWebhookEndpointValidation(t *testing.T) {
	for _, body := range []map[string]any{
		{"url": "ftp://example.com/hook", "events": []string{"*"}},
		{"url": "/relative", "events": []string{"*"}},
		{"url": "https://user:pw@example.com/hook", "events": []string{"*"}},
		{"url": "https://example.com/hook", "events": []string{}},
		{"url": "https://example.com/hook", "events": []string{"invitation.nonsense"}},
		{"url": "https://example.com/hook", "events": []string{"*", "user.created"}},
		{"url": "https://example.com/hook", "events": []string{"*"}, "organization_id": "nope"},
	} {
		r := call(t, "POST", "/v1/webhook-endpoints", body)
		expect(t, r, http.StatusBadRequest, "invalid_request")
	}
	r := call(t, "POST", "/v1/webhook-endpoints", map[string]any{"url": "https://example.com/hook", "events": []string{"*"},
		"organization_id": "0190d1a2-0000-7000-8000-000000000000"})
	expect(t, r, http.StatusNotFound, "organization_not_found")
	expect(t, call(t, "GET", "/v1/webhook-endpoints/0190d1a2-0000-7000-8000-000000000000", nil), http.StatusNotFound, "webhook_endpoint_not_found")
	expect(t, call(t, "GET", "/v1/webhook-endpoints/x/deliveries", nil), http.StatusNotFound, "webhook_endpoint_not_found")

	org := createOrganization(t, "Unhooked", nil)
	ok := call(t, "POST", "/v1/webhook-endpoints", map[string]any{"url": "https://example.com/hook", "events": []string{"user.created", "user.created"}, "organization_id": org})
	expect(t, ok, http.StatusCreated, "")
	defer call(t, "DELETE", "/v1/webhook-endpoints/"+ok.str("id"), nil)
	if evs, _ := ok.get("events").([]any); len(evs) != 1 {
		t.Fatalf("events not deduplicated: %s", ok.Raw)
	}
	list := call(t, "GET", "/v1/webhook-endpoints?limit=1", nil)
	expect(t, list, http.StatusOK, "")
	expect(t, call(t, "GET", "/v1/webhook-endpoints/"+ok.str("id")+"/deliveries/0190d1a2-0000-7000-8000-000000000000", nil),
		http.StatusNotFound, "webhook_delivery_not_found")
}
