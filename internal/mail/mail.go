// Package mail is what Usher sends by e-mail: the message model, the Sender
// port with its error classification, the Mailgun adapter, and the
// embedded, localisable templates.
package mail

import (
	"context"
	"fmt"
	"time"
)

// Message is one e-mail to one recipient.
type Message struct {
	// DeliveryID is unique per logical send; it is attached as user variable
	// "usher_delivery_id" so a send whose result was lost can be found again.
	DeliveryID string
	To         string
	Subject    string
	Text       string
	HTML       string
	// Tag is the category: the Kind of the e-mail ("invitation", "join_request", …).
	Tag string
}

// DeliveryIDVariable is the provider-side user variable holding Message.DeliveryID.
const DeliveryIDVariable = "usher_delivery_id"

// Sender hands messages to an e-mail provider.
type Sender interface {
	// Send hands m to the provider and returns the provider's message ID.
	// Errors are *PermanentError or *TransientError.
	Send(ctx context.Context, m Message) (providerID string, err error)
	// FindSent reports whether the provider already accepted a message with
	// this DeliveryID (used after a crash between calling the provider and
	// recording its answer).
	FindSent(ctx context.Context, deliveryID string) (providerID string, found bool, err error)
}

// PermanentError means the provider refused for good (Mailgun 400, 401, 403,
// 404, 413, invalid recipient). Do not retry.
type PermanentError struct {
	// StatusCode is the provider's HTTP status, 0 when refused before calling it.
	StatusCode int
	// Reason is short and human-readable; it never contains message content.
	Reason string
}

func (e *PermanentError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("permanent e-mail failure (status %d): %s", e.StatusCode, e.Reason)
	}
	return "permanent e-mail failure: " + e.Reason
}

// TransientError means retry later (429, 5xx, network errors, timeouts).
type TransientError struct {
	// StatusCode is the provider's HTTP status, 0 for network errors.
	StatusCode int
	// Reason is short and human-readable; it never contains message content.
	Reason string
	// RetryAfter > 0 when the provider said when to retry (429 with
	// Retry-After or X-RateLimit-Reset).
	RetryAfter time.Duration

	cause error // network/context error, for errors.Is; never an HTTP body
}

func (e *TransientError) Error() string {
	msg := "transient e-mail failure"
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(" (status %d)", e.StatusCode)
	}
	msg += ": " + e.Reason
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns the underlying network or context error, if any, so that
// errors.Is(err, context.DeadlineExceeded) works.
func (e *TransientError) Unwrap() error { return e.cause }
