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

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"github.com/usherhq/usher/activities"
	"github.com/usherhq/usher/api"
	"github.com/usherhq/usher/internal/config"
	"github.com/usherhq/usher/internal/mail"
	"github.com/usherhq/usher/internal/metrics"
	"github.com/usherhq/usher/internal/sms"
	"github.com/usherhq/usher/internal/store"
	"github.com/usherhq/usher/internal/temporalsetup"
	"github.com/usherhq/usher/migrations"
	"github.com/usherhq/usher/worker"
	"github.com/usherhq/usher/workflows"
)

func newAPICommand() *cobra.Command {
	return connectedCommand("api", "Serve the HTTP API", config.Needs{MySQL: true, Temporal: true, HTTP: true},
		func(ctx context.Context, p *process) error {
			server, err := newAPIServer(p, nil)
			if err != nil {
				return err
			}
			return serveHTTP(ctx, "USHER_HTTP_ADDR", p.cfg.HTTPAddr, server.Handler(), p.logger)
		})
}

func newWorkerCommand() *cobra.Command {
	return connectedCommand("worker", "Run the Temporal worker (workflows and activities) and the invitation reconciler",
		config.Needs{MySQL: true, Temporal: true, Mail: true}, func(ctx context.Context, p *process) error {
			if err := checkSearchAttributes(ctx, p); err != nil {
				return err
			}
			g, ctx := errgroup.WithContext(ctx)
			if p.cfg.MetricsAddr != "" {
				g.Go(func() error {
					return serveHTTP(ctx, "USHER_METRICS_ADDR", p.cfg.MetricsAddr, metricsOnly(p.metrics), p.logger)
				})
			}
			g.Go(func() error { return runWorker(ctx, p) })
			return g.Wait()
		})
}

// process is what a long-running command works with: its configuration, MySQL, Temporal,
// logs and metrics.
type process struct {
	cfg      config.Config
	store    *store.Store
	temporal client.Client
	logger   *slog.Logger
	metrics  *metrics.Metrics
}

// connectedCommand is a subcommand that runs with the configuration, MySQL and Temporal.
func connectedCommand(use, short string, needs config.Needs, run func(context.Context, *process) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(config.Defaults, needs)
			if err != nil {
				return err
			}
			p := &process{cfg: cfg, logger: newLogger(cfg), metrics: metrics.New()}
			closeTemporal, err := p.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer closeTemporal()
			return run(cmd.Context(), p)
		},
	}
}

func newMigrateCommand() *cobra.Command {
	var skipTemporal bool
	var temporalWait time.Duration
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply the database migrations and register Usher's search attributes on the Temporal namespace",
		Long: `Applies the MySQL migrations embedded in this binary, then adds the custom search
attributes Usher's workflows set (UsherKind, UsherStatus, UsherOrganization, UsherExpiresAt)
to TEMPORAL_NAMESPACE at TEMPORAL_ADDRESS. Both steps are idempotent. Where Usher may not
call Temporal's operator service, pass --skip-temporal and run the printed
"temporal operator search-attribute create" commands instead.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			needs := config.Needs{MySQL: true, Temporal: !skipTemporal}
			cfg, err := config.Load(config.Defaults, needs)
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
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, "migrations applied")
			want := workflows.SearchAttributeTypes()
			if skipTemporal {
				fmt.Fprintf(out, "search attributes skipped; register them with:\n%s", temporalsetup.OperatorCommand(cfg.TemporalNamespace, want))
				return nil
			}
			added, err := registerSearchAttributes(cmd.Context(), cfg, temporalWait, want)
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "search attributes on namespace %q: %d added, %d already there\n", cfg.TemporalNamespace, len(added), len(want)-len(added))
			return nil
		},
	}
	cmd.Flags().BoolVar(&skipTemporal, "skip-temporal", false, "apply the MySQL migrations only and print the search-attribute commands")
	cmd.Flags().DurationVar(&temporalWait, "temporal-wait", 2*time.Minute, "how long to wait for Temporal to accept connections")
	return cmd
}

// registerSearchAttributes adds want to the namespace, waiting up to wait for a Temporal
// that is still starting (as in docker compose).
func registerSearchAttributes(ctx context.Context, cfg config.Config, wait time.Duration, want map[string]enums.IndexedValueType) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		added, err := func() ([]string, error) {
			tc, err := client.DialContext(ctx, client.Options{HostPort: cfg.TemporalAddress, Namespace: cfg.TemporalNamespace, Logger: sdklog.NewStructuredLogger(slog.New(slog.DiscardHandler))})
			if err != nil {
				return nil, err
			}
			defer tc.Close()
			return temporalsetup.EnsureSearchAttributes(ctx, tc.OperatorService(), cfg.TemporalNamespace, want)
		}()
		if err == nil {
			return added, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("registering search attributes at %s: %w", cfg.TemporalAddress, err)
		case <-time.After(2 * time.Second):
		}
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

// connect opens the database and a Temporal client; the returned function closes the client.
func (p *process) connect(ctx context.Context) (func(), error) {
	db, err := store.Open(p.cfg.MySQLDSN)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pingCtx); err != nil {
		return nil, fmt.Errorf("USHER_MYSQL_DSN: cannot reach MySQL: %w", err)
	}
	p.store = store.New(db, nil)
	return p.dialTemporal(ctx)
}

// dialTemporal connects to Temporal with the SDK's metrics on the process's registry, and
// counts the store's domain events in the funnel.
func (p *process) dialTemporal(ctx context.Context) (func(), error) {
	handler, closeMetrics := p.metrics.TemporalHandler()
	tc, err := client.DialContext(ctx, client.Options{
		HostPort: p.cfg.TemporalAddress, Namespace: p.cfg.TemporalNamespace,
		Logger:         sdklog.NewStructuredLogger(p.logger.With("component", "temporal-sdk")),
		MetricsHandler: handler,
	})
	if err != nil {
		_ = closeMetrics.Close()
		return nil, fmt.Errorf("TEMPORAL_ADDRESS: cannot reach Temporal at %s: %w", p.cfg.TemporalAddress, err)
	}
	p.temporal = tc
	p.store.SetEventObserver(func(e store.Event) { p.metrics.ObserveEvent(e.Type, e.OccurredAt, e.Data) })
	return func() {
		tc.Close()
		_ = closeMetrics.Close()
	}, nil
}

// checkSearchAttributes stops a worker whose namespace lacks Usher's search attributes:
// its workflows would fail every task that sets one.
func checkSearchAttributes(ctx context.Context, p *process) error {
	want := workflows.SearchAttributeTypes()
	missing, err := temporalsetup.MissingSearchAttributes(ctx, p.temporal.OperatorService(), p.cfg.TemporalNamespace, want)
	if err != nil {
		return fmt.Errorf("checking the search attributes of namespace %q: %w", p.cfg.TemporalNamespace, err)
	}
	if len(missing) > 0 {
		return fmt.Errorf("namespace %q lacks Usher's search attributes; run `usher migrate`, or:\n%s",
			p.cfg.TemporalNamespace, temporalsetup.OperatorCommand(p.cfg.TemporalNamespace, missing))
	}
	return nil
}

func metricsOnly(m *metrics.Metrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return mux
}

// newAPIServer builds the API from the configuration, failing on a broken page template
// override rather than at the first request.
func newAPIServer(p *process, extra map[string]http.Handler) (*api.Server, error) {
	cfg := p.cfg
	server := &api.Server{
		Store: p.store, Temporal: p.temporal, Logger: p.logger, Metrics: p.metrics, Extra: extra,
		Join:       api.JoinSettings{JoinSettings: joinSettings(cfg), SearchesPerMinute: cfg.PublicRateLimit},
		PageSecret: []byte(cfg.SecretKey), TemplatesDir: cfg.TemplatesDir, TrustedProxies: cfg.TrustedProxies,
		SMSEnabled: cfg.SMSConfigured(), WebhookSealer: webhookSealer(cfg), TokenGuessesPerMinute: cfg.TokenRateLimit,
	}
	server.MailgunWebhookSigningKey = cfg.MailgunWebhookSigningKey
	if cfg.SecretKey == "" {
		p.logger.Warn("USHER_SECRET_KEY is not set: hosted-page forms use a random key of this process, so run one API instance only")
	}
	if err := server.Validate(); err != nil {
		return nil, fmt.Errorf("USHER_TEMPLATES_DIR: %w", err)
	}
	return server, nil
}

func joinSettings(cfg config.Config) workflows.JoinSettings {
	return workflows.JoinSettings{DecisionWindow: cfg.JoinDecisionWindow, TellVisitorOnReject: cfg.JoinTellRejected}
}

// invitationSettings are what every invitation run follows after sending; the worker's
// configuration is their one source of truth (read by each run when it starts).
func invitationSettings(cfg config.Config) workflows.InvitationSettings {
	return workflows.InvitationSettings{Reminders: cfg.InvitationReminders, NotifyInviterOnExpiry: cfg.NotifyInviterOnExpiry}
}

func newMailer(cfg config.Config) *mail.Mailgun {
	return mail.NewMailgun(mail.MailgunConfig{
		Domain: cfg.MailgunDomain, APIKey: cfg.MailgunAPIKey, APIBase: cfg.MailgunAPIBase, From: cfg.EmailFrom,
	})
}

// runWorker runs the Temporal worker and the reconciler until ctx ends.
func runWorker(ctx context.Context, p *process) error {
	cfg, st, tc, logger := p.cfg, p.store, p.temporal, p.logger
	templates, err := mail.NewRenderer(cfg.TemplatesDir)
	if err != nil {
		return fmt.Errorf("USHER_TEMPLATES_DIR: %w", err)
	}
	acts := &activities.Activities{Store: st, Mail: newMailer(cfg), PublicURL: cfg.PublicURL, Templates: templates, Temporal: tc, Metrics: p.metrics}
	acts.Invitations = invitationSettings(cfg)
	if cfg.SMSConfigured() {
		acts.SMS = sms.NewTwilio(sms.TwilioConfig{
			AccountSID: cfg.TwilioAccountSID, AuthToken: cfg.TwilioAuthToken, From: cfg.TwilioFrom, APIBase: cfg.TwilioAPIBase,
		})
	}
	acts.WebhookSealer = webhookSealer(cfg)
	if cfg.WorkflowCacheSize > 0 {
		sdkworker.SetStickyWorkflowCacheSize(cfg.WorkflowCacheSize)
	}
	w := worker.New(tc, acts, worker.Options{SendsPerSecond: cfg.SendsPerSecond, WebhookRetryInitial: cfg.WebhookRetryInitial, Logger: logger})
	if err := w.Start(); err != nil {
		return fmt.Errorf("starting the worker: %w", err)
	}
	defer w.Stop()
	reconciler := &worker.Reconciler{Store: st, Temporal: tc, Logger: logger, Grace: 30 * time.Second, Interval: 15 * time.Second, Join: joinSettings(cfg)}
	reconciler.Run(ctx)
	return nil
}

// serveHTTP serves handler on addr, read from the named setting, until ctx ends, then
// drains for up to 10 s.
func serveHTTP(ctx context.Context, setting, addr string, handler http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", setting, err)
	}
	return serveListener(ctx, ln, handler, logger)
}

func serveListener(ctx context.Context, ln net.Listener, handler http.Handler, logger *slog.Logger) error {
	srv := api.NewHTTPServer(handler, logger)
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
