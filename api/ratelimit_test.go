package api

import (
	"context"
	"testing"
	"time"

	"github.com/usherhq/usher/internal/domain"
)

func TestKeyedLimiter(t *testing.T) {
	l := newKeyedLimiter(3)
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if ok, _ := l.available("a", now); !ok {
			t.Fatalf("failure %d refused before it was made", i+1)
		}
		l.charge("a", now)
	}
	ok, wait := l.available("a", now)
	if ok || wait != 20*time.Second {
		t.Fatalf("after three failures: %v, wait %s; want refused for 20s", ok, wait)
	}
	if ok, _ := l.available("b", now); !ok {
		t.Fatal("another key is limited too")
	}
	if ok, _ := l.available("a", now.Add(20*time.Second)); !ok {
		t.Fatal("no refill after 20 s at 3 a minute")
	}
	// Failures in flight together overshoot; the overshoot is waited out.
	l.charge("a", now.Add(20*time.Second))
	l.charge("a", now.Add(20*time.Second))
	if ok, wait := l.available("a", now.Add(20*time.Second)); ok || wait != 40*time.Second {
		t.Fatalf("after an overshoot of one: %v, wait %s; want refused for 40s", ok, wait)
	}
}

// Lookups under way do not count: many people behind one address opening their links at
// once are never refused, however many there are.
func TestTokenLookupsInFlightDoNotCount(t *testing.T) {
	s := &Server{tokens: newTokenGuard(2)}
	var tries []tokenTry
	for range 50 {
		try, err := s.tryToken(context.Background(), "AAAAAAAAgenuine")
		if err != nil {
			t.Fatalf("a genuine lookup was refused while others were under way: %v", err)
		}
		tries = append(tries, try)
	}
	for _, try := range tries {
		try.settle(nil)
	}
	for range 2 {
		try, err := s.tryToken(context.Background(), "BBBBBBBBwrong")
		if err != nil {
			t.Fatal(err)
		}
		try.settle(domain.Errorf(domain.CodeInvalidToken, "no such link"))
	}
	if _, err := s.tryToken(context.Background(), "BBBBBBBBwrong"); domain.ErrorCode(err) != domain.CodeRateLimited {
		t.Fatalf("after two failures of a prefix: %v, want rate_limited", err)
	}
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2::1":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"not an address":       "not an address",
	} {
		if got := addressKey(in); got != want {
			t.Errorf("addressKey(%q) = %q, want %q", in, got, want)
		}
	}
}
