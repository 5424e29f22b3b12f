// Package apiclient is a small typed client for Usher's HTTP API, used by the admin
// commands of the usher binary. Each endpoint is one method built on Client.do, which
// owns the shared parts: the base URL, the API key, JSON encoding and decoding, and
// turning error responses into *Error.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// DefaultUserAgent is sent with every request unless Client.UserAgent says otherwise.
const DefaultUserAgent = "usher-cli"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// Client calls one Usher deployment with one API key. It is safe for concurrent use.
type Client struct {
	baseURL string
	apiKey  string
	http    *http.Client

	// UserAgent is sent as the User-Agent header; DefaultUserAgent when empty.
	UserAgent string
}

// New returns a client for the API at baseURL (such as "http://localhost:8080"; a path
// prefix is kept) that authenticates with apiKey. A nil httpClient means
// http.DefaultClient.
func New(baseURL, apiKey string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{baseURL: strings.TrimRight(baseURL, "/"), apiKey: apiKey, http: httpClient}
}

// Error is an error answered by the API: {"error": {"code", "message", "details"}}. A
// response that does not have that shape (a proxy's error page, say) gives an Error with
// the status, an empty Code and what could be read of the body as Message.
type Error struct {
	Status  int
	Code    string
	Message string
	Details map[string]any
	// RequestID is the response's X-Request-ID, which finds the request in the server's logs.
	RequestID string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "usher API: %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// Temporary reports whether the same request may well succeed later: the server or
// something in front of it was unavailable, or asked to slow down.
func (e *Error) Temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// rawBody is a request body sent as it is (streamed, not buffered) with its own
// Content-Type; any other non-nil body given to do is sent as JSON.
type rawBody struct {
	contentType string
	r           io.Reader
}

// do sends method path (path starts with "/" and may carry a query) with body and, when
// the answer is 2xx and out is not nil, decodes its JSON into out. Answers that are not
// 2xx are returned as *Error; failures to reach the server as they come from the
// http.Client, wrapped.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var reader io.Reader
	contentType := ""
	switch b := body.(type) {
	case nil:
	case rawBody:
		// Hidden behind a plain io.Reader so that the transport does not close the
		// caller's file (the caller owns it).
		reader, contentType = struct{ io.Reader }{b.r}, b.contentType
	default:
		buf, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding the request to %s %s: %w", method, path, err)
		}
		reader, contentType = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, reader)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.apiKey)
	ua := c.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	req.Header.Set("User-Agent", ua)

	resp, err := c.http.Do(req)
	if err != nil {
		return err // *url.Error names the method and URL already
	}
	defer resp.Body.Close()

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody)) // lets the connection be reused
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

func decodeError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &Error{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-ID")}
	var shape struct {
		Error *struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(raw, &shape) == nil && shape.Error != nil && shape.Error.Code != "" {
		e.Code, e.Message, e.Details = shape.Error.Code, shape.Error.Message, shape.Error.Details
		return e
	}
	e.Message = strings.TrimSpace(string(raw))
	if len(e.Message) > 200 {
		cut := 200
		for cut > 0 && !utf8.RuneStart(e.Message[cut]) {
			cut--
		}
		e.Message = e.Message[:cut] + "…"
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return e
}

// AsError returns err as an *Error when it is (or wraps) one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
