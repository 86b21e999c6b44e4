package registrar

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
)

// fakeDocker is a Docker engine for a real inventory: a fixed container
// list that is released only when listed is closed, and no events.
type fakeDocker struct {
	listed     chan struct{}
	containers []container.InspectResponse
}

func (d *fakeDocker) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	return make(chan events.Message), make(chan error)
}

func (d *fakeDocker) ContainerList(ctx context.Context, _ container.ListOptions) ([]container.Summary, error) {
	select {
	case <-d.listed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var out []container.Summary
	for _, c := range d.containers {
		out = append(out, container.Summary{ID: c.ID})
	}
	return out, nil
}

func (d *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	for _, c := range d.containers {
		if c.ID == id {
			return c, nil
		}
	}
	return container.InspectResponse{}, errNotFound{}
}

type errNotFound struct{}

func (errNotFound) Error() string { return "not found" }
func (errNotFound) NotFound()     {}

func inspectOf(id, name string) container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: id, Name: "/" + name, Created: "2024-01-01T00:00:00Z",
			State:      &container.State{Status: "running", Running: true, StartedAt: "2024-01-01T00:00:01Z"},
			HostConfig: &container.HostConfig{NetworkMode: "bridge"},
		},
		Config: &container.Config{Image: "img/" + name + ":1", ExposedPorts: nat.PortSet{"80/tcp": {}}},
		NetworkSettings: &container.NetworkSettings{
			NetworkSettingsBase: container.NetworkSettingsBase{Ports: nat.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8080"}}}},
			Networks:            map[string]*network.EndpointSettings{"bridge": {IPAddress: "172.17.0.2"}},
		},
	}
}

type runHarness struct {
	r      *Registrar
	agent  *fakeAgent
	docker *fakeDocker
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startRun(t *testing.T, mod func(*Config), agent *fakeAgent, docker *fakeDocker) *runHarness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IP = "10.0.0.1"
	cfg.ReconcileInterval = 50 * time.Millisecond
	cfg.RetryInterval = 10 * time.Millisecond
	cfg.RetryMaxInterval = 40 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	inv := inventory.New(docker, inventory.Options{})
	r, err := newRegistrar(cfg, Deps{Source: inv, NodeName: "n1"}, agent)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &runHarness{r: r, agent: agent, docker: docker, cancel: cancel}
	h.wg.Add(2)
	go func() { defer h.wg.Done(); _ = inv.Run(ctx) }()
	go func() {
		defer h.wg.Done()
		if err := r.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *runHarness) stop() {
	h.cancel()
	h.wg.Wait()
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (a *fakeAgent) has(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.services[id]
	return ok
}

func (a *fakeAgent) setDown(down bool) {
	a.mu.Lock()
	a.down = down
	a.mu.Unlock()
}

// TestRunWaitsForInventorySync: services registered by an earlier run must
// not be removed while the inventory has not listed Docker yet.
func TestRunWaitsForInventorySync(t *testing.T) {
	agent := newFakeAgent()
	agent.services["n1:web:80"] = &consulapi.AgentServiceRegistration{ID: "n1:web:80", Name: "img", Meta: map[string]string{"managed_by": "heartwood", "heartwood_node": "n1"}}
	docker := &fakeDocker{listed: make(chan struct{}), containers: []container.InspectResponse{inspectOf("c1", "web")}}
	h := startRun(t, nil, agent, docker)
	time.Sleep(200 * time.Millisecond) // several reconcile intervals
	if !agent.has("n1:web:80") {
		t.Fatal("service removed before the inventory synced")
	}
	if agent.totalWrites() != 0 {
		t.Fatalf("%d writes before the inventory synced", agent.totalWrites())
	}
	if h.r.Ready() == nil {
		t.Fatal("ready before the first reconcile")
	}
	close(docker.listed)
	eventually(t, "ready", func() bool { return h.r.Ready() == nil })
	eventually(t, "re-registration with our hash", func() bool {
		agent.mu.Lock()
		defer agent.mu.Unlock()
		s := agent.services["n1:web:80"]
		return s != nil && s.Meta["heartwood_hash"] != ""
	})
}

func TestRunBacksOffAndRecovers(t *testing.T) {
	agent := newFakeAgent()
	agent.down = true
	docker := &fakeDocker{listed: make(chan struct{}), containers: []container.InspectResponse{inspectOf("c1", "web")}}
	close(docker.listed)
	h := startRun(t, nil, agent, docker)
	time.Sleep(150 * time.Millisecond)
	if err := h.r.Ready(); err == nil {
		t.Fatal("ready while consul is down")
	}
	agent.setDown(false)
	eventually(t, "ready after consul returns", func() bool { return h.r.Ready() == nil })
	eventually(t, "registered", func() bool { return agent.has("n1:web:80") })
}

func TestRunShutdown(t *testing.T) {
	for _, dereg := range []bool{false, true} {
		agent := newFakeAgent()
		docker := &fakeDocker{listed: make(chan struct{}), containers: []container.InspectResponse{inspectOf("c1", "web")}}
		close(docker.listed)
		h := startRun(t, func(c *Config) { c.DeregisterOnShutdown = dereg }, agent, docker)
		eventually(t, "registered", func() bool { return agent.has("n1:web:80") })
		h.stop()
		if agent.has("n1:web:80") == dereg {
			t.Errorf("deregister-on-shutdown=%v: service present after stop = %v", dereg, agent.has("n1:web:80"))
		}
	}
}
