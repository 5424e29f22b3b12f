package api

import (
	"testing"
	"time"
)

func TestKeyedLimiter(t *testing.T) {
	l := newKeyedLimiter(3)
	now := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if ok, _ := l.take("a", now); !ok {
			t.Fatalf("take %d refused", i+1)
		}
	}
	ok, wait := l.take("a", now)
	if ok || wait != 20*time.Second {
		t.Fatalf("fourth take: %v, wait %s; want refused for 20s", ok, wait)
	}
	if ok, _ := l.take("b", now); !ok {
		t.Fatal("another key is limited too")
	}
	l.give("a") // a lookup that found its token gives the try back
	if ok, _ := l.take("a", now); !ok {
		t.Fatal("a given-back token cannot be taken")
	}
	if ok, _ := l.take("a", now.Add(20*time.Second)); !ok {
		t.Fatal("no refill after 20 s at 3 a minute")
	}
	if ok, _ := l.take("a", now.Add(20*time.Second)); ok {
		t.Fatal("refilled more than one")
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
