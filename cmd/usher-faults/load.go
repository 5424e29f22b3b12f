//go:build !nodev

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/domain"
)

// kind is what a journey does, and so how it must end.
type kind int

const (
	kindAccept  kind = iota // create, read the link from the e-mail, accept: accepted
	kindPending             // create and leave it: pending, e-mail sent, workflow running
	kindRevoke              // create, wait for the e-mail, revoke: revoked
	kindRefused             // create for an address Mailgun refuses with 400: failed
	kindContest             // create, then 20 clients accept the one link at once: accepted
)

func (k kind) String() string {
	return [...]string{"accept", "pending", "revoke", "refused", "contest"}[k]
}

func (k kind) expected() domain.Status {
	switch k {
	case kindPending:
		return domain.StatusPending
	case kindRevoke:
		return domain.StatusRevoked
	case kindRefused:
		return domain.StatusFailed
	default:
		return domain.StatusAccepted
	}
}

// journey is one invitee's path through Usher, as a client sees it.
type journey struct {
	n         int
	kind      kind
	email     string
	idemKey   string
	notBefore time.Duration // after the load starts

	mu       sync.Mutex
	id       string // the invitation, once the API answered the create
	err      error  // what went wrong on the client's side, if anything
	retries  int    // requests sent again after a network error or a 5xx
	accepted bool   // an accept answered 200
	// contest: answers of the 20 simultaneous accepts.
	won, used, other int
	otherAnswers     []string
}

func (j *journey) fail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		j.err = err
	}
}

// plan is the journeys of a scenario, with a mix of kinds.
type plan struct {
	journeys []*journey
}

type mix struct {
	accept, pending, revoke, refused, contest int // counts
	spread                                    time.Duration
	// refusedAfter: refused journeys start after this (when the 400s begin).
	refusedAfter time.Duration
}

func newPlan(scenario string, m mix) *plan {
	p := &plan{}
	add := func(k kind, count int) {
		for range count {
			n := len(p.journeys)
			p.journeys = append(p.journeys, &journey{n: n, kind: k,
				email:   fmt.Sprintf("%s-%s-%d@faults.example", k, scenario, n),
				idemKey: fmt.Sprintf("faults-%s-%d", scenario, n)})
		}
	}
	add(kindAccept, m.accept)
	add(kindPending, m.pending)
	add(kindRevoke, m.revoke)
	add(kindContest, m.contest)
	add(kindRefused, m.refused)
	rand.Shuffle(len(p.journeys), func(i, j int) { p.journeys[i], p.journeys[j] = p.journeys[j], p.journeys[i] })
	for i, j := range p.journeys {
		if j.kind == kindRefused {
			j.email = fmt.Sprintf("refused-%s-%d@faults.example", scenario, j.n)
			j.notBefore = m.refusedAfter + time.Duration(rand.Int64N(int64(max(m.spread-m.refusedAfter, time.Second))))
			continue
		}
		j.notBefore = time.Duration(int64(m.spread) * int64(i) / int64(len(p.journeys)))
	}
	return p
}

func (p *plan) count(k kind) int {
	n := 0
	for _, j := range p.journeys {
		if j.kind == k {
			n++
		}
	}
	return n
}

// run drives every journey, at most concurrency at once, each starting no earlier than
// its notBefore; it returns when all have finished on the client's side.
func (p *plan) run(ctx context.Context, e *env, concurrency int, within time.Duration) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	queue := make(chan *journey)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range queue {
				if wait := time.Until(start.Add(j.notBefore)); wait > 0 {
					select {
					case <-time.After(wait):
					case <-ctx.Done():
					}
				}
				j.run(ctx, e)
			}
		}()
	}
	// In order of start time.
	ordered := append([]*journey(nil), p.journeys...)
	sortByStart(ordered)
	for _, j := range ordered {
		queue <- j
	}
	close(queue)
	wg.Wait()
}

func sortByStart(js []*journey) {
	for i := 1; i < len(js); i++ {
		for k := i; k > 0 && js[k].notBefore < js[k-1].notBefore; k-- {
			js[k], js[k-1] = js[k-1], js[k]
		}
	}
}

// inFlight counts the journeys whose client is at work, for the progress line.
var inFlight, peakInFlight atomic.Int32

func (j *journey) run(ctx context.Context, e *env) {
	if n := inFlight.Add(1); n > peakInFlight.Load() {
		peakInFlight.Store(n)
	}
	defer inFlight.Add(-1)
	if err := j.create(ctx, e); err != nil {
		j.fail(fmt.Errorf("create: %w", err))
		return
	}
	if j.kind == kindRefused {
		return // the worker fails it; the checks see whether it did
	}
	token, err := e.inbox.waitForInvitationToken(ctx, j.email)
	if err != nil {
		j.fail(fmt.Errorf("no invitation e-mail: %w", err))
		return
	}
	// The invitee reads the e-mail before clicking: many journeys stay in flight at once.
	if j.kind != kindPending {
		select {
		case <-time.After(time.Duration(rand.IntN(8000)) * time.Millisecond):
		case <-ctx.Done():
		}
	}
	switch j.kind {
	case kindPending:
	case kindRevoke:
		a, err := j.retry(ctx, func() (answer, error) { return e.call(ctx, "POST", "/v1/invitations/"+j.id+"/revoke", "", nil) })
		if err != nil {
			j.fail(fmt.Errorf("revoke: %w", err))
		} else if a.status != http.StatusOK {
			j.fail(fmt.Errorf("revoke answered %d: %s", a.status, a.raw))
		}
	case kindAccept:
		j.accept(ctx, e, token)
	case kindContest:
		j.contest(ctx, e, token)
	}
}

// retry sends a request until it gets an answer that is not a network error or 5xx.
func (j *journey) retry(ctx context.Context, send func() (answer, error)) (answer, error) {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		a, err := send()
		if !retryable(a, err) {
			return a, nil
		}
		if ctx.Err() != nil {
			if err == nil {
				err = fmt.Errorf("%d %s", a.status, a.raw)
			}
			return a, fmt.Errorf("gave up after %d attempts: %w", attempt+1, err)
		}
		j.mu.Lock()
		j.retries++
		j.mu.Unlock()
		select {
		case <-time.After(backoff + rand.N(backoff)):
		case <-ctx.Done():
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (j *journey) create(ctx context.Context, e *env) error {
	body := map[string]any{"email": j.email, "organization_id": e.org}
	a, err := j.retry(ctx, func() (answer, error) { return e.call(ctx, "POST", "/v1/invitations", j.idemKey, body) })
	if err != nil {
		return err
	}
	if a.status != http.StatusCreated && a.status != http.StatusOK {
		return fmt.Errorf("answered %d: %s", a.status, a.raw)
	}
	id := a.str("id")
	if id == "" {
		return fmt.Errorf("no id in %s", a.raw)
	}
	j.mu.Lock()
	j.id = id
	j.mu.Unlock()
	return nil
}

// accept uses the link; once an attempt may have reached the API, a later 409
// invitation_used means an earlier attempt won (the checks confirm it in MySQL).
func (j *journey) accept(ctx context.Context, e *env, token string) {
	tries := 0
	a, err := j.retry(ctx, func() (answer, error) {
		tries++
		return e.call(ctx, "POST", "/v1/public/invitations/accept", "", map[string]any{"token": token})
	})
	switch {
	case err != nil:
		j.fail(fmt.Errorf("accept: %w", err))
	case a.status == http.StatusOK:
		j.mu.Lock()
		j.accepted = true
		j.mu.Unlock()
	case tries > 1 && a.status == http.StatusConflict && a.code() == string(domain.CodeInvitationUsed):
		// An earlier attempt went through before its answer was lost.
	default:
		j.fail(fmt.Errorf("accept answered %d: %s", a.status, a.raw))
	}
}

// contestants is how many clients accept one link at once.
const contestants = 20

func (j *journey) contest(ctx context.Context, e *env, token string) {
	answers := make([]answer, contestants)
	errs := make([]error, contestants)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range contestants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			answers[i], errs[i] = e.call(ctx, "POST", "/v1/public/invitations/accept", "",
				map[string]any{"token": token, "name": fmt.Sprintf("Contestant %d", i)})
		}()
	}
	close(gate)
	wg.Wait()
	j.mu.Lock()
	defer j.mu.Unlock()
	for i, a := range answers {
		switch {
		case errs[i] != nil:
			j.other++
			j.otherAnswers = append(j.otherAnswers, errs[i].Error())
		case a.status == http.StatusOK:
			j.won++
		case a.status == http.StatusConflict && a.code() == string(domain.CodeInvitationUsed):
			j.used++
		default:
			j.other++
			j.otherAnswers = append(j.otherAnswers, fmt.Sprintf("%d %s", a.status, a.raw))
		}
	}
	if j.won != 1 || j.used != contestants-1 {
		j.err = errors.Join(j.err, fmt.Errorf("contest: %d won, %d invitation_used, %d other %v; want 1, %d, 0",
			j.won, j.used, j.other, j.otherAnswers, contestants-1))
	}
}
