//go:build !nodev

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/usherhq/usher/internal/mailgunsrv"
)

// scenario is one fault and the load it is injected into.
type scenario struct {
	name  string
	title string
	mix   func(n int) mix
	// fault runs beside the load; loadDone closes when every client has finished. It
	// returns notes for the report.
	fault func(ctx context.Context, e *env, loadDone <-chan struct{}) ([]string, error)
	// privateDB: the scenario stops MariaDB, so it runs a server of its own.
	privateDB bool
}

// defaultMix: most journeys accept, some are left pending, some revoked.
func defaultMix(n int, spread time.Duration) mix {
	pending, revoke := n/5, n/10
	return mix{accept: n - pending - revoke, pending: pending, revoke: revoke, spread: spread}
}

var scenarios = []scenario{
	{
		name:  "contest",
		title: "the same link accepted by 20 clients at once, 20 links",
		mix: func(n int) mix {
			m := defaultMix(max(n-20, 10), 30*time.Second)
			m.contest = 20
			return m
		},
		fault: func(ctx context.Context, e *env, loadDone <-chan struct{}) ([]string, error) {
			return nil, nil // the contests are journeys of the load
		},
	},
	{
		name:  "worker-kill",
		title: "the worker killed with SIGKILL at random moments, 10 times, and restarted",
		mix:   func(n int) mix { return defaultMix(n, 40*time.Second) },
		fault: func(ctx context.Context, e *env, loadDone <-chan struct{}) ([]string, error) {
			var downs []string
			for range 10 {
				select {
				case <-time.After(time.Duration(1500+rand.IntN(2500)) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				e.worker.kill()
				down := time.Duration(rand.IntN(1500)) * time.Millisecond
				downs = append(downs, down.Round(10*time.Millisecond).String())
				time.Sleep(down)
				if err := e.worker.restart(ctx); err != nil {
					return nil, err
				}
			}
			return []string{fmt.Sprintf("worker killed %d times (down %s each)", e.worker.kills, strings.Join(downs, ", "))}, nil
		},
	},
	{
		name:  "mailgun-storm",
		title: "Mailgun answers 30% 503 and 10% 429 (with a reset header) for a minute, then 400 for some addresses",
		mix: func(n int) mix {
			m := defaultMix(n, 80*time.Second)
			m.refused = n / 10
			m.accept -= m.refused
			m.refusedAfter = stormLength
			return m
		},
		fault: mailgunStorm,
	},
	{
		name:  "api-kill",
		title: "the API killed with SIGKILL mid-request (creating and accepting), 8 times, and restarted",
		mix:   func(n int) mix { return defaultMix(n, 30*time.Second) },
		fault: func(ctx context.Context, e *env, loadDone <-chan struct{}) ([]string, error) {
			for range 8 {
				select {
				case <-time.After(time.Duration(1500+rand.IntN(2500)) * time.Millisecond):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				e.api.kill()
				time.Sleep(time.Duration(200+rand.IntN(800)) * time.Millisecond)
				if err := e.api.restart(ctx); err != nil {
					return nil, err
				}
			}
			return []string{fmt.Sprintf("API killed %d times", e.api.kills)}, nil
		},
	},
	{
		name:      "mariadb-stop",
		title:     "MariaDB stopped for 20 s mid-load and started again",
		mix:       func(n int) mix { return defaultMix(n, 40*time.Second) },
		privateDB: true,
		// The fault is set up in runScenario, which owns the private server.
	},
}

const stormLength = time.Minute

// mailgunStorm: for a minute 30% of sends get 503 and 10% 429 with X-RateLimit-Reset;
// then sends to the refused addresses get 400 and the rest go through.
func mailgunStorm(ctx context.Context, e *env, loadDone <-chan struct{}) ([]string, error) {
	var storming atomic.Bool
	storming.Store(true)
	var n503, n429, n400 atomic.Int32
	e.mail.SetFault(func(m mailgunsrv.Message) *mailgunsrv.Fault {
		for _, to := range m.To {
			if strings.HasPrefix(to, "refused-") && !storming.Load() {
				n400.Add(1)
				return &mailgunsrv.Fault{Status: http.StatusBadRequest, Body: `{"message":"'to' parameter is not a valid address. please check documentation"}`}
			}
		}
		if !storming.Load() {
			return nil
		}
		switch r := rand.Float64(); {
		case r < 0.30:
			n503.Add(1)
			return &mailgunsrv.Fault{Status: http.StatusServiceUnavailable}
		case r < 0.40:
			n429.Add(1)
			h := http.Header{}
			h.Set("X-RateLimit-Reset", strconv.FormatInt(time.Now().Add(time.Duration(1+rand.IntN(3))*time.Second).Unix(), 10))
			return &mailgunsrv.Fault{Status: http.StatusTooManyRequests, Header: h, Body: `{"message":"Too many requests"}`}
		}
		return nil
	})
	select {
	case <-time.After(stormLength):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	storming.Store(false)
	logf("mailgun-storm: the storm is over; refusing the refused-… addresses with 400 from now on")
	<-loadDone
	return []string{fmt.Sprintf("during the storm: %d answered 503, %d answered 429; then %d answered 400 (%d sends in all)",
		n503.Load(), n429.Load(), n400.Load(), e.mail.Requests())}, nil
}
