// Package sms is what Usher sends by text message: the message model, the
// Sender port with its error classification, and the Twilio adapter. It is
// the SMS counterpart of internal/mail.
package sms

import (
	"context"
	"fmt"
	"time"
)

// Message is one text message to one recipient.
type Message struct {
	// DeliveryID is unique per logical send. Unlike e-mail, it is not
	// attached to the message at the provider (Twilio has no field for
	// it); it is for the caller's records and logs.
	DeliveryID string
	// To is the recipient's number in E.164 form ("+442079460958"); see
	// internal/phone.Normalize.
	To string
	// Body is the text. It carries secret links: it is never logged and
	// never part of an error. For FindSent it is the start of the text: the
	// part before the secret link, which a retry cannot rebuild.
	Body string
	// NotBefore, for FindSent, is when the delivery's first attempt began:
	// messages created earlier (an earlier delivery's, with the same opening
	// text) are not it.
	NotBefore time.Time
}

// Sender hands messages to an SMS provider.
type Sender interface {
	// Send hands m to the provider and returns the provider's message ID.
	// Errors are *PermanentError or *TransientError.
	Send(ctx context.Context, m Message) (providerID string, err error)
	// FindSent reports whether the provider already accepted m (used after
	// a crash between calling the provider and recording its answer), and
	// if so under which ID.
	//
	// Unlike mail.Sender.FindSent, it takes a message rather than a delivery
	// ID: SMS providers such as Twilio keep no metadata with a message (no
	// user variables, no idempotency key), and the delivery ID cannot go
	// into the text the recipient reads. A sent message is recognised by its
	// recipient, the start of its body (everything before the secret link,
	// which each attempt makes anew) and being created since m.NotBefore.
	// Errors are *PermanentError or *TransientError.
	FindSent(ctx context.Context, m Message) (providerID string, found bool, err error)
}

// PermanentError means the provider refused for good (HTTP 400, 401, 403,
// 404, an invalid or unreachable number, an unsubscribed recipient). Do not
// retry.
type PermanentError struct {
	// StatusCode is the provider's HTTP status, 0 when refused before calling it.
	StatusCode int
	// Reason is short and human-readable; it never contains message content.
	Reason string
}

func (e *PermanentError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("permanent SMS failure (status %d): %s", e.StatusCode, e.Reason)
	}
	return "permanent SMS failure: " + e.Reason
}

// TransientError means retry later (429, 5xx, a full sending queue, network
// errors, timeouts).
type TransientError struct {
	// StatusCode is the provider's HTTP status, 0 for network errors.
	StatusCode int
	// Reason is short and human-readable; it never contains message content.
	Reason string
	// RetryAfter > 0 when the provider said when to retry (Retry-After on a
	// 429 or 503).
	RetryAfter time.Duration

	cause error // network/context error, for errors.Is; never an HTTP body
}

func (e *TransientError) Error() string {
	msg := "transient SMS failure"
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
