package devtemporal

import (
	"fmt"
	"net"
	"strconv"
)

// freePort asks the kernel for an unused TCP port on ip and returns it.
//
// Linux hands out bind(:0) ports in a randomised way and may give the same
// port again right after it is released, which matters when several servers
// start at once (one per test package). To make that unlikely the port is
// left in TIME_WAIT: we connect to it and close the accepted side first. The
// kernel then skips it for bind(:0) for about a minute, while the Temporal
// server, whose listeners set SO_REUSEADDR (the Go default), can still bind it
// explicitly.
func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("devtemporal: no free port on %s: %w", ip, err)
	}
	defer l.Close()
	addr := l.Addr().(*net.TCPAddr)

	c, err := net.DialTCP("tcp", nil, addr)
	if err != nil {
		return addr.Port, nil // still a usable port, just without the TIME_WAIT guard
	}
	defer c.Close()
	if s, err := l.Accept(); err == nil {
		_ = s.Close() // server side closes first -> TIME_WAIT on the listening port
	}
	return addr.Port, nil
}

// checkBindable reports an error when port cannot be bound on ip right now.
func checkBindable(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return fmt.Errorf("devtemporal: port %d on %s is not available: %w", port, ip, err)
	}
	return l.Close()
}
