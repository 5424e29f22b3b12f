package e2e

import (
	"net/http"
	"strings"
	"testing"
)

func TestBadInputGetsClearErrors(t *testing.T) {
	org := createOrganization(t, "Input Org", nil)
	valid := `{"email":"someone@example.com","organization_id":"` + org + `"}`
	missingOrg := "0193aaaa-aaaa-7aaa-8aaa-aaaaaaaaaaaa"
	cases := []struct {
		name, method, path string
		body               any
		opts               []requestOption
		status             int
		code               string
	}{
		{"malformed JSON", "POST", "/v1/invitations", `{"email":`, nil, 400, "invalid_request"},
		{"not an object", "POST", "/v1/invitations", `[1,2]`, nil, 400, "invalid_request"},
		{"two objects", "POST", "/v1/invitations", valid + valid, nil, 400, "invalid_request"},
		{"empty body", "POST", "/v1/invitations", "", nil, 400, "invalid_request"},
		{"wrong type", "POST", "/v1/invitations", `{"email":42,"organization_id":"` + org + `"}`, nil, 400, "invalid_request"},
		{"wrong type send", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","send":"yes"}`, nil, 400, "invalid_request"},
		{"metadata not object", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","metadata":[1]}`, nil, 400, "invalid_request"},
		{"missing email", "POST", "/v1/invitations", `{"organization_id":"` + org + `"}`, nil, 400, "invalid_request"},
		{"bad email", "POST", "/v1/invitations", `{"email":"not-an-address","organization_id":"` + org + `"}`, nil, 400, "invalid_email"},
		{"email with name", "POST", "/v1/invitations", `{"email":"Bob <bob@example.com>","organization_id":"` + org + `"}`, nil, 400, "invalid_email"},
		{"bad expiry", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","expires_in":"soon"}`, nil, 400, "invalid_expiry"},
		{"expiry too long", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","expires_in":"721h"}`, nil, 400, "invalid_expiry"},
		{"expiry too short", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","expires_in":"500ms"}`, nil, 400, "invalid_expiry"},
		{"bad role", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","role":"emperor"}`, nil, 400, "invalid_request"},
		{"bad redirect", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","redirect_url":"javascript:alert(1)"}`, nil, 400, "invalid_request"},
		{"unknown organization", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + missingOrg + `"}`, nil, 404, "organization_not_found"},
		{"garbage organization", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"../../etc"}`, nil, 404, "organization_not_found"},
		{"unknown inviter", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","inviter_id":"` + missingOrg + `"}`, nil, 404, "inviter_not_found"},
		{"empty inviter", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","inviter_id":""}`, nil, 400, "invalid_request"},
		{"sub-second expiry", "POST", "/v1/invitations", `{"email":"a@example.com","organization_id":"` + org + `","expires_in":"0.5s"}`, nil, 400, "invalid_expiry"},
		{"oversize body", "POST", "/v1/invitations", `{"email":"a@example.com","name":"` + strings.Repeat("x", 100<<10) + `"}`, nil, 413, "request_too_large"},
		{"wrong content type", "POST", "/v1/invitations", valid, []requestOption{withHeader("Content-Type", "text/plain")}, 415, "unsupported_media_type"},
		{"no API key", "POST", "/v1/invitations", valid, []requestOption{withoutKey}, 401, "unauthorized"},
		{"wrong API key", "GET", "/v1/invitations", nil, []requestOption{withHeader("Authorization", "Bearer usk_nope")}, 401, "unauthorized"},
		{"unknown invitation", "GET", "/v1/invitations/" + missingOrg, nil, nil, 404, "invitation_not_found"},
		{"garbage invitation id", "GET", "/v1/invitations/%27%20OR%201=1", nil, nil, 404, "invitation_not_found"},
		{"revoke unknown", "POST", "/v1/invitations/" + missingOrg + "/revoke", nil, nil, 404, "invitation_not_found"},
		{"unknown user", "GET", "/v1/users/" + missingOrg, nil, nil, 404, "user_not_found"},
		{"unknown organization get", "GET", "/v1/organizations/" + missingOrg, nil, nil, 404, "organization_not_found"},
		{"organization without name", "POST", "/v1/organizations", `{"name":"  "}`, nil, 400, "invalid_request"},
		{"bad status filter", "GET", "/v1/invitations?status=lost", nil, nil, 400, "invalid_request"},
		{"bad limit", "GET", "/v1/invitations?limit=100000", nil, nil, 400, "invalid_request"},
		{"bad cursor", "GET", "/v1/invitations?cursor=!!", nil, nil, 400, "invalid_request"},
		{"renew with bad expiry", "POST", "/v1/invitations/" + missingOrg + "/renew", `{"expires_in":"-1h"}`, nil, 400, "invalid_expiry"},
		{"lookup bad token", "POST", "/v1/public/invitations/lookup", `{"token":"short"}`, []requestOption{withoutKey}, 404, "invalid_token"},
		{"lookup unknown token", "POST", "/v1/public/invitations/lookup", `{"token":"` + strings.Repeat("A", 43) + `"}`, []requestOption{withoutKey}, 404, "invalid_token"},
		{"accept wrong type", "POST", "/v1/public/invitations/accept", `{"token":["x"]}`, []requestOption{withoutKey}, 400, "invalid_request"},
		{"accept unknown token", "POST", "/v1/public/invitations/accept", `{"token":"` + strings.Repeat("B", 43) + `"}`, []requestOption{withoutKey}, 404, "invalid_token"},
		{"password unknown token", "POST", "/v1/public/password", `{"token":"` + strings.Repeat("C", 43) + `","password":"long enough password"}`, []requestOption{withoutKey}, 404, "invalid_token"},
		{"unknown route", "GET", "/v1/nothing-here", nil, nil, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/invitations", nil, nil, 405, "method_not_allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, tc.path, tc.body, tc.opts...)
			expect(t, r, tc.status, tc.code)
			if r.str("error", "message") == "" {
				t.Fatalf("error without a message: %s", r.Raw)
			}
		})
	}
}

func TestListingIsNewestFirstWithKeysetPagination(t *testing.T) {
	org := createOrganization(t, "Listing Org", nil)
	var ids []string
	for range 5 {
		ids = append(ids, invite(t, map[string]any{"email": uniqueEmail(t, "list"), "organization_id": org, "send": false}).str("id"))
	}
	var seen []string
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/v1/invitations?organization_id=" + org + "&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := call(t, "GET", path, nil)
		expect(t, r, http.StatusOK, "")
		for _, item := range r.get("data").([]any) {
			seen = append(seen, item.(map[string]any)["id"].(string))
		}
		next, _ := r.get("next_cursor").(string)
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 5 {
		t.Fatalf("paged through %d of 5 invitations: %v", len(seen), seen)
	}
	for i := range seen {
		if seen[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, want newest first %v", seen, ids)
		}
	}
	drafts := call(t, "GET", "/v1/invitations?status=draft&organization_id="+org, nil)
	if n := len(drafts.get("data").([]any)); n != 5 {
		t.Fatalf("status filter found %d drafts", n)
	}
	none := call(t, "GET", "/v1/invitations?status=accepted&organization_id="+org, nil)
	if n := len(none.get("data").([]any)); n != 0 || none.get("next_cursor") != nil {
		t.Fatalf("accepted filter: %s", none.Raw)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	expect(t, call(t, "GET", "/healthz", nil, withoutKey), http.StatusOK, "")
	ready := call(t, "GET", "/readyz", nil, withoutKey)
	expect(t, ready, http.StatusOK, "")
	metrics := call(t, "GET", "/metrics", nil, withoutKey)
	if metrics.Status != http.StatusOK || !strings.Contains(string(metrics.Raw), "usher_http_requests_total") {
		t.Fatalf("metrics: %d", metrics.Status)
	}
	if strings.Contains(string(metrics.Raw), "@example.com") {
		t.Fatal("metrics carry personal data")
	}
	doc := call(t, "GET", "/openapi.yaml", nil, withoutKey)
	if doc.Status != http.StatusOK || !strings.Contains(string(doc.Raw), "openapi: 3") {
		t.Fatalf("openapi.yaml: %d", doc.Status)
	}
}
