//go:build !nodev

package main

import (
	"context"
	"database/sql/driver"
	"errors"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// sqlStats counts what the process asks of MySQL: statements, the prepared ones among them
// (database/sql prepares a statement with arguments unless the DSN sets interpolateParams,
// which costs a round trip of its own), transactions, and the time spent waiting on each.
// It sits between database/sql and the go-sql-driver/mysql connector, so the pool settings
// and the statements are exactly the store's.
type sqlStats struct {
	mu     sync.Mutex
	byStmt map[string]*stmtStat
	begins int
	ends   int // commits and rollbacks
	txTime time.Duration
}

type stmtStat struct {
	query    string
	calls    int // executions
	prepares int // of which prepared first (two round trips)
	time     time.Duration
}

func newSQLStats() *sqlStats { return &sqlStats{byStmt: map[string]*stmtStat{}} }

func (s *sqlStats) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byStmt = map[string]*stmtStat{}
	s.begins, s.ends, s.txTime = 0, 0, 0
}

func (s *sqlStats) stmt(query string) *stmtStat {
	st := s.byStmt[query]
	if st == nil {
		st = &stmtStat{query: query}
		s.byStmt[query] = st
	}
	return st
}

func (s *sqlStats) addCall(query string, d time.Duration) {
	s.mu.Lock()
	st := s.stmt(query)
	st.calls++
	st.time += d
	s.mu.Unlock()
}

func (s *sqlStats) addPrepare(query string, d time.Duration) {
	s.mu.Lock()
	st := s.stmt(query)
	st.prepares++
	st.time += d
	s.mu.Unlock()
}

func (s *sqlStats) addTx(begin bool, d time.Duration) {
	s.mu.Lock()
	if begin {
		s.begins++
	} else {
		s.ends++
	}
	s.txTime += d
	s.mu.Unlock()
}

// sqlSnapshot is what a phase asked of MySQL.
type sqlSnapshot struct {
	Statements   int // executions of statements
	Prepared     int // statements prepared before executing
	Transactions int
	RoundTrips   int // statements + prepares + begins + commits/rollbacks
	Time         time.Duration
	Top          []stmtStat // by time, largest first
}

func (s *sqlStats) snapshot() sqlSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := sqlSnapshot{Transactions: s.begins, Time: s.txTime}
	for _, st := range s.byStmt {
		out.Statements += st.calls
		out.Prepared += st.prepares
		out.Time += st.time
		out.Top = append(out.Top, *st)
	}
	out.RoundTrips = out.Statements + out.Prepared + s.begins + s.ends
	sort.Slice(out.Top, func(i, j int) bool { return out.Top[i].time > out.Top[j].time })
	return out
}

var spaces = regexp.MustCompile(`\s+`)

// shortQuery is a statement shortened for a table: the select list elided.
func shortQuery(q string) string {
	q = strings.TrimSpace(spaces.ReplaceAllString(q, " "))
	if strings.HasPrefix(strings.ToUpper(q), "SELECT ") {
		if i := strings.Index(strings.ToUpper(q), " FROM "); i > 0 {
			q = "SELECT … " + q[i+1:]
		}
	}
	if r := []rune(q); len(r) > 90 {
		q = string(r[:89]) + "…"
	}
	return q
}

// countingConnector wraps the MySQL connector.
type countingConnector struct {
	inner driver.Connector
	stats *sqlStats
}

func (c countingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &countingConn{inner: conn, stats: c.stats}, nil
}

func (c countingConnector) Driver() driver.Driver { return c.inner.Driver() }

// countingConn forwards every optional interface go-sql-driver/mysql implements, so that
// database/sql behaves exactly as it does on the bare driver.
type countingConn struct {
	inner driver.Conn
	stats *sqlStats
}

var (
	_ driver.Conn               = (*countingConn)(nil)
	_ driver.ConnBeginTx        = (*countingConn)(nil)
	_ driver.ConnPrepareContext = (*countingConn)(nil)
	_ driver.ExecerContext      = (*countingConn)(nil)
	_ driver.QueryerContext     = (*countingConn)(nil)
	_ driver.Pinger             = (*countingConn)(nil)
	_ driver.SessionResetter    = (*countingConn)(nil)
	_ driver.Validator          = (*countingConn)(nil)
	_ driver.NamedValueChecker  = (*countingConn)(nil)
)

func (c *countingConn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	start := time.Now()
	var st driver.Stmt
	var err error
	if p, ok := c.inner.(driver.ConnPrepareContext); ok {
		st, err = p.PrepareContext(ctx, query)
	} else {
		st, err = c.inner.Prepare(query)
	}
	c.stats.addPrepare(query, time.Since(start))
	if err != nil {
		return nil, err
	}
	return &countingStmt{inner: st, query: query, stats: c.stats}, nil
}

func (c *countingConn) Close() error { return c.inner.Close() }

func (c *countingConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	start := time.Now()
	var tx driver.Tx
	var err error
	if b, ok := c.inner.(driver.ConnBeginTx); ok {
		tx, err = b.BeginTx(ctx, opts)
	} else {
		err = errors.New("usher-bench: the MySQL driver has no BeginTx")
	}
	c.stats.addTx(true, time.Since(start))
	if err != nil {
		return nil, err
	}
	return &countingTx{inner: tx, stats: c.stats}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.inner.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	start := time.Now()
	res, err := e.ExecContext(ctx, query, args)
	if err == driver.ErrSkip { // database/sql prepares the statement instead
		return nil, err
	}
	c.stats.addCall(query, time.Since(start))
	return res, err
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.inner.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	start := time.Now()
	rows, err := q.QueryContext(ctx, query, args)
	if err == driver.ErrSkip {
		return nil, err
	}
	c.stats.addCall(query, time.Since(start))
	return rows, err
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingTx struct {
	inner driver.Tx
	stats *sqlStats
}

func (t *countingTx) Commit() error {
	start := time.Now()
	err := t.inner.Commit()
	t.stats.addTx(false, time.Since(start))
	return err
}

func (t *countingTx) Rollback() error {
	start := time.Now()
	err := t.inner.Rollback()
	t.stats.addTx(false, time.Since(start))
	return err
}

type countingStmt struct {
	inner driver.Stmt
	query string
	stats *sqlStats
}

var (
	_ driver.StmtExecContext   = (*countingStmt)(nil)
	_ driver.StmtQueryContext  = (*countingStmt)(nil)
	_ driver.NamedValueChecker = (*countingStmt)(nil)
)

func (s *countingStmt) Close() error  { return s.inner.Close() }
func (s *countingStmt) NumInput() int { return s.inner.NumInput() }

// Exec and Query complete driver.Stmt; database/sql calls the context versions.
func (s *countingStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *countingStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, v := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	e, ok := s.inner.(driver.StmtExecContext)
	if !ok {
		return nil, errors.New("usher-bench: the MySQL driver's statement has no ExecContext")
	}
	start := time.Now()
	res, err := e.ExecContext(ctx, args)
	s.stats.addCall(s.query, time.Since(start))
	return res, err
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.inner.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("usher-bench: the MySQL driver's statement has no QueryContext")
	}
	start := time.Now()
	rows, err := q.QueryContext(ctx, args)
	s.stats.addCall(s.query, time.Since(start))
	return rows, err
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.inner.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
