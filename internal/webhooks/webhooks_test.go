package webhooks_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/webhooks"
)

func TestSignatureVerifies(t *testing.T) {
	secret := webhooks.NewSecret()
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"id":"e1","type":"invitation.created"}`)
	h := http.Header{}
	h.Set(webhooks.HeaderTimestamp, "1700000000")
	h.Set(webhooks.HeaderSignature, webhooks.Sign(secret, now, body))
	if err := webhooks.Verify(secret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Verify(secret, h, append(body, ' '), now, 0); err != webhooks.ErrBadSignature {
		t.Fatalf("tampered body: %v", err)
	}
	if err := webhooks.Verify(webhooks.NewSecret(), h, body, now, 0); err != webhooks.ErrBadSignature {
		t.Fatalf("other secret: %v", err)
	}
	if err := webhooks.Verify(secret, h, body, now.Add(10*time.Minute), 0); err != webhooks.ErrStaleTimestamp {
		t.Fatalf("stale: %v", err)
	}
	h.Set(webhooks.HeaderTimestamp, "1700000001")
	if err := webhooks.Verify(secret, h, body, now, 0); err != webhooks.ErrBadSignature {
		t.Fatalf("timestamp not covered by the signature: %v", err)
	}
	// Rotation: any one of several signatures may match.
	h.Set(webhooks.HeaderTimestamp, "1700000000")
	h.Set(webhooks.HeaderSignature, "v1=00ff "+webhooks.Sign(secret, now, body))
	if err := webhooks.Verify(secret, h, body, now, 0); err != nil {
		t.Fatal(err)
	}
	if err := webhooks.Verify(secret, http.Header{}, body, now, 0); err != webhooks.ErrNoSignature {
		t.Fatalf("no headers: %v", err)
	}
}

// The signature is the documented HMAC, so that receivers in any language can check it.
func TestSignatureIsTheDocumentedHMAC(t *testing.T) {
	got := webhooks.Sign("whsec_test", time.Unix(1700000000, 0), []byte(`{"a":1}`))
	// printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
	const want = "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
	if got != want {
		t.Fatalf("Sign = %s", got)
	}
}

func TestSealerRoundTrip(t *testing.T) {
	s, err := webhooks.NewSealer([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	secret := webhooks.NewSecret()
	sealed := s.Seal(secret)
	if strings.Contains(string(sealed), secret) {
		t.Fatal("sealed secret contains the secret")
	}
	if got, err := s.Open(sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	other, _ := webhooks.NewSealer([]byte("another key, also thirty-two bytes long"))
	if _, err := other.Open(sealed); err == nil {
		t.Fatal("opened with another key")
	}
	if _, err := webhooks.NewSealer(nil); err == nil {
		t.Fatal("a sealer without a key")
	}
}

func TestClientSendsSignedAndFollowsNoRedirect(t *testing.T) {
	secret := webhooks.NewSecret()
	var got http.Header
	var gotBody []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "https://elsewhere.example/", http.StatusFound)
			return
		}
		got, gotBody = r.Header.Clone(), must(io.ReadAll(r.Body))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := webhooks.NewClient()
	body, _ := json.Marshal(webhooks.Payload{ID: "e1", Type: "invitation.created", CreatedAt: time.Now().UTC(), Data: json.RawMessage(`{}`)})
	now := time.Now()
	res := c.Send(context.Background(), srv.URL+"/hook", secret, "e1", body, now)
	if !res.Delivered() || res.StatusCode != http.StatusNoContent {
		t.Fatalf("result %+v", res)
	}
	if got.Get(webhooks.HeaderID) != "e1" || got.Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", got)
	}
	if err := webhooks.Verify(secret, got, gotBody, time.Now(), 0); err != nil {
		t.Fatal(err)
	}
	res = c.Send(context.Background(), srv.URL+"/redirect", secret, "e1", body, now)
	if res.Delivered() || res.StatusCode != http.StatusFound {
		t.Fatalf("redirect result %+v", res)
	}
	res = c.Send(context.Background(), "http://127.0.0.1:1/", secret, "e1", body, now)
	if res.Err == nil || res.Delivered() {
		t.Fatalf("refused connection: %+v", res)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
