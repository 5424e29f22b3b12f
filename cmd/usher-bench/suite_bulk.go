//go:build !nodev

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// suiteBulkRun is benchmark 5.
type suiteBulkRun struct {
	People    int
	BodyBytes int
	To202     time.Duration // request → 202
	Finished  time.Duration // request → the batch finished (every invitation created and started)
	Sent      time.Duration // request → the batch reports everyone sent and the mail server has every e-mail
	BatchID   string
	Pressure  float64
}

func (b suiteBulkRun) rate() float64 { return rate(b.People, b.Sent) }

// runSuiteBulk invites opts.suite.bulk new people through one POST /v1/invitations/bulk
// and waits until all are sent (5); the worker's memory is read before, with no invitation
// pending, and after, with all of them pending on their timers (4).
func (s *stack) runSuiteBulk(ctx context.Context, opts options, w *childWorker) (suiteBulkRun, idleResult, error) {
	n := opts.suite.bulk
	res := suiteBulkRun{People: n}
	idle := idleResult{Pending: n, Settle: opts.suite.settle}
	org, err := s.createOrganization(ctx, "Bench Bulk Suite")
	if err != nil {
		return res, idle, err
	}

	s.quiesce(ctx)
	logf("idle: the worker's memory with no invitation pending, after %s", opts.suite.settle)
	if idle.RSS0, idle.SampledRSS0, idle.CPU0, err = w.settle(ctx, opts.suite.settle); err != nil {
		return res, idle, err
	}
	idle.Go0 = w.goStats(ctx)
	var pending int
	if err := s.db.GetContext(ctx, &pending, `SELECT COUNT(*) FROM invitations WHERE status = 'pending'`); err == nil && pending > 0 {
		logf("idle: note: %d invitations already pending", pending)
	}

	type item struct {
		Email          string `json:"email"`
		Name           string `json:"name"`
		Role           string `json:"role"`
		OrganizationID string `json:"organization_id"`
	}
	items := make([]item, n)
	for i := range items {
		items[i] = item{Email: fmt.Sprintf("bulk-%06d@bulk.example.com", i), Name: fmt.Sprintf("Bulk %d", i), Role: "member", OrganizationID: org}
	}
	body, _ := json.Marshal(map[string]any{"invitations": items})
	res.BodyBytes = len(body)

	logf("bulk: %d people in one POST /v1/invitations/bulk (%d KiB)", n, len(body)>>10)
	target := s.mailCount() + n
	mw := s.watchMail(ctx, target)
	p := startPressure()
	start := time.Now()
	raw, err := s.call(ctx, "POST", "/v1/invitations/bulk", "application/json", bytes.NewReader(body), http.StatusAccepted)
	if err != nil {
		return res, idle, err
	}
	res.To202 = time.Since(start)
	var answer struct {
		Results []struct {
			Status  string  `json:"status"`
			BatchID *string `json:"batch_id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil || len(answer.Results) != n {
		return res, idle, fmt.Errorf("unexpected answer to the bulk call (%d results)", len(answer.Results))
	}
	for _, r := range answer.Results {
		if r.Status != "queued" || r.BatchID == nil {
			return res, idle, fmt.Errorf("a bulk item was not queued: %+v", r)
		}
	}
	res.BatchID = *answer.Results[0].BatchID
	logf("bulk: 202 in %s; batch %s", round(res.To202), res.BatchID)

	lastLog := time.Now()
	mailed := false
	_, err = s.waitBatch(ctx, res.BatchID, start, mw.done,
		func(b batchState) bool {
			if !mailed {
				select {
				case <-mw.done:
					mailed = true
				default:
				}
			}
			return mailed && b.Finished && b.Total == n && b.Sent == b.Total
		},
		func(b batchState, at time.Duration) {
			if b.FinishedAt != nil && res.Finished == 0 {
				res.Finished = at
			}
			if time.Since(lastLog) >= 15*time.Second {
				lastLog = time.Now()
				logf("bulk: %s: %d of %d sent (%.0f/s so far)", round(at), b.Sent, b.Total, rate(b.Sent, at))
			}
		})
	if err != nil {
		return res, idle, err
	}
	res.Sent, res.Pressure = time.Since(start), p.share()
	if err := s.checkMail(ctx, target); err != nil {
		return res, idle, err
	}
	logf("bulk: %d people sent in %s (%.1f people/s)", n, round(res.Sent), res.rate())

	s.quiesce(ctx)
	logf("idle: the worker's memory with %d invitations pending, after %s", n, opts.suite.settle)
	if idle.RSSN, idle.SampledRSSN, idle.CPUN, err = w.settle(ctx, opts.suite.settle); err != nil {
		return res, idle, err
	}
	idle.GoN = w.goStats(ctx)
	_ = s.db.GetContext(ctx, &idle.PendingCheck, `SELECT COUNT(*) FROM invitations WHERE status = 'pending'`)
	logf("idle: %s MiB with none pending, %s MiB with %d", thousands(int(idle.RSS0>>20)), thousands(int(idle.RSSN>>20)), idle.PendingCheck)
	return res, idle, nil
}
