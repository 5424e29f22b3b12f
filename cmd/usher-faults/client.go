//go:build !nodev

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/usherhq/usher/internal/mailgunsrv"
)

// answer is one API response.
type answer struct {
	status int
	body   map[string]any
	raw    []byte
}

func (a answer) str(path ...string) string {
	var cur any = a.body
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return ""
		}
		cur = m[p]
	}
	s, _ := cur.(string)
	return s
}

func (a answer) code() string { return a.str("error", "code") }

// call sends one request to the API (with the API key unless path is public); a network
// error comes back as err, any HTTP answer as an answer.
func (e *env) call(ctx context.Context, method, path, idemKey string, body any) (answer, error) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.apiURL+path, reader)
	if err != nil {
		return answer{}, err
	}
	if !strings.HasPrefix(path, "/v1/public/") {
		req.Header.Set("Authorization", "Bearer "+e.apiKey)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	res, err := e.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return answer{}, err
	}
	out := answer{status: res.StatusCode, raw: raw}
	_ = json.Unmarshal(raw, &out.body)
	return out, nil
}

// retryable reports whether a client should try again: the API was unreachable, died
// mid-answer, or said it is temporarily unable to answer.
func retryable(a answer, err error) bool {
	if err != nil {
		return true
	}
	return a.status >= 500
}

// inbox indexes the Mailgun test server's messages by recipient, so that hundreds of
// clients can wait for their e-mail without each scanning every message.
type inbox struct {
	srv  *mailgunsrv.Server
	mu   sync.Mutex
	seen int
	byTo map[string][]mailgunsrv.Message
	quit chan struct{}
	done chan struct{}
}

func newInbox(srv *mailgunsrv.Server) *inbox {
	b := &inbox{srv: srv, byTo: map[string][]mailgunsrv.Message{}, quit: make(chan struct{}), done: make(chan struct{})}
	go b.run()
	return b
}

func (b *inbox) run() {
	defer close(b.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
			b.refresh()
		}
	}
}

func (b *inbox) refresh() {
	all := b.srv.Messages()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range all[min(b.seen, len(all)):] {
		for _, to := range m.To {
			to = strings.ToLower(to)
			b.byTo[to] = append(b.byTo[to], m)
		}
	}
	b.seen = len(all)
}

func (b *inbox) close() {
	close(b.quit)
	<-b.done
}

// to returns the messages to addr with tag.
func (b *inbox) to(addr, tag string) []mailgunsrv.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []mailgunsrv.Message
	for _, m := range b.byTo[strings.ToLower(addr)] {
		for _, t := range m.Tags {
			if t == tag {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

var invitePattern = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/invite/([A-Za-z0-9_-]{43})`)

// waitForInvitationToken waits for the first invitation e-mail to addr and returns the
// token of its link.
func (b *inbox) waitForInvitationToken(ctx context.Context, addr string) (string, error) {
	for {
		for _, m := range b.to(addr, "invitation") {
			if match := invitePattern.FindStringSubmatch(m.Text); match != nil {
				return match[1], nil
			}
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(150 * time.Millisecond):
		}
	}
}
