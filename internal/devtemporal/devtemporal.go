// Package devtemporal runs a real Temporal server (frontend, history,
// matching and worker services, SQLite persistence) inside the current
// process, optionally with the Temporal Web UI. It backs `usher dev` and the
// integration tests, where no Temporal binary can be downloaded.
//
// Several servers can run in one process: every server gets its own ports,
// its own SQLite database and its own logger. Internal services find each
// other through static host lists (no ringpop gossip), which also makes
// start-up fast.
package devtemporal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	"go.temporal.io/server/common/searchattribute/sadefs"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"

	"github.com/usherhq/usher/internal/temporalsetup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	defaultHost      = "127.0.0.1"
	defaultNamespace = "default"
	clusterName      = "active"
	internalIP       = "127.0.0.1" // history, matching and worker always listen here

	readyTimeout = 60 * time.Second
	// startAttempts bounds retries when a randomly chosen port was taken by
	// someone else between choosing it and binding it.
	startAttempts = 3
)

// Options configures Start. The zero value is usable: an in-memory server on
// a random port of 127.0.0.1 with the "default" namespace and no UI.
type Options struct {
	Host      string // listen host, default "127.0.0.1"
	Port      int    // gRPC frontend port; 0 picks a free port
	UIPort    int    // Temporal Web UI port; 0 means no UI
	Namespace string // default "default"; registered at start
	DBFile    string // SQLite file; "" means in-memory (mode=memory)
	// Logger receives the server's logs. nil discards them (they are very
	// noisy: use a handler with level Warn or above for anything but
	// debugging).
	Logger *slog.Logger
	// SearchAttributes to register on the namespace at start: name -> type.
	SearchAttributes map[string]enums.IndexedValueType
}

// Server is a running in-process Temporal server.
type Server struct {
	namespace    string
	frontendAddr string
	uiAddr       string

	temporal temporal.Server
	logState *loggerState
	ui       *uiserver.Server
	uiDone   chan struct{}

	stopOnce sync.Once
}

// FrontendAddress is the "host:port" a Temporal client dials.
//
// When Host is a wildcard address (0.0.0.0, ::) the loopback address is
// returned instead, so the value is always dialable from this machine.
func (s *Server) FrontendAddress() string { return s.frontendAddr }

// Namespace is the namespace registered at start.
func (s *Server) Namespace() string { return s.namespace }

// UIAddress is the Web UI's "host:port", or "" when the UI is off.
func (s *Server) UIAddress() string { return s.uiAddr }

// Stop shuts the UI and the Temporal server down and silences the server's
// logger. It is safe to call more than once and from several goroutines. It
// takes about a second: the frontend drains for at least 1 s (hard-coded
// minimum in the server).
//
// Leftovers, all upstream (server v1.32.1) and harmless for tests and
// `usher dev`: the SQLite plugin keeps a process-wide connection per database
// for the life of the process, so the memory of an in-memory database is not
// given back and a DBFile stays open until the process exits (a new server
// on the same file in the same process reuses that connection); and about a
// hundred goroutines of the worker service's internal scanners keep retrying
// their polls, with backoff, after Stop.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		if s.ui != nil {
			s.ui.Stop()
			select {
			case <-s.uiDone:
			case <-time.After(5 * time.Second):
			}
		}
		// Shutting down makes the server log a burst of warnings (pollers
		// losing their connections); none of it is useful here.
		if s.logState != nil {
			s.logState.stopped.Store(true)
		}
		if s.temporal != nil {
			_ = safeCall(func() error { return s.temporal.Stop() })
		}
	})
}

// Start starts the server and returns once the frontend answers gRPC for the
// namespace and the requested search attributes are registered (and the UI,
// if any, answers HTTP).
func Start(opts Options) (*Server, error) {
	if opts.Namespace == "" {
		opts.Namespace = defaultNamespace
	}
	if opts.Host == "" {
		opts.Host = defaultHost
	}
	if opts.Port < 0 || opts.Port > 65535 || opts.UIPort < 0 || opts.UIPort > 65535 {
		return nil, fmt.Errorf("devtemporal: invalid port (Port=%d UIPort=%d)", opts.Port, opts.UIPort)
	}
	for name, typ := range opts.SearchAttributes {
		if sadefs.IsReserved(name) {
			return nil, fmt.Errorf("devtemporal: search attribute %q is a reserved name", name)
		}
		if _, ok := enums.IndexedValueType_name[int32(typ)]; !ok || typ == enums.INDEXED_VALUE_TYPE_UNSPECIFIED {
			return nil, fmt.Errorf("devtemporal: search attribute %q has invalid type %v", name, typ)
		}
	}

	listenIP, dialIP, err := resolveHost(opts.Host)
	if err != nil {
		return nil, err
	}
	if opts.Port != 0 {
		if err := checkBindable(listenIP, opts.Port); err != nil {
			return nil, err
		}
	}
	if opts.UIPort != 0 {
		if opts.UIPort == opts.Port {
			return nil, fmt.Errorf("devtemporal: UIPort and Port are both %d", opts.Port)
		}
		if err := checkBindable(listenIP, opts.UIPort); err != nil {
			return nil, err
		}
	}

	sqlConf, err := prepareDatabase(opts)
	if err != nil {
		return nil, err
	}

	var (
		srv          temporal.Server
		frontendAddr string
		logger       *serverLogger
	)
	for attempt := 1; ; attempt++ {
		logger = &serverLogger{log: opts.Logger, state: &loggerState{}}
		srv, frontendAddr, err = startTemporal(opts, listenIP, dialIP, sqlConf, logger)
		if err == nil {
			break
		}
		if attempt >= startAttempts || !isAddrInUse(err) {
			return nil, err
		}
		if opts.Logger != nil {
			opts.Logger.Warn("devtemporal: port collision, retrying with new ports", "attempt", attempt, "error", err)
		}
	}

	s := &Server{
		namespace:    opts.Namespace,
		frontendAddr: frontendAddr,
		temporal:     srv,
		logState:     logger.state,
	}

	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := s.waitReadyAndRegister(ctx, opts.SearchAttributes); err != nil {
		s.Stop()
		return nil, err
	}

	if opts.UIPort != 0 {
		if err := s.startUI(ctx, listenIP, dialIP, opts); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// resolveHost turns Options.Host into the IP to listen on and the IP to dial.
func resolveHost(host string) (listenIP, dialIP string, err error) {
	ip := net.ParseIP(strings.Trim(host, "[]"))
	if ip == nil {
		addrs, lerr := net.DefaultResolver.LookupIPAddr(context.Background(), host)
		if lerr != nil || len(addrs) == 0 {
			return "", "", fmt.Errorf("devtemporal: cannot resolve host %q: %v", host, lerr)
		}
		ip = addrs[0].IP
		for _, a := range addrs { // prefer IPv4, like the rest of the stack
			if a.IP.To4() != nil {
				ip = a.IP
				break
			}
		}
	}
	listenIP = ip.String()
	dialIP = listenIP
	if ip.IsUnspecified() {
		dialIP = "127.0.0.1"
		if ip.To4() == nil {
			dialIP = "::1"
		}
	}
	return listenIP, dialIP, nil
}

var memDBCounter atomic.Int64

// prepareDatabase returns the SQLite config, creating the schema for a new
// DBFile, and pre-registers the namespace (with its search attributes) when
// it does not exist yet.
func prepareDatabase(opts Options) (*config.SQL, error) {
	conf := &config.SQL{PluginName: sqliteplugin.PluginName}
	if opts.DBFile == "" {
		// The plugin creates the schema itself for mode=memory. The name must be
		// unique per server: shared-cache in-memory databases are per process
		// and keyed by name.
		conf.DatabaseName = fmt.Sprintf("devtemporal-%d-%d-%d", os.Getpid(), memDBCounter.Add(1), rand.Int64())
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
	} else {
		path, err := filepath.Abs(opts.DBFile)
		if err != nil {
			return nil, fmt.Errorf("devtemporal: database file: %w", err)
		}
		conf.DatabaseName = path
		conf.ConnectAttributes = map[string]string{"mode": "rwc"}
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return nil, fmt.Errorf("devtemporal: database dir: %w", err)
			}
			if err := sqliteschema.SetupSchema(conf); err != nil {
				_ = os.Remove(path)
				return nil, fmt.Errorf("devtemporal: setting up SQLite schema in %s: %w", path, err)
			}
		} else if err != nil {
			return nil, fmt.Errorf("devtemporal: database file: %w", err)
		}
	}

	// Registering the namespace directly in the database (before the server
	// runs) lets the search attribute aliases be part of the namespace from
	// the first moment, with no cache-refresh lag. If the namespace already
	// exists (reused DBFile) this is a no-op and missing attributes are added
	// through the operator service after start.
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("devtemporal: namespace %q: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return nil, fmt.Errorf("devtemporal: registering namespace %q: %w", opts.Namespace, err)
	}
	return conf, nil
}

// choosePort picks the free ports of a server; tests replace it to force a
// port collision.
var choosePort = freePort

type servicePorts struct {
	grpc, membership int
}

// startTemporal builds and starts the Temporal services once, with freshly
// chosen internal ports.
func startTemporal(opts Options, listenIP, dialIP string, sqlConf *config.SQL, logger *serverLogger) (srv temporal.Server, frontendAddr string, err error) {
	services := []primitives.ServiceName{
		primitives.FrontendService, primitives.HistoryService, primitives.MatchingService, primitives.WorkerService,
	}
	ports := map[primitives.ServiceName]servicePorts{}
	for _, svc := range services {
		var p servicePorts
		if svc == primitives.FrontendService && opts.Port != 0 {
			p.grpc = opts.Port
		} else {
			ip := internalIP
			if svc == primitives.FrontendService {
				ip = listenIP
			}
			if p.grpc, err = choosePort(ip); err != nil {
				return nil, "", err
			}
		}
		// Membership ports are only used by ringpop, which static hosts
		// replace; they still get unique ports so nothing clashes should the
		// server decide to bind them.
		if p.membership, err = choosePort(internalIP); err != nil {
			return nil, "", err
		}
		ports[svc] = p
	}
	frontendAddr = net.JoinHostPort(dialIP, strconv.Itoa(ports[primitives.FrontendService].grpc))
	// The frontend's HTTP API (needed for Nexus; without it the server warns
	// at every start) listens on the frontend's IP.
	httpPort, err := choosePort(listenIP)
	if err != nil {
		return nil, "", err
	}

	conf := &config.Config{}
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = internalIP
	// Global.Metrics stays nil: no-op metrics, no Prometheus listener and no
	// process-global registry shared between servers. PProf port 0 = off.
	conf.Persistence = config.Persistence{
		DefaultStore:     "sqlite-default",
		VisibilityStore:  "sqlite-default",
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{"sqlite-default": {SQL: sqlConf}},
	}
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        clusterName,
		CurrentClusterName:       clusterName,
		ClusterInformation: map[string]cluster.ClusterInformation{
			clusterName: {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontendAddr,
				HTTPAddress:            net.JoinHostPort(dialIP, strconv.Itoa(httpPort)),
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for _, svc := range services {
		ip := internalIP
		hostIP := internalIP
		if svc == primitives.FrontendService {
			ip, hostIP = listenIP, dialIP
		}
		rpc := config.RPC{
			GRPCPort:       ports[svc].grpc,
			MembershipPort: ports[svc].membership,
			BindOnIP:       ip,
		}
		if svc == primitives.FrontendService {
			rpc.HTTPPort = httpPort
		}
		conf.Services[string(svc)] = config.Service{RPC: rpc}
		hosts[svc] = static.SingleLocalHost(net.JoinHostPort(hostIP, strconv.Itoa(ports[svc].grpc)))
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	// The worker service's own SDK client dials this.
	conf.PublicClient.HostPort = frontendAddr

	dynConf := dynamicconfig.StaticClient{
		// A dev server is queried by the UI and by tests in tight loops.
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 100,
		// Search attributes added after start are visible at once.
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): true,
		// Bound host memory; the default is sized for production hosts.
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key(): 8192,
	}

	serverOpts := []temporal.ServerOption{
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorization.NewNoopAuthorizer()),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper {
			return authorization.NewNoopClaimMapper()
		}),
		temporal.WithDynamicConfigClient(dynConf),
	}

	logger.state.starting.Store(true)
	defer logger.state.starting.Store(false)

	err = safeCall(func() error {
		var nerr error
		srv, nerr = temporal.NewServer(serverOpts...)
		if nerr != nil {
			return fmt.Errorf("devtemporal: creating server: %w", nerr)
		}
		if serr := srv.Start(); serr != nil {
			return fmt.Errorf("devtemporal: starting server: %w", serr)
		}
		return nil
	})
	if err != nil {
		logger.state.starting.Store(false)
		logger.state.stopped.Store(true) // silence whatever this attempt leaves behind
		if srv != nil {
			_ = safeCall(func() error { return srv.Stop() })
		}
		return nil, "", err
	}
	return srv, frontendAddr, nil
}

// safeCall runs f and turns a panic (including the logger's fatalPanic) into
// an error.
func safeCall(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if fp, ok := r.(fatalPanic); ok {
				err = fp
				return
			}
			err = fmt.Errorf("devtemporal: panic: %v", r)
		}
	}()
	return f()
}

func isAddrInUse(err error) bool {
	return err != nil && strings.Contains(err.Error(), "address already in use")
}

// waitReadyAndRegister waits until the frontend answers DescribeNamespace
// and makes sure the requested search attributes exist on the namespace.
func (s *Server) waitReadyAndRegister(ctx context.Context, want map[string]enums.IndexedValueType) error {
	conn, err := grpc.NewClient(s.frontendAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("devtemporal: dialing frontend %s: %w", s.frontendAddr, err)
	}
	defer conn.Close()
	wf := workflowservice.NewWorkflowServiceClient(conn)
	op := operatorservice.NewOperatorServiceClient(conn)

	var lastErr error
	for {
		callCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, lastErr = wf.DescribeNamespace(callCtx, &workflowservice.DescribeNamespaceRequest{Namespace: s.namespace})
		cancel()
		if lastErr == nil {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devtemporal: frontend %s not ready: %w", s.frontendAddr, lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}

	if len(want) == 0 {
		return nil
	}
	if _, err := temporalsetup.EnsureSearchAttributes(ctx, op, s.namespace, want); err != nil {
		return fmt.Errorf("devtemporal: %w", err)
	}
	return nil
}

// startUI runs the Temporal Web UI in a goroutine and waits until it answers.
//
// Caveat (ui-server v2.54.1): Server.Start calls echo's Logger.Fatal, i.e.
// os.Exit(1), if it cannot listen. Start checked the port is free just
// before, which leaves only a tiny race window.
func (s *Server) startUI(ctx context.Context, listenIP, dialIP string, opts Options) error {
	if err := checkBindable(listenIP, opts.UIPort); err != nil {
		return err
	}
	host := listenIP
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                host,
		Port:                opts.UIPort,
		TemporalGRPCAddress: s.frontendAddr,
		EnableUI:            true,
		DefaultNamespace:    s.namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true, // no internet access needed or wanted
	}))
	s.uiDone = make(chan struct{})
	go func() {
		defer close(s.uiDone)
		if err := s.ui.Start(); err != nil && opts.Logger != nil {
			opts.Logger.Error("devtemporal: UI server stopped", "error", err)
		}
	}()
	s.uiAddr = net.JoinHostPort(dialIP, strconv.Itoa(opts.UIPort))

	client := &http.Client{Timeout: 2 * time.Second}
	url := "http://" + s.uiAddr + "/healthz"
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("devtemporal: UI on %s not ready: %w", s.uiAddr, err)
		case <-s.uiDone:
			return fmt.Errorf("devtemporal: UI on %s exited during start", s.uiAddr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
