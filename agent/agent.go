// Package agent wires Heartwood together: one Docker client and inventory
// feeding the registrar, the shipper and the watchman, the HTTP API, and a
// supervisor that keeps them running until shutdown.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/heartwood-ops/heartwood/agent/api"
	"github.com/heartwood-ops/heartwood/agent/supervisor"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// BuildInfo identifies the running binary.
type BuildInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision"`
}

// Agent is one running Heartwood agent.
type Agent struct {
	cfg   Config
	build BuildInfo
	log   *slog.Logger

	registry *prometheus.Registry
	docker   *client.Client
	inv      *inventory.Inventory
	sup      *supervisor.Supervisor
	subs     []subsystem
	watchman *watchman.Watchman
	token    *tokenSource
	started  time.Time
	listener net.Listener
}

// subsystem is one enabled subsystem as the agent sees it.
type subsystem struct {
	name  string
	run   func(ctx context.Context) error
	ready func() error
	// describe may be nil.
	describe api.Describer
}

// New builds an agent from a validated configuration. It connects nothing
// yet: Run does.
func New(cfg Config, build BuildInfo, logger *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Resolve(); err != nil {
		return nil, err
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && cfg.MemoryLimit > 0 {
		// A soft limit: the collector works harder near it rather than
		// letting garbage double the heap (about 80 MB instead of 50 MB
		// while shipping from 100 containers, bench/agent).
		debug.SetMemoryLimit(int64(cfg.MemoryLimit))
	}
	a := &Agent{cfg: cfg, build: build, log: logger, registry: prometheus.NewRegistry(), started: time.Now()}
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "heartwood_build_info",
		Help:        "Heartwood's version and build; always 1.",
		ConstLabels: prometheus.Labels{"version": build.Version, "revision": build.Revision, "goversion": runtime.Version()},
	})
	buildInfo.Set(1)
	a.registry.MustRegister(buildInfo)

	docker, err := client.NewClientWithOpts(client.WithHost(cfg.DockerHost), client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker-host %s: %w", cfg.DockerHost, err)
	}
	a.docker = docker
	a.inv = inventory.New(docker, inventory.Options{
		Logger:     logger.With("subsystem", "inventory"),
		Registerer: a.registry,
	})
	// The supervisor names the unit on each of its lines.
	a.sup = supervisor.New(supervisor.Options{Logger: logger, Registerer: a.registry})
	a.token = &tokenSource{inline: strings.TrimSpace(cfg.APIToken), file: cfg.APITokenFile, log: logger.With("subsystem", "api")}
	if err := a.buildSubsystems(); err != nil {
		_ = docker.Close()
		return nil, err
	}
	return a, nil
}

// Run runs the agent until ctx is cancelled, then shuts down within the
// configured shutdown timeout.
func (a *Agent) Run(ctx context.Context) error {
	defer a.docker.Close()
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.Listen, err)
	}
	a.listener = ln
	srv := newServer(a.handler(), a.log)
	a.log.Info("heartwood starting", "version", a.build.Version, "node", a.cfg.NodeName,
		"api", "http://"+ln.Addr().String(), "docker", a.cfg.DockerHost, "subsystems", a.subsystemNames(),
		"self_container", inventory.ShortID(a.cfg.SelfContainerID))

	// The units run on their own context so that shutdown can be bounded
	// by the deadline rather than by ctx.
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	a.sup.Add("inventory", supervisor.UnitFunc(a.inv.Run))
	// Each subsystem is its own unit: one failing (at start or later) is
	// restarted with backoff while the others run. They start from a full
	// picture of the node because the inventory's Subscribe waits for the
	// first sync.
	for _, s := range a.subs {
		a.sup.Add(s.name, supervisor.UnitFunc(s.run))
	}
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		a.sup.Run(runCtx)
	}()
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-srvErr:
		runErr = fmt.Errorf("http api: %w", err)
	}
	a.log.Info("heartwood shutting down", "deadline", a.cfg.ShutdownTimeout)
	deadline := time.NewTimer(a.cfg.ShutdownTimeout)
	defer deadline.Stop()
	stop()
	select {
	case <-supDone:
	case <-deadline.C:
		runErr = errors.Join(runErr, fmt.Errorf("shutdown: subsystems did not stop within %s", a.cfg.ShutdownTimeout))
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		_ = srv.Close()
	}
	a.log.Info("heartwood stopped")
	return runErr
}

// Addr returns the API's listening address once Run has started.
func (a *Agent) Addr() net.Addr {
	if a.listener == nil {
		return nil
	}
	return a.listener.Addr()
}

// The API server's limits: a slow or hostile client cannot hold a
// connection or memory for long. The write timeout covers a pause or wake,
// which waits for the container (up to the control timeout of two minutes).
const (
	serverReadHeaderTimeout = 10 * time.Second
	serverReadTimeout       = 30 * time.Second
	serverWriteTimeout      = 150 * time.Second
	serverIdleTimeout       = 2 * time.Minute
	serverMaxHeaderBytes    = 64 << 10
)

// newServer returns the API's HTTP server with its timeouts and limits.
func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: serverReadHeaderTimeout,
		ReadTimeout:       serverReadTimeout,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    serverMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func (a *Agent) handler() http.Handler {
	opts := api.Options{
		Inventory:   a.inv,
		Describers:  map[string]api.Describer{},
		Checks:      map[string]api.Check{},
		Gatherer:    a.registry,
		Logger:      a.log.With("subsystem", "api"),
		Token:       a.token.Token,
		Exposed:     !a.cfg.ListenIsLoopback(),
		OpenMetrics: a.cfg.APIOpenMetrics,
		Status:      a.status,
	}
	for _, s := range a.subs {
		if s.describe != nil {
			opts.Describers[s.name] = s.describe
		}
		if s.ready != nil {
			opts.Checks[s.name] = s.ready
		}
	}
	opts.Checks["supervisor"] = a.unitsRunning
	opts.Controller = a.controller()
	return api.Handler(opts)
}

// unitsRunning fails while any unit waits to be restarted after a failure.
func (a *Agent) unitsRunning() error {
	var down []string
	for _, st := range a.sup.States() {
		if !st.Running {
			down = append(down, fmt.Sprintf("%s (restarts %d, last error: %s)", st.Name, st.Restarts, st.LastErr))
		}
	}
	if len(down) > 0 {
		return fmt.Errorf("not running: %s", strings.Join(down, "; "))
	}
	return nil
}

// Status is the body of GET /v1/status.
type Status struct {
	Build      BuildInfo          `json:"build"`
	Node       string             `json:"node"`
	Uptime     string             `json:"uptime"`
	Docker     DockerStatus       `json:"docker"`
	Subsystems []supervisor.State `json:"subsystems"`
}

// DockerStatus is the inventory's connection state.
type DockerStatus struct {
	Host       string `json:"host"`
	Connected  bool   `json:"connected"`
	Error      string `json:"error,omitempty"`
	Containers int    `json:"containers"`
}

func (a *Agent) status() any {
	ok, err := a.inv.Connected()
	ds := DockerStatus{Host: a.cfg.DockerHost, Connected: ok, Containers: len(a.inv.List())}
	if err != nil {
		ds.Error = err.Error()
	}
	return Status{
		Build:      a.build,
		Node:       a.cfg.NodeName,
		Uptime:     time.Since(a.started).Round(time.Second).String(),
		Docker:     ds,
		Subsystems: a.sup.States(),
	}
}

func (a *Agent) subsystemNames() []string {
	names := make([]string, 0, len(a.subs))
	for _, s := range a.subs {
		names = append(names, s.name)
	}
	return names
}
