package api

import (
	"context"
	"math"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/usherhq/usher/internal/domain"
)

// Guessing link tokens. A token is 256 random bits, so guessing one is hopeless; these
// limits keep a guesser from using Usher as an oracle and its database as the workhorse.
// Only failures count: a token of the wrong shape, or one that is looked up and not found.
// A person opening their own link (even a replaced one) any number of times never counts,
// and neither do lookups still under way, so many people behind one address (a NAT) can
// open their links at once. The price: guesses sent all at once, before the first has
// failed, may overshoot the limit by how many are in flight, which at 256 bits per token
// buys nothing.
// Two limits must both allow a try: one per client address (IPv6 by its /64) and one per
// token prefix (the first tokenPrefixLength characters), so that spraying one prefix from
// many addresses is limited too. Every operation behind a token link, JSON endpoint or
// hosted page, goes through tryToken.

// DefaultTokenGuessesPerMinute is the limit when Server.TokenGuessesPerMinute is 0.
const DefaultTokenGuessesPerMinute = 10

const (
	tokenPrefixLength = 8
	// maxLimiterKeys bounds the memory of a limiter; past it, keys whose bucket is full
	// again (which carry no information) are forgotten.
	maxLimiterKeys = 100_000
)

// keyedLimiter is a token bucket per key: up to perMinute at once, refilled at perMinute
// a minute. Unlike golang.org/x/time/rate, it can say whether a token is there without
// taking it, and take one later, once a failure is known.
type keyedLimiter struct {
	mu        sync.Mutex
	perMinute float64
	buckets   map[string]*bucket
	swept     time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newKeyedLimiter(perMinute int) *keyedLimiter {
	if perMinute <= 0 {
		perMinute = DefaultTokenGuessesPerMinute
	}
	return &keyedLimiter{perMinute: float64(perMinute), buckets: map[string]*bucket{}}
}

// refill brings b up to now and reports whether it is full.
func (l *keyedLimiter) refill(b *bucket, now time.Time) bool {
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = math.Min(l.perMinute, b.tokens+elapsed.Minutes()*l.perMinute)
		b.at = now
	}
	return b.tokens >= l.perMinute
}

// available reports whether key's bucket holds a token, or how long until it does. A key
// never charged has a full bucket and takes no memory.
func (l *keyedLimiter) available(key string, now time.Time) (ok bool, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, found := l.buckets[key]
	if !found {
		return true, 0
	}
	l.refill(b, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute))
	}
	return true, 0
}

// charge takes a token of key's bucket, going below zero if failures already in flight
// used it up, so that the overshoot is waited out.
func (l *keyedLimiter) charge(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) >= maxLimiterKeys || now.Sub(l.swept) > 10*time.Minute {
		for k, b := range l.buckets {
			if l.refill(b, now) {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b, found := l.buckets[key]
	if !found {
		b = &bucket{tokens: l.perMinute, at: now}
		l.buckets[key] = b
	}
	l.refill(b, now)
	b.tokens--
}

// tokenGuard holds the two limits on failed token lookups.
type tokenGuard struct {
	byAddress, byPrefix *keyedLimiter
}

func newTokenGuard(perMinute int) *tokenGuard {
	return &tokenGuard{byAddress: newKeyedLimiter(perMinute), byPrefix: newKeyedLimiter(perMinute)}
}

// tokenTry is one use of a link token, counted against the limits by settle if it turns
// out to be a guess.
type tokenTry struct {
	g             *tokenGuard
	address, pref string
}

// settle counts the try when err says the token is unknown or malformed.
func (t tokenTry) settle(err error) {
	if t.g == nil || domain.ErrorCode(err) != domain.CodeInvalidToken || errorDetail(err, "reason") == "replaced" {
		return
	}
	now := time.Now()
	if t.address != "" {
		t.g.byAddress.charge(t.address, now)
	}
	t.g.byPrefix.charge(t.pref, now)
}

// tryToken lets the client of ctx use token, or refuses (rate_limited, with Retry-After)
// when the client's address or the token's prefix has failed too often. Call settle with
// the lookup's outcome.
func (s *Server) tryToken(ctx context.Context, token string) (tokenTry, error) {
	g := s.tokens
	if g == nil {
		return tokenTry{}, nil
	}
	try := tokenTry{g: g, pref: token}
	if len(try.pref) > tokenPrefixLength {
		try.pref = try.pref[:tokenPrefixLength]
	}
	gc, _ := ctx.Value(gin.ContextKey).(*gin.Context)
	if gc != nil {
		try.address = addressKey(gc.ClientIP())
	}
	now := time.Now()
	var wait time.Duration
	if try.address != "" {
		if ok, w := g.byAddress.available(try.address, now); !ok {
			wait = w
		}
	}
	if wait == 0 {
		if ok, w := g.byPrefix.available(try.pref, now); !ok {
			wait = w
		}
	}
	if wait == 0 {
		return try, nil
	}
	if gc != nil {
		gc.Header("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	}
	return tokenTry{}, domain.Errorf(domain.CodeRateLimited, "too many links that do not work were tried; wait a minute and try again")
}

// addressKey is the limit's key for a client address: the address, or for IPv6 its /64,
// which one client usually holds whole.
func addressKey(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil || parsed.To4() != nil {
		return ip
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
