//go:build integration

package registrar_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar"
)

// itest is one integration test's world: a Docker engine, a Consul agent,
// a run ID that scopes containers and a node name that scopes services.
type itest struct {
	t      *testing.T
	docker *client.Client
	consul *consulapi.Client
	// regConsul is the registrar's client; nil means consul. A test that
	// must see Consul without the registrar writing to it points it at a
	// proxy it can cut.
	regConsul *consulapi.Client
	runID     string
	node      string
	image     string
}

func newITest(t *testing.T, docker *client.Client, consulAddr string) *itest {
	t.Helper()
	cfg := consulapi.DefaultConfig()
	cfg.Address = consulAddr
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	it := &itest{t: t, docker: docker, consul: c, runID: testenv.RunID()}
	it.node = "hwtest-" + it.runID
	it.image = testenv.Busybox(t, docker)
	t.Cleanup(func() {
		svcs, err := c.Agent().ServicesWithFilter(fmt.Sprintf(`Meta.heartwood_node == %q`, it.node))
		if err != nil {
			return // a private Consul may already be gone
		}
		for id := range svcs {
			_ = c.Agent().ServiceDeregister(id)
		}
	})
	return it
}

// config is the registrar config tests start from: only this run's
// containers, published ports on 127.0.0.1.
func (it *itest) config() registrar.Config {
	cfg := registrar.DefaultConfig()
	cfg.IP = "127.0.0.1"
	cfg.RequireLabels = []string{testenv.LabelTest + "=" + it.runID}
	cfg.ReconcileInterval = 5 * time.Second
	cfg.RetryMaxInterval = time.Second
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("HEARTWOOD_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// agentRun is a running inventory + registrar pair, as the agent wires them.
type agentRun struct {
	inv    *inventory.Inventory
	reg    *registrar.Registrar
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *agentRun) stop() {
	a.cancel()
	<-a.done
}

// start runs an inventory on docker and a registrar on it until stop or the
// test's end.
func (it *itest) start(docker inventory.DockerAPI, cfg registrar.Config) *agentRun {
	it.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	inv := inventory.New(docker, inventory.Options{Logger: testLogger(it.t), MaxBackoff: 500 * time.Millisecond})
	regConsul := it.consul
	if it.regConsul != nil {
		regConsul = it.regConsul
	}
	reg, err := registrar.New(cfg, registrar.Deps{Source: inv, Consul: regConsul, NodeName: it.node, Logger: testLogger(it.t), Registerer: prometheus.NewRegistry()})
	if err != nil {
		it.t.Fatal(err)
	}
	a := &agentRun{inv: inv, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		invDone := make(chan struct{})
		go func() { defer close(invDone); _ = inv.Run(ctx) }()
		if err := reg.Run(ctx); err != nil {
			it.t.Errorf("registrar.Run: %v", err)
		}
		<-invDone
	}()
	it.t.Cleanup(a.stop)
	return a
}

// services returns this run's services on the agent.
func (it *itest) services() map[string]*consulapi.AgentService {
	it.t.Helper()
	svcs, err := it.consul.Agent().ServicesWithFilter(fmt.Sprintf(`Meta.heartwood_node == %q`, it.node))
	if err != nil {
		it.t.Fatalf("list services: %v", err)
	}
	return svcs
}

func (it *itest) serviceIDs() []string {
	svcs := it.services()
	ids := make([]string, 0, len(svcs))
	for id := range svcs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// waitIDs waits until exactly want are registered and returns how long it
// took.
func (it *itest) waitIDs(timeout time.Duration, want ...string) time.Duration {
	it.t.Helper()
	sort.Strings(want)
	return poll.Until(it.t, timeout, fmt.Sprintf("services %v", want), func() (bool, string) {
		got := it.serviceIDsQuiet()
		return strings.Join(got, ",") == strings.Join(want, ","), fmt.Sprintf("services = %v", got)
	})
}

func (it *itest) serviceIDsQuiet() []string {
	svcs, err := it.consul.Agent().ServicesWithFilter(fmt.Sprintf(`Meta.heartwood_node == %q`, it.node))
	if err != nil {
		return []string{"<error: " + err.Error() + ">"}
	}
	ids := make([]string, 0, len(svcs))
	for id := range svcs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// id is the Registrator-format service ID for a container port.
func (it *itest) id(name string, port string) string { return it.node + ":" + name + ":" + port }

// spec is a busybox container that sleeps, with the given env, labels and
// exposed ports ("80/tcp"), published on random host ports unless
// unpublished is set.
type spec struct {
	name        string
	env         []string
	labels      map[string]string
	ports       []string
	unpublished bool
	cmd         []string
	health      *container.HealthConfig
	restart     string
	netMode     string
}

func (it *itest) run(cli *client.Client, s spec) string {
	it.t.Helper()
	cfg := &container.Config{Image: it.image, Cmd: s.cmd, Env: s.env, Labels: s.labels, Healthcheck: s.health, ExposedPorts: nat.PortSet{}}
	if cfg.Cmd == nil {
		cfg.Cmd = []string{"sleep", "3600"}
	}
	hc := &container.HostConfig{PortBindings: nat.PortMap{}, NetworkMode: container.NetworkMode(s.netMode)}
	if s.restart != "" {
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyMode(s.restart)}
	}
	for _, p := range s.ports {
		cfg.ExposedPorts[nat.Port(p)] = struct{}{}
		if !s.unpublished && s.netMode != "host" {
			hc.PortBindings[nat.Port(p)] = []nat.PortBinding{{HostIP: "127.0.0.1"}}
		}
	}
	return testenv.Run(it.t, cli, it.runID, testenv.Spec{Name: s.name, Config: cfg, HostConfig: hc})
}

func (it *itest) name(base string) string { return "hw-" + it.runID + "-" + base }

func (it *itest) inspect(cli *client.Client, id string) container.InspectResponse {
	it.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	in, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		it.t.Fatal(err)
	}
	return in
}

// hostPort returns the host port Docker bound for a container port.
func (it *itest) hostPort(cli *client.Client, id, port string) string {
	it.t.Helper()
	in := it.inspect(cli, id)
	b := in.NetworkSettings.Ports[nat.Port(port)]
	if len(b) == 0 {
		it.t.Fatalf("%s not published", port)
	}
	return b[0].HostPort
}

func (it *itest) remove(cli *client.Client, id string) {
	it.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
		it.t.Fatalf("remove: %v", err)
	}
}

// checks returns the agent's checks of one service, by check ID.
func (it *itest) checks(serviceID string) map[string]*consulapi.AgentCheck {
	it.t.Helper()
	cs, err := it.consul.Agent().ChecksWithFilter(fmt.Sprintf(`ServiceID == %q`, serviceID))
	if err != nil {
		it.t.Fatalf("checks: %v", err)
	}
	return cs
}
