//go:build !nodev

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"

	"github.com/usherhq/usher/internal/devtemporal"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/migrations"
	"github.com/usherhq/usher/workflows"
)

const (
	namespace     = "usher-faults"
	publicURL     = "https://usher.faults"
	mailgunDomain = "mg.usher.faults"
	mailgunKey    = "key-faults"
	secretKey     = "usher-faults secret key, 32 bytes at least"
)

// env is one scenario's Usher: the Temporal server and the Mailgun test server in this
// process, a fresh MariaDB database, and `usher worker` and `usher api` as child processes
// that the scenario may kill.
type env struct {
	name string
	dir  string // logs of the children

	temporal *devtemporal.Server
	tc       client.Client
	db       *sqlx.DB
	dsn      string
	dropDB   func()
	store    *store.Store
	mail     *mailgunsrv.Server
	mailHTTP *httptest.Server
	inbox    *inbox

	worker *child
	api    *child
	apiURL string
	apiKey string
	org    string
	http   *http.Client
}

type envOptions struct {
	bin       string // the usher binary
	serverDSN string // MariaDB server (no database)
	logDir    string
	verbose   bool
}

func startEnv(ctx context.Context, name string, o envOptions) (_ *env, err error) {
	e := &env{name: name, dir: filepath.Join(o.logDir, name)}
	defer func() {
		if err != nil {
			e.stop()
		}
	}()
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	var temporalLog *slog.Logger
	if o.verbose {
		temporalLog = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "temporal-server")
	}
	if e.temporal, err = devtemporal.Start(devtemporal.Options{Namespace: namespace, Logger: temporalLog, SearchAttributes: workflows.SearchAttributeTypes()}); err != nil {
		return nil, fmt.Errorf("starting the in-process Temporal server: %w", err)
	}
	if e.tc, err = client.DialContext(ctx, client.Options{
		HostPort: e.temporal.FrontendAddress(), Namespace: e.temporal.Namespace(),
		Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler)),
	}); err != nil {
		return nil, fmt.Errorf("dialing Temporal: %w", err)
	}
	if e.dsn, e.db, e.dropDB, err = createDatabase(ctx, o.serverDSN); err != nil {
		return nil, err
	}
	e.store = store.New(e.db, nil)

	e.mail = mailgunsrv.New(mailgunsrv.Options{Domain: mailgunDomain, APIKey: mailgunKey})
	e.mailHTTP = httptest.NewServer(e.mail)
	e.inbox = newInbox(e.mail)

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	apiAddr := fmt.Sprintf("127.0.0.1:%d", port)
	e.apiURL = "http://" + apiAddr
	childEnv := append(os.Environ(),
		"USHER_MYSQL_DSN="+e.dsn,
		"TEMPORAL_ADDRESS="+e.temporal.FrontendAddress(),
		"TEMPORAL_NAMESPACE="+e.temporal.Namespace(),
		"USHER_HTTP_ADDR="+apiAddr,
		"USHER_METRICS_ADDR=off",
		"USHER_PUBLIC_URL="+publicURL,
		"USHER_EMAIL_FROM=Usher <usher@usher.faults>",
		"MAILGUN_DOMAIN="+mailgunDomain,
		"MAILGUN_API_KEY="+mailgunKey,
		"MAILGUN_API_BASE="+e.mailHTTP.URL+"/v3",
		"USHER_SECRET_KEY="+secretKey,
		"USHER_LOG_LEVEL=warn",
		// The load comes from one address; the limits on guessing are not under test.
		"USHER_PUBLIC_RATE_LIMIT=1000000",
		"USHER_TOKEN_RATE_LIMIT=1000000",
	)
	e.worker = &child{name: "worker", bin: o.bin, args: []string{"worker"}, env: childEnv, log: filepath.Join(e.dir, "worker.log")}
	e.api = &child{name: "api", bin: o.bin, args: []string{"api"}, env: childEnv, log: filepath.Join(e.dir, "api.log"),
		ready: func(ctx context.Context) error { return waitHTTP(ctx, e.apiURL+"/healthz") }}
	if err := e.worker.start(ctx); err != nil {
		return nil, err
	}
	if err := e.api.start(ctx); err != nil {
		return nil, err
	}
	if _, e.apiKey, err = e.store.CreateAPIKey(ctx, "usher-faults"); err != nil {
		return nil, err
	}
	e.http = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}
	org, err := e.call(ctx, "POST", "/v1/organizations", "", map[string]any{"name": "Faults " + name})
	if err != nil {
		return nil, err
	}
	if org.status != http.StatusCreated {
		return nil, fmt.Errorf("creating the organization: %d %s", org.status, org.raw)
	}
	e.org = org.str("id")
	return e, nil
}

func (e *env) stop() {
	if e.api != nil {
		e.api.stop()
	}
	if e.worker != nil {
		e.worker.stop()
	}
	if e.inbox != nil {
		e.inbox.close()
	}
	if e.mailHTTP != nil {
		e.mailHTTP.CloseClientConnections()
		e.mailHTTP.Close()
	}
	if e.tc != nil {
		e.tc.Close()
	}
	if e.db != nil {
		_ = e.db.Close()
	}
	if e.dropDB != nil {
		e.dropDB()
	}
	if e.temporal != nil {
		e.temporal.Stop()
	}
}

// createDatabase makes a freshly migrated database with a random name on serverDSN (as
// internal/testdb does, on any server).
func createDatabase(ctx context.Context, serverDSN string) (dsn string, db *sqlx.DB, drop func(), err error) {
	cfg, err := mysql.ParseDSN(serverDSN)
	if err != nil {
		return "", nil, nil, err
	}
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "usher_faults_" + hex.EncodeToString(suffix)
	server, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", nil, nil, err
	}
	defer server.Close()
	if _, err := server.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"); err != nil {
		return "", nil, nil, fmt.Errorf("creating a database on %s (is MariaDB running? run scripts/ensure-mariadb.sh): %w", cfg.Addr, err)
	}
	serverCfg := cfg.Clone()
	drop = func() {
		if db, err := sqlx.Open("mysql", serverCfg.FormatDSN()); err == nil {
			_, _ = db.Exec("DROP DATABASE IF EXISTS " + name)
			_ = db.Close()
		}
	}
	cfg.DBName = name
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	dsn = cfg.FormatDSN()
	if db, err = sqlx.Open("mysql", dsn); err != nil {
		drop()
		return "", nil, nil, err
	}
	db.SetMaxOpenConns(20)
	if err := migrations.Up(ctx, db.DB); err != nil {
		_ = db.Close()
		drop()
		return "", nil, nil, err
	}
	return dsn, db, drop, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitHTTP(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if res, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer: %w", url, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// child is a process of the usher binary (or any other) that a scenario kills and
// restarts. An exit nobody asked for is counted and the process started again, as a
// supervisor would.
type child struct {
	name  string
	bin   string
	args  []string
	env   []string
	log   string
	ready func(context.Context) error

	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	stopping   bool
	kills      int
	unexpected atomic.Int32
	lastExit   string
}

func (c *child) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.startLocked(ctx)
}

func (c *child) startLocked(ctx context.Context) error {
	logFile, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logFile, "=== %s: starting %s %v\n", time.Now().Format(time.RFC3339Nano), c.bin, c.args)
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The child dies with this program, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	exited := make(chan struct{})
	c.cmd, c.exited, c.stopping = cmd, exited, false
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logFile, "=== %s: exited: %v\n", time.Now().Format(time.RFC3339Nano), err)
		logFile.Close()
		close(exited)
		c.mu.Lock()
		intended := c.stopping || c.cmd != cmd
		if !intended {
			c.unexpected.Add(1)
			c.lastExit = fmt.Sprint(err)
			c.cmd = nil
		}
		c.mu.Unlock()
		if !intended {
			// A supervisor restarts a process that died on its own; the report counts it.
			time.Sleep(time.Second)
			c.mu.Lock()
			if c.cmd == nil && !c.stopping {
				_ = c.startLocked(context.Background())
			}
			c.mu.Unlock()
		}
	}()
	if c.ready != nil {
		if err := c.ready(ctx); err != nil {
			return fmt.Errorf("%s: %w (see %s)", c.name, err, c.log)
		}
	}
	return nil
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *child) kill() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.stopping = true
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
	c.mu.Lock()
	c.kills++
	c.cmd = nil
	c.mu.Unlock()
}

// restart starts the process again after a kill.
func (c *child) restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil {
		return errors.New(c.name + " is running")
	}
	return c.startLocked(ctx)
}

// stop ends the process with SIGTERM, then SIGKILL after 10 s.
func (c *child) stop() {
	c.mu.Lock()
	cmd, exited := c.cmd, c.exited
	c.stopping = true
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
	c.mu.Lock()
	c.cmd = nil
	c.mu.Unlock()
}
