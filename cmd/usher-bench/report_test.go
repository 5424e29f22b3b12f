//go:build !nodev

package main

import (
	"testing"
	"time"
)

func TestReplaceSection(t *testing.T) {
	section := "## Bulk invitations\n\nnew figures\n"
	cases := []struct{ name, doc, want string }{
		{"empty file", "", newDocument + "\n" + section},
		{"appended", "# Benchmarks\n\nintro\n", "# Benchmarks\n\nintro\n\n" + section},
		{"replaced at the end", "# Benchmarks\n\n## Bulk invitations\n\nold\n### sub\nold too\n", "# Benchmarks\n\n" + section},
		{"replaced before another section",
			"# B\n\n## Bulk invitations\n\nold\n\n## Other\n\nkept\n",
			"# B\n\n" + section + "\n## Other\n\nkept\n"},
		{"a heading in a code block is not one",
			"# B\n\n```\n## Bulk invitations\n```\n",
			"# B\n\n```\n## Bulk invitations\n```\n\n" + section},
		{"a longer heading is another section",
			"# B\n\n## Bulk invitations, by hand\n\nkept\n",
			"# B\n\n## Bulk invitations, by hand\n\nkept\n\n" + section},
	}
	for _, c := range cases {
		if got := replaceSection(c.doc, section); got != c.want {
			t.Errorf("%s:\ngot  %q\nwant %q", c.name, got, c.want)
		}
	}
	// Rewriting is stable.
	once := replaceSection("# B\n\n## Bulk invitations\n\nold\n\n## Other\n", section)
	if twice := replaceSection(once, section); twice != once {
		t.Errorf("not stable:\n%q\n%q", once, twice)
	}
}

func TestPercentile(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 100; i++ {
		d = append(d, time.Duration(i))
	}
	if p := percentile(d, 0.5); p != 50 {
		t.Errorf("p50 = %d", p)
	}
	if p := percentile(d, 0.99); p != 99 {
		t.Errorf("p99 = %d", p)
	}
	if p := percentile(d[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
}

func TestShortQuery(t *testing.T) {
	got := shortQuery("SELECT a, b,\n\t c FROM t WHERE x = ?")
	if got != "SELECT … FROM t WHERE x = ?" {
		t.Errorf("got %q", got)
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -1000: "-1,000"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCovered(t *testing.T) {
	at := func(s int) time.Time { return time.Unix(int64(s), 0) }
	got := covered([]interval{{at(5), at(8)}, {at(0), at(2)}, {at(1), at(3)}, {at(7), at(9)}, {at(10), at(10)}})
	if want := 7 * time.Second; got != want { // 0–3 and 5–9
		t.Errorf("covered = %s, want %s", got, want)
	}
	if got := covered(nil); got != 0 {
		t.Errorf("covered(nil) = %s", got)
	}
}
