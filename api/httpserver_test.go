package api

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveSlowly serves a trivial handler with NewHTTPServer, its read timeouts shortened so
// the test is quick; the mechanism is the production one.
func serveSlowly(t *testing.T, header, body time.Duration) string {
	t.Helper()
	if ReadHeaderTimeout <= 0 || ReadHeaderTimeout > 10*time.Second || ReadTimeout <= 0 || WriteTimeout <= 0 || IdleTimeout <= 0 || MaxHeaderBytes <= 0 {
		t.Fatal("NewHTTPServer must bound header and body reads, writes, idle connections and header size")
	}
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}), nil)
	srv.ReadHeaderTimeout, srv.ReadTimeout = header, body
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// trickle writes s a byte at a time every gap, and returns how long the server let it go
// on before it closed the connection (or the whole of it if it never did).
func trickle(t *testing.T, conn net.Conn, s string, gap time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for i := range len(s) {
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return time.Since(start)
		}
		// A closed connection shows on the read side first.
		_ = conn.SetReadDeadline(time.Now().Add(gap))
		if _, err := conn.Read(make([]byte, 1)); err != nil && !isTimeout(err) {
			return time.Since(start)
		}
	}
	return time.Since(start)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestSlowlorisHeadersAreCutOff(t *testing.T) {
	addr := serveSlowly(t, 300*time.Millisecond, 2*time.Second)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Headers that would take 10 s to arrive.
	headers := "GET /healthz HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Slow: a\r\n", 10)
	if lasted := trickle(t, conn, headers, 50*time.Millisecond); lasted > 2*time.Second {
		t.Fatalf("the server kept a slowloris client's connection for %s", lasted)
	}
}

func TestSlowBodyIsCutOff(t *testing.T) {
	addr := serveSlowly(t, time.Second, 500*time.Millisecond)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if lasted := trickle(t, conn, strings.Repeat("a", 200), 50*time.Millisecond); lasted > 3*time.Second {
		t.Fatalf("the server kept reading a trickled body for %s", lasted)
	}
}

// A client at normal speed is unaffected by the same settings.
func TestPromptClientIsServed(t *testing.T) {
	addr := serveSlowly(t, 300*time.Millisecond, 500*time.Millisecond)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", res.StatusCode)
	}
}
