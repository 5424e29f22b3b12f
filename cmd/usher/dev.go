//go:build !nodev

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jmoiron/sqlx"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/usherhq/usher/internal/config"
	"github.com/usherhq/usher/internal/devtemporal"
	"github.com/usherhq/usher/internal/mailgunsrv"
	"github.com/usherhq/usher/internal/metrics"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/twiliosrv"
	"github.com/usherhq/usher/migrations"
	"github.com/usherhq/usher/workflows"
)

// devDefaults make `usher dev` run with nothing configured.
var devDefaults = func() config.Config {
	c := config.Defaults
	c.MySQLDSN = "root@tcp(127.0.0.1:3306)/usher"
	c.PublicURL = "http://localhost:8080"
	c.EmailFrom = "Usher <usher@usher.localhost>"
	c.MailgunDomain = "usher.localhost"
	c.MailgunAPIKey = "dev"
	return c
}()

func newDevCommand() *cobra.Command {
	var temporalDB string
	var temporalPort, uiPort int
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run everything in one process: Temporal server and UI, worker, API and a development mailbox",
		Long: `Runs an embedded Temporal server (gRPC on 127.0.0.1:7233, Web UI on :8233), the worker,
the API (USHER_HTTP_ADDR, default :8080) and, unless MAILGUN_API_BASE is set, a development
mailbox that catches every e-mail (listed at /dev/mail) and reports it delivered through
Mailgun's event webhook (/v1/webhooks/mailgun); mail to an address starting with "bounce"
bounces instead. MySQL comes from USHER_MYSQL_DSN,
default root@tcp(127.0.0.1:3306)/usher; the database is created and migrated if needed.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDev(cmd.Context(), devOptions{temporalDB: temporalDB, temporalPort: temporalPort, uiPort: uiPort})
		},
	}
	cmd.Flags().StringVar(&temporalDB, "temporal-db", ".usher-dev/temporal.db", `SQLite file for the embedded Temporal server ("" keeps it in memory)`)
	cmd.Flags().IntVar(&temporalPort, "temporal-port", 7233, "gRPC port of the embedded Temporal server")
	cmd.Flags().IntVar(&uiPort, "ui-port", 8233, "port of the Temporal Web UI (0 disables it)")
	return cmd
}

type devOptions struct {
	temporalDB           string
	temporalPort, uiPort int
}

func runDev(ctx context.Context, opts devOptions) error {
	began := time.Now()
	useMailbox := os.Getenv("MAILGUN_API_BASE") == ""
	cfg, err := config.Load(devDefaults, config.Needs{MySQL: true, HTTP: true, Mail: true})
	if err != nil {
		return err
	}
	logger := newLogger(cfg)
	if cfg.SecretKey == "" {
		// One process: a key of its own is enough for the hosted pages' forms.
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		cfg.SecretKey = hex.EncodeToString(key)
	}

	if err := createDatabase(ctx, cfg.MySQLDSN); err != nil {
		return err
	}
	db, err := store.Open(cfg.MySQLDSN)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Up(ctx, db.DB); err != nil {
		return err
	}
	st := store.New(db, nil)
	apiKey := os.Getenv("USHER_DEV_API_KEY")
	if apiKey == "" {
		_, apiKey, err = st.CreateAPIKey(ctx, "usher dev")
	} else {
		_, _, err = st.ImportAPIKey(ctx, "usher dev (USHER_DEV_API_KEY)", apiKey)
	}
	if err != nil {
		return err
	}

	temporal, err := devtemporal.Start(devtemporal.Options{
		Port: opts.temporalPort, UIPort: opts.uiPort, DBFile: opts.temporalDB,
		SearchAttributes: workflows.SearchAttributeTypes(),
		// The server logs every internal queue at info; only its warnings help here.
		Logger: slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("component", "temporal-server"),
	})
	if err != nil {
		return fmt.Errorf("starting the embedded Temporal server: %w", err)
	}
	defer temporal.Stop()
	cfg.TemporalAddress, cfg.TemporalNamespace = temporal.FrontendAddress(), temporal.Namespace()
	// One process, one registry: the API's /metrics shows the worker's metrics too.
	p := &process{cfg: cfg, store: st, logger: logger, metrics: metrics.New()}
	closeTemporal, err := p.dialTemporal(ctx)
	if err != nil {
		return err
	}
	defer closeTemporal()

	g, ctx := errgroup.WithContext(ctx)
	extra := map[string]http.Handler{}
	var mailbox *mailgunsrv.Server
	if useMailbox {
		// Like Mailgun, the mailbox reports deliveries by webhook; mail to bounce…@ bounces.
		mailbox = mailgunsrv.New(mailgunsrv.Options{Domain: cfg.MailgunDomain, APIKey: cfg.MailgunAPIKey, MaxMessages: 1000,
			WebhookDelay: time.Second, Bounce: mailgunsrv.BounceLocalPartPrefix("bounce")})
		if cfg.MailgunWebhookSigningKey == "" {
			key := make([]byte, 32)
			_, _ = rand.Read(key)
			cfg.MailgunWebhookSigningKey = hex.EncodeToString(key)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		cfg.MailgunAPIBase = "http://" + ln.Addr().String() + "/v3"
		g.Go(func() error { return serveListener(ctx, ln, mailbox, logger) })
		for _, path := range []string{"/dev/mail", "/dev/mail.json", "/dev/mail/:file"} {
			extra[path] = mailbox.MailboxHandler()
		}
	}

	useSMSBox := !cfg.SMSConfigured()
	if useSMSBox {
		phone := twiliosrv.New(twiliosrv.Options{AccountSID: "ACdev", AuthToken: "dev", CheckNumbers: true, MaxMessages: 1000})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		cfg.TwilioAccountSID, cfg.TwilioAuthToken, cfg.TwilioFrom = "ACdev", "dev", "+15005550006"
		cfg.TwilioAPIBase = "http://" + ln.Addr().String()
		g.Go(func() error { return serveListener(ctx, ln, phone, logger) })
		for _, path := range []string{"/dev/sms", "/dev/sms.json"} {
			extra[path] = phone.InboxHandler()
		}
	}

	apiListener, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("USHER_HTTP_ADDR: %w", err)
	}
	if mailbox != nil {
		port := apiListener.Addr().(*net.TCPAddr).Port
		mailbox.SetWebhook(fmt.Sprintf("http://127.0.0.1:%d/v1/webhooks/mailgun", port), cfg.MailgunWebhookSigningKey)
	}
	p.cfg = cfg // with the local providers' addresses
	server, err := newAPIServer(p, extra)
	if err != nil {
		return err
	}
	g.Go(func() error { return runWorker(ctx, p) })
	g.Go(func() error { return serveListener(ctx, apiListener, server.Handler(), logger) })

	printBanner(cfg, temporal, apiKey, useMailbox, time.Since(began))
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// createDatabase creates the database named in dsn if the server lacks it.
func createDatabase(ctx context.Context, dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return fmt.Errorf("USHER_MYSQL_DSN: %w", err)
	}
	name := cfg.DBName
	cfg.DBName = ""
	server, err := sqlx.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer server.Close()
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := server.PingContext(pingCtx); err != nil {
		return fmt.Errorf("USHER_MYSQL_DSN: cannot reach MySQL at %s (make dev installs and starts a local MariaDB): %w", cfg.Addr, err)
	}
	_, err = server.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+name+"` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
	return err
}

func printBanner(cfg config.Config, temporal *devtemporal.Server, apiKey string, mailbox bool, took time.Duration) {
	base := cfg.PublicURL
	fmt.Printf(`
Usher is running (ready in %s).

  API          %s            (OpenAPI: %s/openapi.yaml)
  API key      %s
  Temporal     %s  namespace %q
  Temporal UI  %s
`, took.Round(time.Millisecond), base, base, apiKey, temporal.FrontendAddress(), temporal.Namespace(), uiURL(temporal))
	if mailbox {
		fmt.Printf("  Mailbox      %s/dev/mail   (JSON: %s/dev/mail.json)\n", base, base)
		fmt.Printf("  SMS inbox    %s/dev/sms    (JSON: %s/dev/sms.json)\n", base, base)
	} else {
		fmt.Printf("  Mail         sent through %s\n", cfg.MailgunAPIBase)
	}
	fmt.Printf("\nTry:\n  export USHER_API_KEY=%s\n  curl -s -H \"Authorization: Bearer $USHER_API_KEY\" -d '{\"name\":\"Acme\"}' %s/v1/organizations\n\n", apiKey, base)
}

func uiURL(temporal *devtemporal.Server) string {
	if temporal.UIAddress() == "" {
		return "(disabled)"
	}
	return "http://" + temporal.UIAddress()
}
