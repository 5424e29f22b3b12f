package e2e

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/api"
)

// Abuse: guessing link tokens (rate limits per address and per token prefix). The secrets
// audit is in secrets_test.go, hostile input in hostile_test.go.

// limitedServer is an API of its own with a low limit on failed token uses, so that the
// shared server's limits (set high in startStack) stay out of the other tests' way.
func limitedServer(t *testing.T, perMinute int, trustedProxies ...string) string {
	t.Helper()
	server := &api.Server{Store: env.store, Temporal: env.client, Logger: quietLogger(), TokenGuessesPerMinute: perMinute,
		TrustedProxies: trustedProxies, PageSecret: []byte("e2e hosted pages secret, 32 byte")}
	srv := httptest.NewServer(server.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

// send posts to base+path (or GETs without body), checks the answer against openapi.yaml
// unless it is a hosted page, and returns it.
func send(t testing.TB, base, method, path, body string, header ...string) response {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, reader)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{Status: res.StatusCode, Header: res.Header, Raw: raw}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			t.Fatalf("%s %s: response is not a JSON object: %s", method, path, raw)
		}
	}
	if res.StatusCode >= 500 {
		t.Errorf("%s %s answered %d: %.300s", method, path, res.StatusCode, raw)
	}
	if strings.HasPrefix(path, "/v1/") {
		if err := env.oapi.validate(req, res.StatusCode, res.Header, raw); err != nil {
			t.Errorf("%s %s: response does not match openapi.yaml: %v\n%s", method, path, err, raw)
		}
	}
	return out
}

// randomToken is a well-formed token nobody was given; prefix, if set, replaces its start.
func randomToken(prefix string) string {
	buf := make([]byte, 32)
	_, _ = rand.Read(buf)
	token := base64.RawURLEncoding.EncodeToString(buf)
	return prefix + token[len(prefix):]
}

func tokenBody(token string) string { return fmt.Sprintf(`{"token":%q}`, token) }

func TestTokenGuessingIsRateLimitedPerAddress(t *testing.T) {
	const limit = 5
	base := limitedServer(t, limit)

	// Someone opening their own link again and again never meets the limit: only
	// failures count.
	org := createOrganization(t, "Guessing Org", nil)
	email := uniqueEmail(t, "guessed")
	invite(t, map[string]any{"email": email, "name": "Gus", "organization_id": org})
	token := tokenIn(t, waitForMail(t, email, "invitation", 1)[0], "invite")
	for i := range 4 * limit {
		if r := send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(token)); r.Status != http.StatusOK {
			t.Fatalf("lookup %d of a real token: %d %s", i+1, r.Status, r.Raw)
		}
	}

	// 1,000 wrong tokens from one address: `limit` of them are looked up (and not found),
	// every other one is refused before any lookup, and none is ever a hit.
	start := time.Now()
	statuses := map[int]int{}
	first429 := -1
	for i := range 1000 {
		r := send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(randomToken("")))
		statuses[r.Status]++
		switch r.Status {
		case http.StatusTooManyRequests:
			if first429 < 0 {
				first429 = i
			}
			if r.code() != "rate_limited" || r.Header.Get("Retry-After") == "" {
				t.Fatalf("429 without rate_limited or Retry-After: %v %s", r.Header, r.Raw)
			}
		case http.StatusNotFound:
			if r.code() != "invalid_token" {
				t.Fatalf("wrong token: %s", r.Raw)
			}
		default:
			t.Fatalf("wrong token %d answered %d: %s", i, r.Status, r.Raw)
		}
	}
	elapsed := time.Since(start)
	// The bucket refills at `limit` a minute; the loop normally ends long before one comes.
	refilled := int(elapsed.Minutes() * limit)
	if first429 != limit || statuses[http.StatusNotFound] < limit || statuses[http.StatusNotFound] > limit+refilled {
		t.Fatalf("answers %v, first 429 at %d, in %s: want exactly %d not-found answers (+%d refilled), then 429s",
			statuses, first429, elapsed, limit, refilled)
	}

	// The limit is the address's, on every operation behind a token, JSON or page.
	wrong := randomToken("")
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/public/invitations/accept", tokenBody(wrong)},
		{"POST", "/v1/public/password", fmt.Sprintf(`{"token":%q,"password":"a long enough password"}`, wrong)},
		{"POST", "/v1/public/join-requests/confirm", tokenBody(wrong)},
		{"POST", "/v1/public/join-requests/decide", fmt.Sprintf(`{"token":%q,"decision":"reject"}`, wrong)},
		{"GET", "/invite/" + wrong, ""},
		{"GET", "/password/" + wrong, ""},
		{"GET", "/join/confirm/" + wrong, ""},
		{"GET", "/join-requests/" + wrong, ""},
	} {
		if r := send(t, base, c.method, c.path, c.body); r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s after the limit: %d (Retry-After %q)", c.method, c.path, r.Status, r.Header.Get("Retry-After"))
		}
	}
	// Another address (the shared server's limiter) is not affected.
	expect(t, call(t, "POST", "/v1/public/invitations/lookup", map[string]any{"token": token}, withoutKey), http.StatusOK, "")
}

func TestTokenPrefixSprayIsRateLimited(t *testing.T) {
	const limit = 5
	// The test's requests come from 127.0.0.1, trusted as a proxy, so X-Forwarded-For
	// names the client.
	base := limitedServer(t, limit, "127.0.0.1")
	const prefix = "SprayPfx"
	statuses := map[int]int{}
	for a := 1; a <= 6; a++ {
		for range 2 { // under the per-address limit
			r := send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(randomToken(prefix)),
				"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", a))
			statuses[r.Status]++
		}
	}
	if statuses[http.StatusNotFound] != limit || statuses[http.StatusTooManyRequests] != 12-limit {
		t.Fatalf("12 tries of one prefix from 6 addresses: %v, want %d not found, the rest 429", statuses, limit)
	}
	// A fresh address is refused the sprayed prefix, not another one.
	expect(t, send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(randomToken(prefix)), "X-Forwarded-For", "203.0.113.7"),
		http.StatusTooManyRequests, "rate_limited")
	expect(t, send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(randomToken("OtherPfx")), "X-Forwarded-For", "203.0.113.7"),
		http.StatusNotFound, "invalid_token")
	// IPv6 clients are limited by their /64: addresses in one /64 share a bucket.
	for i := range limit {
		send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(randomToken("")), "X-Forwarded-For", fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	expect(t, send(t, base, "POST", "/v1/public/invitations/lookup", tokenBody(randomToken("")), "X-Forwarded-For", "2001:db8:1:2:ffff::1"),
		http.StatusTooManyRequests, "rate_limited")
}

// Every endpoint that takes a JSON body refuses one over its limit with 413
// request_too_large, in the one error shape, without reading it all.
func TestOversizedBodiesAreRefused(t *testing.T) {
	org := createOrganization(t, "Big Bodies", nil)
	memberID, _ := createMember(t, org, "Bea")
	big := `{"name":"` + strings.Repeat("A", 70<<10) + `"}`
	for _, path := range []string{
		"/v1/public/invitations/lookup", "/v1/public/invitations/accept", "/v1/public/password", "/v1/public/members/search",
		"/v1/public/join-requests", "/v1/public/join-requests/confirm", "/v1/public/join-requests/decide",
		"/v1/organizations", "/v1/users", "/v1/invitations", "/v1/webhook-endpoints",
	} {
		expect(t, call(t, "POST", path, big), http.StatusRequestEntityTooLarge, "request_too_large")
	}
	expect(t, call(t, "PATCH", "/v1/users/"+memberID, big), http.StatusRequestEntityTooLarge, "request_too_large")
	// The bulk endpoints have larger limits of their own.
	huge := `{"invitations":[],"x":"` + strings.Repeat("A", 8<<20) + `"}`
	expect(t, call(t, "POST", "/v1/invitations/bulk", huge), http.StatusRequestEntityTooLarge, "request_too_large")
	expect(t, call(t, "POST", "/v1/users/invite", huge), http.StatusRequestEntityTooLarge, "request_too_large")
	csv := "email,name\n" + strings.Repeat("someone@example.com,Someone\n", (32<<20)/28+1)
	expect(t, call(t, "POST", "/v1/users/import?organization_id="+org, csv, withHeader("Content-Type", "text/csv")),
		http.StatusRequestEntityTooLarge, "request_too_large")
}
