//go:build !nodev

package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdklog "go.temporal.io/sdk/log"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/internal/devtemporal"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/testdb"
	"github.com/usherhq/usher/worker"
	"github.com/usherhq/usher/workflows"
)

const (
	namespace     = "usher-bench"
	publicURL     = "https://usher.bench"
	mailgunDomain = "mg.usher.bench"
	mailgunKey    = "key-bench"
)

// stack is the whole of Usher in this process, as e2e/harness_test.go runs it.
type stack struct {
	temporal *devtemporal.Server
	client   client.Client
	testDB   *testdb.Database
	db       *sqlx.DB // the store's pool, instrumented
	store    *store.Store
	mailgun  *mailgunsrv.Server
	mailHTTP *httptest.Server
	worker   *worker.Workers
	api      *httptest.Server
	apiKey   string
	http     *http.Client

	sql  *sqlStats
	acts *activityStats
}

func startStack(ctx context.Context, opts options) (_ *stack, err error) {
	s := &stack{sql: newSQLStats(), acts: newActivityStats()}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()

	// The Temporal server logs every internal queue at info; only its warnings (with -v)
	// are of any use here.
	var temporalLog *slog.Logger // nil: discarded
	if opts.verbose {
		temporalLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "temporal-server")
	}
	if s.temporal, err = devtemporal.Start(devtemporal.Options{Namespace: namespace, Logger: temporalLog, SearchAttributes: workflows.SearchAttributeTypes()}); err != nil {
		return nil, fmt.Errorf("starting the in-process Temporal server: %w", err)
	}

	if s.testDB, err = testdb.Create(ctx); err != nil {
		return nil, err
	}
	if s.db, err = openCounted(s.testDB.DSN, s.sql); err != nil {
		return nil, err
	}
	s.store = store.New(s.db, nil)

	// The SDK logs every failed activity attempt at error level (deadlocks retried, for
	// one); the activity table counts them instead. -v shows them.
	quiet := slog.New(slog.DiscardHandler)
	if opts.verbose {
		quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if s.client, err = client.DialContext(ctx, client.Options{
		HostPort: s.temporal.FrontendAddress(), Namespace: s.temporal.Namespace(),
		Logger: sdklog.NewStructuredLogger(quiet),
		// Also a worker interceptor: it times the activities of the worker made with this client.
		Interceptors: []interceptor.ClientInterceptor{s.acts},
	}); err != nil {
		return nil, fmt.Errorf("dialing Temporal: %w", err)
	}

	// The Mailgun test server answers at once; the real mailgun-go client talks to it.
	s.mailgun = mailgunsrv.New(mailgunsrv.Options{Domain: mailgunDomain, APIKey: mailgunKey})
	s.mailHTTP = httptest.NewServer(s.mailgun)
	acts := &activities.Activities{
		Store:     s.store,
		Mail:      mail.NewMailgun(mail.MailgunConfig{Domain: mailgunDomain, APIKey: mailgunKey, APIBase: s.mailHTTP.URL + "/v3", From: "Usher <usher@usher.bench>"}),
		PublicURL: publicURL,
		Temporal:  s.client,
	}
	// No SendsPerSecond: the provider's rate limit would otherwise be all this measures.
	workerOpts := worker.Options{}
	if opts.wftPollers > 0 {
		workerOpts.Worker.MaxConcurrentWorkflowTaskPollers = opts.wftPollers
	}
	// The suite runs the production worker as a child process instead (suite_worker.go).
	if !opts.suite.on {
		s.worker = worker.New(s.client, acts, workerOpts)
		if err = s.worker.Start(); err != nil {
			s.worker = nil
			return nil, fmt.Errorf("starting the worker: %w", err)
		}
	}

	server := &api.Server{Store: s.store, Temporal: s.client, Logger: quiet, SMSEnabled: false,
		Join: api.JoinSettings{SearchesPerMinute: 1_000_000}}
	if err = server.Validate(); err != nil {
		return nil, err
	}
	s.api = httptest.NewServer(server.Handler())
	if _, s.apiKey, err = s.store.CreateAPIKey(ctx, "usher-bench"); err != nil {
		return nil, err
	}
	s.http = &http.Client{
		Timeout: 10 * time.Minute,
		Transport: &http.Transport{
			MaxIdleConns: opts.concurrency + 16, MaxIdleConnsPerHost: opts.concurrency + 16, IdleConnTimeout: time.Minute,
		},
	}
	return s, nil
}

// openCounted opens the test database the way store.Open opens a production one (UTC
// times, time_zone +00:00, the same pool limits), through the counting connector.
func openCounted(dsn string, stats *sqlStats) (*sqlx.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, err
	}
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sqlx.NewDb(sql.OpenDB(countingConnector{inner: connector, stats: stats}), "mysql")
	db.SetMaxOpenConns(50)
	db.SetMaxIdleConns(25)
	db.SetConnMaxLifetime(5 * time.Minute)
	return db, nil
}

// stop takes everything down and drops the database; safe on a half-started stack.
func (s *stack) stop() {
	if s.api != nil {
		s.api.CloseClientConnections()
		s.api.Close()
	}
	if s.worker != nil {
		s.worker.Stop()
	}
	if s.client != nil {
		s.client.Close()
	}
	if s.mailHTTP != nil {
		s.mailHTTP.CloseClientConnections()
		s.mailHTTP.Close()
	}
	if s.db != nil {
		_ = s.db.Close()
	}
	if s.testDB != nil {
		s.testDB.Drop()
	}
	if s.temporal != nil {
		s.temporal.Stop()
	}
}

// apiError is an answer the benchmark did not expect.
type apiError struct {
	method, path string
	status       int
	body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s answered %d: %s", e.method, e.path, e.status, e.body)
}

// call sends a request with the API key and returns the answer's body, or an error when
// the status is not want.
func (s *stack) call(ctx context.Context, method, path, contentType string, body io.Reader, want int) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.api.URL+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := s.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		if len(raw) > 500 {
			raw = append(raw[:500:500], "…"...)
		}
		return nil, &apiError{method: method, path: path, status: res.StatusCode, body: string(raw)}
	}
	return raw, nil
}
