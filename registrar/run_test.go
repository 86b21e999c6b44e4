package registrar

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/inventory/inventorytest"
)

// runCtr is a running container publishing 80/tcp on 8080.
func runCtr(id, name string) *inventory.Container {
	c := inventorytest.Container(id, name)
	c.Image = "img/" + name + ":1"
	c.Created = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	c.State.StartedAt = c.Created.Add(time.Second)
	c.NetworkMode = "bridge"
	c.Networks = []inventory.Network{{Name: "bridge", IPAddress: "172.17.0.2"}}
	c.Ports = []inventory.Port{{ContainerPort: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}}
	return c
}

type runHarness struct {
	r      *Registrar
	agent  *fakeAgent
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startRun runs a registrar on src inside the test's synctest bubble; it
// stops at the end of the test.
func startRun(t *testing.T, mod func(*Config), agent *fakeAgent, src inventory.Source) *runHarness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IP = "10.0.0.1"
	cfg.ReconcileInterval = 50 * time.Millisecond
	cfg.RetryInterval = 10 * time.Millisecond
	cfg.RetryMaxInterval = 40 * time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	r, err := newRegistrar(cfg, Deps{Source: src, NodeName: "n1"}, agent)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &runHarness{r: r, agent: agent, cancel: cancel}
	h.wg.Add(1)
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

// settle lets the bubble's fake clock run for d and waits until every
// goroutine is blocked again.
func settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
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

func (a *fakeAgent) readCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reads
}

// TestRunWaitsForInventorySync: services registered by an earlier run must
// not be removed while the inventory has not listed Docker yet.
func TestRunWaitsForInventorySync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agent := newFakeAgent()
		agent.services["n1:web:80"] = &consulapi.AgentServiceRegistration{ID: "n1:web:80", Name: "img", Meta: map[string]string{"managed_by": "heartwood", "heartwood_node": "n1"}}
		src := inventorytest.NewUnsynced(runCtr("c1", "web"))
		h := startRun(t, nil, agent, src)
		settle(time.Second) // many reconcile intervals
		if !agent.has("n1:web:80") {
			t.Fatal("service removed before the inventory synced")
		}
		if n := agent.totalWrites() + agent.readCount(); n != 0 {
			t.Fatalf("%d Consul calls before the inventory synced", n)
		}
		if h.r.Ready() == nil {
			t.Fatal("ready before the first reconcile")
		}
		src.Sync()
		synctest.Wait()
		if err := h.r.Ready(); err != nil {
			t.Fatalf("not ready after the sync: %v", err)
		}
		agent.mu.Lock()
		s := agent.services["n1:web:80"]
		agent.mu.Unlock()
		if s == nil || s.Meta["heartwood_hash"] == "" {
			t.Fatalf("not re-registered with our hash: %+v", s)
		}
	})
}

// TestRunBacksOffAndRecovers: while Consul is down the full reconcile is
// retried with growing waits (retry-interval up to retry-max-interval),
// and once it answers the registrar converges and is ready.
func TestRunBacksOffAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agent := newFakeAgent()
		agent.down = true
		h := startRun(t, nil, agent, inventorytest.New(runCtr("c1", "web")))
		const down = 2 * time.Second
		settle(down)
		if err := h.r.Ready(); err == nil {
			t.Fatal("ready while consul is down")
		}
		// Waits are jittered in [d/2, d]: at the 40ms cap, 2s hold 50 to
		// 100 attempts; without backoff (10ms) there would be up to 400.
		if n := agent.readCount(); n < int(down/(40*time.Millisecond)) || n > int(down/(20*time.Millisecond))+3 {
			t.Errorf("%d attempts in %s with retries between 10ms and 40ms", n, down)
		}
		agent.setDown(false)
		settle(40 * time.Millisecond)
		if err := h.r.Ready(); err != nil {
			t.Fatalf("not ready one max retry interval after consul returned: %v", err)
		}
		if !agent.has("n1:web:80") {
			t.Fatal("not registered after consul returned")
		}
	})
}

// TestRunFollowsInventoryChanges: a container started after the first sync
// is registered by an incremental reconcile, before the next full one; its
// removal deregisters it.
func TestRunFollowsInventoryChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		agent := newFakeAgent()
		src := inventorytest.New(runCtr("c1", "web"))
		startRun(t, func(c *Config) { c.ReconcileInterval = time.Hour }, agent, src)
		synctest.Wait()
		if !agent.has("n1:web:80") {
			t.Fatal("first container not registered")
		}
		src.Set("start", runCtr("c2", "api"))
		synctest.Wait()
		if !agent.has("n1:api:80") {
			t.Fatal("started container not registered")
		}
		src.Remove("c2")
		synctest.Wait()
		if agent.has("n1:api:80") {
			t.Fatal("removed container still registered")
		}
	})
}

func TestRunShutdown(t *testing.T) {
	for _, dereg := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			agent := newFakeAgent()
			h := startRun(t, func(c *Config) { c.DeregisterOnShutdown = dereg }, agent, inventorytest.New(runCtr("c1", "web")))
			synctest.Wait()
			if !agent.has("n1:web:80") {
				t.Fatal("not registered")
			}
			h.stop()
			if agent.has("n1:web:80") == dereg {
				t.Errorf("deregister-on-shutdown=%v: service present after stop = %v", dereg, agent.has("n1:web:80"))
			}
		})
	}
}

// TestKillSignalDrain: a kill drains the container's services unless the
// signal is a reload, or SIGKILL under a policy that deregisters on death
// (the death follows at once and deregisters them).
func TestKillSignalDrain(t *testing.T) {
	tests := []struct {
		policy, signal string
		drain          bool
	}{
		{DeregisterAlways, "15", true},
		{DeregisterAlways, "SIGTERM", true},
		{DeregisterAlways, "", true},
		{DeregisterAlways, "HUP", false},
		{DeregisterAlways, "9", false},
		{DeregisterAlways, "SIGKILL", false},
		{DeregisterOnSuccess, "KILL", false},
		{DeregisterOnSuccess, "TERM", true},
		{DeregisterNever, "9", true},
	}
	for _, tc := range tests {
		t.Run(tc.policy+"/"+tc.signal, func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Deregister = tc.policy })
			c := ctr("web")
			h.change(inventory.Added, "start", c)
			before := h.agent.totalWrites()
			dirty := map[string]time.Time{}
			h.r.ingest([]inventory.Change{{Kind: inventory.Updated, Action: "kill", Container: c, Time: h.now, Attributes: map[string]string{"signal": tc.signal}}}, dirty)
			if err := h.r.reconcile(context.Background(), false, dirty); err != nil {
				t.Fatal(err)
			}
			_, inMaint := h.agent.maint["n1:web:80"]
			if inMaint != tc.drain {
				t.Fatalf("kill -s %q under %s: in maintenance %t, want %t", tc.signal, tc.policy, inMaint, tc.drain)
			}
			wantWrites := 0
			if tc.drain {
				wantWrites = 1
			}
			if got := h.agent.totalWrites() - before; got != wantWrites {
				t.Fatalf("kill -s %q under %s: %d writes, want %d", tc.signal, tc.policy, got, wantWrites)
			}
			dead := *c
			dead.State = inventory.State{Status: "exited", ExitCode: 137, StartedAt: c.State.StartedAt}
			h.change(inventory.Updated, "die", &dead)
			if tc.policy == DeregisterNever {
				h.wantIDs("n1:web:80")
			} else {
				h.wantIDs()
			}
		})
	}
}
