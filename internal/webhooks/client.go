package webhooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// RequestTimeout bounds one attempt, connection to last byte of the answer.
const RequestTimeout = 10 * time.Second

// maxResponseKept is how much of a receiver's answer an attempt keeps.
const maxResponseKept = 1024

// Result is the outcome of one attempt.
type Result struct {
	StatusCode int // 0 when no answer came
	Duration   time.Duration
	// Response is the start of the answer's body (at most 1 KiB of valid UTF-8).
	Response string
	// Err is why no answer came (timeout, refused connection…), or nil.
	Err error
}

// Delivered reports whether the receiver took the webhook (any 2xx).
func (r Result) Delivered() bool { return r.Err == nil && r.StatusCode >= 200 && r.StatusCode < 300 }

// Client sends webhooks.
type Client struct {
	HTTP *http.Client
	// UserAgent identifies the sender.
	UserAgent string
}

// NewClient returns a Client with a 10 s timeout that follows no redirects: a 3xx is an
// answer like any other non-2xx, so a webhook never ends up at a host nobody registered.
func NewClient() *Client {
	return &Client{
		HTTP: &http.Client{
			Timeout: RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
		UserAgent: "Usher-Webhooks/1",
	}
}

// Send signs body with secret and POSTs it to url once.
func (c *Client) Send(ctx context.Context, url, secret, eventID string, body []byte, now time.Time) Result {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.UserAgent)
	req.Header.Set(HeaderID, eventID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(secret, now, body))
	res, err := c.HTTP.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			err = ue.Unwrap() // drop the "Post <url>:" prefix: the URL is on the endpoint
		}
		return Result{Duration: time.Since(start), Err: err}
	}
	defer res.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(res.Body, maxResponseKept))
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10)) // let the connection be reused
	for len(head) > 0 && !utf8.Valid(head) {
		head = head[:len(head)-1]
	}
	return Result{StatusCode: res.StatusCode, Duration: time.Since(start), Response: string(head)}
}
