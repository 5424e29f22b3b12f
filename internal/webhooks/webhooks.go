// Package webhooks signs and sends Usher's outgoing webhooks, and verifies them (for
// receivers written in Go, and for tests). It knows nothing of the store or Temporal.
//
// A webhook is a POST of a JSON Payload with three headers:
//
//	Usher-Webhook-Id:        the event ID; the same on every retry, so receivers deduplicate by it
//	Usher-Webhook-Timestamp: Unix seconds when this attempt was signed
//	Usher-Signature:         v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// The HMAC key is the endpoint's secret exactly as shown when the endpoint was created
// (the whole string, "whsec_" prefix included).
package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names.
const (
	HeaderID        = "Usher-Webhook-Id"
	HeaderTimestamp = "Usher-Webhook-Timestamp"
	HeaderSignature = "Usher-Signature"
)

// DefaultTolerance is how far a signature's timestamp may be from the receiver's clock
// before Verify refuses it as a possible replay.
const DefaultTolerance = 5 * time.Minute

// Payload is the body of a webhook.
type Payload struct {
	// ID is the event's ID, also in the Usher-Webhook-Id header.
	ID   string `json:"id"`
	Type string `json:"type"`
	// CreatedAt is when the change happened.
	CreatedAt      time.Time       `json:"created_at"`
	OrganizationID *string         `json:"organization_id"`
	Data           json.RawMessage `json:"data"`
}

// NewSecret returns a new signing secret: "whsec_" and 32 random bytes in base64url.
func NewSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

// Sign returns the Usher-Signature value of body sent at timestamp.
func Sign(secret string, timestamp time.Time, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, strconv.FormatInt(timestamp.Unix(), 10), body))
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature    = errors.New("webhooks: missing Usher-Webhook-Timestamp or Usher-Signature header")
	ErrBadSignature   = errors.New("webhooks: no signature matches")
	ErrStaleTimestamp = errors.New("webhooks: timestamp outside the tolerance")
)

// Verify checks that body came from Usher: the signature matches one made with secret
// over the timestamp header and the body, and the timestamp is within tolerance of now
// (0 means DefaultTolerance). Several space-separated "v1=" values are accepted (any one
// may match), so secrets can be rotated. Comparisons take constant time.
func Verify(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sigs := header.Get(HeaderTimestamp), header.Get(HeaderSignature)
	if ts == "" || sigs == "" {
		return ErrNoSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrNoSignature, ts)
	}
	if math.Abs(now.Sub(time.Unix(unix, 0)).Seconds()) > tolerance.Seconds() {
		return ErrStaleTimestamp
	}
	want := mac(secret, ts, body)
	for _, sig := range strings.Fields(sigs) {
		hexSig, ok := strings.CutPrefix(sig, "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(hexSig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
