package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/internal/config"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/sms"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/migrations"
	"github.com/usherhq/usher/worker"
	"github.com/usherhq/usher/workflows"
)

func newAPICommand() *cobra.Command {
	return connectedCommand("api", "Serve the HTTP API", config.Needs{MySQL: true, Temporal: true, HTTP: true},
		func(ctx context.Context, cfg config.Config, st *store.Store, tc client.Client, logger *slog.Logger) error {
			server, err := newAPIServer(cfg, st, tc, logger, nil)
			if err != nil {
				return err
			}
			return serveHTTP(ctx, cfg.HTTPAddr, server.Handler(), logger)
		})
}

func newWorkerCommand() *cobra.Command {
	return connectedCommand("worker", "Run the Temporal worker (workflows and activities) and the invitation reconciler",
		config.Needs{MySQL: true, Temporal: true, Mail: true}, runWorker)
}

// connectedCommand is a subcommand that runs with the configuration, MySQL and Temporal.
func connectedCommand(use, short string, needs config.Needs,
	run func(context.Context, config.Config, *store.Store, client.Client, *slog.Logger) error,
) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Defaults, needs)
			if err != nil {
				return err
			}
			logger := newLogger(cfg)
			st, tc, err := connect(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			defer tc.Close()
			return run(cmd.Context(), cfg, st, tc, logger)
		},
	}
}

func newMigrateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations embedded in this binary",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Defaults, config.Needs{MySQL: true})
			if err != nil {
				return err
			}
			db, err := store.Open(cfg.MySQLDSN)
			if err != nil {
				return err
			}
			defer db.Close()
			if err := migrations.Up(cmd.Context(), db.DB); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "migrations applied")
			return nil
		},
	}
}

func newAPIKeyCommand() *cobra.Command {
	apikey := &cobra.Command{Use: "apikey", Short: "Manage API keys"}
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key; it is printed once and stored only as a hash",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return errors.New("--name is required")
			}
			cfg, err := config.Load(config.Defaults, config.Needs{MySQL: true})
			if err != nil {
				return err
			}
			db, err := store.Open(cfg.MySQLDSN)
			if err != nil {
				return err
			}
			defer db.Close()
			id, key, err := store.New(db, nil).CreateAPIKey(cmd.Context(), name)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created API key %s (%s); it will not be shown again\n", id, name)
			fmt.Fprintln(cmd.OutOrStdout(), key)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "what the key is for (required)")
	apikey.AddCommand(create)
	return apikey
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// connect opens the database and a Temporal client.
func connect(ctx context.Context, cfg config.Config, logger *slog.Logger) (*store.Store, client.Client, error) {
	db, err := store.Open(cfg.MySQLDSN)
	if err != nil {
		return nil, nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return nil, nil, fmt.Errorf("USHER_MYSQL_DSN: cannot reach MySQL: %w", err)
	}
	tc, err := client.DialContext(ctx, client.Options{
		HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace,
		Logger: sdklog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("TEMPORAL_ADDRESS: cannot reach Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return store.New(db, nil), tc, nil
}

// newAPIServer builds the API from the configuration, failing on a broken page template
// override rather than at the first request.
func newAPIServer(cfg config.Config, st *store.Store, tc client.Client, logger *slog.Logger, extra map[string]http.Handler) (*api.Server, error) {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	server := &api.Server{
		Store: st, Temporal: tc, Logger: logger, Registry: registry, Extra: extra,
		Join:       api.JoinSettings{JoinSettings: joinSettings(cfg), SearchesPerMinute: cfg.PublicRateLimit},
		PageSecret: []byte(cfg.SecretKey), TemplatesDir: cfg.TemplatesDir, TrustedProxies: cfg.TrustedProxies,
		SMSEnabled: cfg.SMSConfigured(),
	}
	if cfg.SecretKey == "" {
		logger.Warn("USHER_SECRET_KEY is not set: hosted-page forms use a random key of this process, so run one API instance only")
	}
	if err := server.Validate(); err != nil {
		return nil, fmt.Errorf("USHER_TEMPLATES_DIR: %w", err)
	}
	return server, nil
}

func joinSettings(cfg config.Config) workflows.JoinSettings {
	return workflows.JoinSettings{DecisionWindow: cfg.JoinDecisionWindow, TellVisitorOnReject: cfg.JoinTellRejected}
}

func newMailer(cfg config.Config) *mail.Mailgun {
	return mail.NewMailgun(mail.MailgunConfig{
		Domain: cfg.MailgunDomain, APIKey: cfg.MailgunAPIKey, APIBase: cfg.MailgunAPIBase, From: cfg.EmailFrom,
	})
}

// runWorker runs the Temporal worker and the reconciler until ctx ends.
func runWorker(ctx context.Context, cfg config.Config, st *store.Store, tc client.Client, logger *slog.Logger) error {
	templates, err := mail.NewRenderer(cfg.TemplatesDir)
	if err != nil {
		return fmt.Errorf("USHER_TEMPLATES_DIR: %w", err)
	}
	acts := &activities.Activities{Store: st, Mail: newMailer(cfg), PublicURL: cfg.PublicURL, Templates: templates, Temporal: tc}
	if cfg.SMSConfigured() {
		acts.SMS = sms.NewTwilio(sms.TwilioConfig{
			AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken, From: cfg.TwilioFrom, APIBase: cfg.TwilioAPIBase,
		})
	}
	w := worker.New(tc, acts, worker.Options{SendsPerSecond: cfg.SendsPerSecond})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the worker: %w", err)
	}
	defer w.Stop()
	reconciler := &worker.Reconciler{Store: st, Temporal: tc, Logger: logger, Grace: 30 * time.Second, Interval: 15 * time.Second, Join: joinSettings(cfg)}
	reconciler.Run(ctx)
	return nil
}

// serveHTTP serves handler on addr until ctx ends, then drains for up to 10 s.
func serveHTTP(ctx context.Context, addr string, handler http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("USHER_HTTP_ADDR: %w", err)
	}
	return serveListener(ctx, ln, handler, logger)
}

func serveListener(ctx context.Context, ln net.Listener, handler http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      45 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
	return g.Wait()
}
