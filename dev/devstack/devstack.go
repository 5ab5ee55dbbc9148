// Package devstack runs a Temporal server and the Temporal Web UI inside the
// current process, backed by SQLite (in memory by default, or a file), so that
// loanflow can be developed and tested without a separately installed server.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/membership/static"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/primitives"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
)

// Options configures the embedded stack. Zero ports mean "pick a free port".
type Options struct {
	// Host the frontend and UI bind to; default 127.0.0.1.
	Host string
	// FrontendPort is the gRPC port clients dial (the conventional one is 7233).
	FrontendPort int
	// UIPort is the Web UI's HTTP port (the conventional one is 8233). Negative disables the UI.
	UIPort int
	// Namespace is registered at start; default "default".
	Namespace string
	// DatabaseFile keeps the server's state in a SQLite file; empty keeps it in memory.
	DatabaseFile string
	// Postgres, when set, keeps the server's state in Postgres instead of SQLite.
	Postgres *Postgres
	// SearchAttributes are registered on the namespace before the server starts.
	SearchAttributes map[string]enumspb.IndexedValueType
	// Logger receives the server's warnings and errors; nil discards them.
	Logger *slog.Logger
	// CodecEndpoint is the codec server the Web UI decodes payloads through
	// (the browser calls it with its cookies); empty shows payloads as stored.
	CodecEndpoint string
}

// Stack is a running embedded Temporal server and Web UI.
type Stack struct {
	server    temporal.Server
	stopping  *atomic.Bool // set by Stop; the server's logger reads it
	ui        *uiserver.Server
	uiErr     chan error
	Address   string // host:port of the gRPC frontend
	UIAddress string // base URL of the Web UI, empty when disabled
	Namespace string
}

// Start brings up the server and UI and returns once the frontend accepts connections.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Namespace == "" {
		o.Namespace = "default"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var err error
	if o.FrontendPort, err = portOrFree(o.Host, o.FrontendPort); err != nil {
		return nil, fmt.Errorf("frontend port: %w", err)
	}
	if o.UIPort >= 0 {
		if o.UIPort, err = portOrFree(o.Host, o.UIPort); err != nil {
			return nil, fmt.Errorf("web UI port: %w", err)
		}
	}
	conf, err := o.serverConfig(ctx)
	if err != nil {
		return nil, err
	}
	stopping := new(atomic.Bool)
	logger := serverLogger{log: o.Logger, stopping: stopping}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("create authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("create claim mapper: %w", err)
	}
	hosts := map[primitives.ServiceName]static.Hosts{}
	for name, svc := range map[primitives.ServiceName]string{
		primitives.FrontendService: "frontend",
		primitives.MatchingService: "matching",
		primitives.HistoryService:  "history",
		primitives.WorkerService:   "worker",
	} {
		hosts[name] = static.SingleLocalHost(net.JoinHostPort(o.Host, strconv.Itoa(conf.Services[svc].RPC.GRPCPort)))
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 200,
		// The defaults throttle a single busy namespace well below what one
		// process can serve; the dev stack is for load demos too.
		dynamicconfig.FrontendMaxNamespaceRPSPerInstance.Key(): 10000,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():       8192,
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithStaticHosts(hosts),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, fmt.Errorf("create temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("start temporal server: %w", err)
	}
	s := &Stack{
		server:    srv,
		stopping:  stopping,
		Address:   net.JoinHostPort(o.Host, strconv.Itoa(o.FrontendPort)),
		Namespace: o.Namespace,
	}
	if o.UIPort >= 0 {
		s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
			Host:                o.Host,
			Port:                o.UIPort,
			TemporalGRPCAddress: s.Address,
			EnableUI:            true,
			CORS:                uiconfig.CORS{CookieInsecure: true},
			Codec:               uiconfig.Codec{Endpoint: o.CodecEndpoint, IncludeCredentials: o.CodecEndpoint != ""},
			HideLogs:            true,
			DisableNewsFetch:    true,
		}))
		s.uiErr = make(chan error, 1)
		go func() { s.uiErr <- s.ui.Start() }()
		s.UIAddress = "http://" + net.JoinHostPort(o.Host, strconv.Itoa(o.UIPort))
		if err := waitListening(ctx, net.JoinHostPort(o.Host, strconv.Itoa(o.UIPort)), s.uiErr); err != nil {
			s.Stop()
			return nil, fmt.Errorf("start web UI on port %d: %w", o.UIPort, err)
		}
	}
	if err := waitListening(ctx, s.Address, nil); err != nil {
		s.Stop()
		return nil, fmt.Errorf("wait for temporal frontend: %w", err)
	}
	return s, nil
}

// Stop shuts the UI and the server down. The server's warnings and errors
// from then on go at debug level (see serverLogger).
func (s *Stack) Stop() {
	if s.stopping != nil {
		s.stopping.Store(true)
	}
	if s.ui != nil {
		s.ui.Stop()
	}
	if s.server != nil {
		_ = s.server.Stop()
	}
}

func (o *Options) serverConfig(ctx context.Context) (*config.Config, error) {
	var conf config.Config
	conf.Global.Membership.MaxJoinDuration = 30 * time.Second
	conf.Global.Membership.BroadcastAddress = o.Host
	if o.Postgres != nil {
		if err := o.Postgres.configure(ctx, &conf.Persistence, o); err != nil {
			return nil, err
		}
	} else {
		conf.Persistence.DefaultStore = "sqlite-default"
		conf.Persistence.VisibilityStore = "sqlite-default"
		conf.Persistence.NumHistoryShards = 1
		sqlConf, err := o.sqlConfig()
		if err != nil {
			return nil, err
		}
		conf.Persistence.DataStores = map[string]config.DataStore{"sqlite-default": {SQL: sqlConf}}
	}
	httpPort, err := freePort(o.Host)
	if err != nil {
		return nil, err
	}
	frontend := net.JoinHostPort(o.Host, strconv.Itoa(o.FrontendPort))
	conf.ClusterMetadata = &cluster.Config{
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {
				Enabled:                true,
				InitialFailoverVersion: 1,
				RPCAddress:             frontend,
				HTTPAddress:            net.JoinHostPort(o.Host, strconv.Itoa(httpPort)),
				ClusterID:              "6c0a4b5e-8f0e-4d4e-9c1b-1f0c1a6e1a10",
			},
		},
	}
	conf.DCRedirectionPolicy.Policy = "noop"
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		var svc config.Service
		svc.RPC.BindOnIP = o.Host
		if name == "frontend" {
			svc.RPC.GRPCPort = o.FrontendPort
			svc.RPC.HTTPPort = httpPort
		} else if svc.RPC.GRPCPort, err = freePort(o.Host); err != nil {
			return nil, err
		}
		conf.Services[name] = svc
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf, nil
}

func (o *Options) sqlConfig() (*config.SQL, error) {
	conf := config.SQL{PluginName: sqliteplugin.PluginName}
	if o.DatabaseFile == "" {
		conf.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		conf.DatabaseName = strconv.Itoa(rand.IntN(1_000_000_000))
	} else {
		conf.ConnectAttributes = map[string]string{"mode": "rwc"}
		conf.DatabaseName = o.DatabaseFile
		if _, err := os.Stat(o.DatabaseFile); errors.Is(err, os.ErrNotExist) {
			if _, err := os.Stat(filepath.Dir(o.DatabaseFile)); err != nil {
				return nil, fmt.Errorf("temporal database file %q: its folder is not usable: %w", o.DatabaseFile, err)
			}
			if err := sqliteschema.SetupSchema(&conf); err != nil {
				return nil, fmt.Errorf("set up schema in %q: %w", o.DatabaseFile, err)
			}
		}
	}
	ns, err := sqliteschema.NewNamespaceConfig("active", o.Namespace, false, o.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %q: %w", o.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(&conf, ns); err != nil {
		return nil, fmt.Errorf("create namespace %q: %w", o.Namespace, err)
	}
	return &conf, nil
}

func portOrFree(host string, port int) (int, error) {
	if port > 0 {
		return port, nil
	}
	return freePort(host)
}

// The server binds its ports some time after they are chosen. A port the
// kernel hands out for ":0" comes from the ephemeral range, which outgoing
// connections (Postgres and Redis pools, the SDK) draw their local ports
// from too: one of them can take the port in between, and the server then
// fails to listen. Ports are therefore drawn below that range, and never
// twice in one process.
const (
	portRangeLow  = 20000
	portRangeHigh = 32000 // Linux's ephemeral range starts at 32768
)

var (
	portsMu    sync.Mutex
	portsTaken = map[int]bool{}
)

func freePort(host string) (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 200 {
		p := portRangeLow + rand.IntN(portRangeHigh-portRangeLow)
		if portsTaken[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			continue
		}
		_ = l.Close()
		portsTaken[p] = true
		return p, nil
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", host, err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening polls addr until it accepts a TCP connection, failed reports
// an error, or ctx ends.
func waitListening(ctx context.Context, addr string, failed <-chan error) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case err := <-failed:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%s did not accept connections: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
