package registrar

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/inventory/inventorytest"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

func benchContainer(i int) *inventory.Container {
	c := ctr(fmt.Sprintf("web%04d", i), "SERVICE_NAME=web", "SERVICE_TAGS=a,b,c", "SERVICE_CHECK_HTTP=/health", "SERVICE_REGION=eu")
	c.ID = fmt.Sprintf("%064d", i)
	c.Healthcheck = &inventory.Healthcheck{Test: []string{"CMD", "true"}}
	c.State.Health = "healthy"
	return c
}

// benchRegistrar returns a registrar on an in-memory fake agent after a
// full reconcile of n running containers.
func benchRegistrar(b *testing.B, n int) (*Registrar, *fakeAgent) {
	b.Helper()
	agent := newFakeAgent()
	cfg := DefaultConfig()
	cfg.IP = "10.0.0.1"
	r, err := newRegistrar(cfg, Deps{Source: inventorytest.New(), NodeName: "n1"}, agent)
	if err != nil {
		b.Fatal(err)
	}
	var changes []inventory.Change
	for i := range n {
		changes = append(changes, inventory.Change{Kind: inventory.Added, Container: benchContainer(i)})
	}
	r.ingest(changes, map[string]time.Time{})
	if err := r.reconcile(context.Background(), true, nil); err != nil {
		b.Fatal(err)
	}
	return r, agent
}

// BenchmarkTranslate measures one container's translation.
func BenchmarkTranslate(b *testing.B) {
	c := benchContainer(1)
	o := translate.Options{Node: "n1", HostIP: "10.0.0.1", DockerHealth: true, CheckInterval: "10s"}
	for b.Loop() {
		if len(translate.Translate(c, o).Services) != 1 {
			b.Fatal("no service")
		}
	}
}

// BenchmarkFullReconcileSteady500 measures the registrar's own work in a
// full reconcile of 500 containers that are all in sync (the agent is an
// in-memory fake, so Consul's time to answer the two reads is excluded).
func BenchmarkFullReconcileSteady500(b *testing.B) {
	r, agent := benchRegistrar(b, 500)
	w := agent.totalWrites()
	for b.Loop() {
		if err := r.reconcile(context.Background(), true, nil); err != nil {
			b.Fatal(err)
		}
	}
	if agent.totalWrites() != w {
		b.Fatalf("steady state wrote %d times", agent.totalWrites()-w)
	}
}

// BenchmarkEventToWrite measures the registrar's own work between an
// inventory change and its Consul write, with 500 other containers
// registered: one container starts (ownership check and registration) and
// then dies (deregistration) per iteration. The agent is an in-memory
// fake, so Consul's time to answer is excluded.
func BenchmarkEventToWrite(b *testing.B) {
	r, agent := benchRegistrar(b, 500)
	c := benchContainer(1000)
	dead := *c
	dead.State = inventory.State{Status: "exited", ExitCode: 137}
	dirty := map[string]time.Time{}
	ctx := context.Background()
	for b.Loop() {
		for _, ch := range []inventory.Change{
			{Kind: inventory.Added, Action: "start", Container: c, Time: time.Now()},
			{Kind: inventory.Updated, Action: "die", Container: &dead, Time: time.Now()},
		} {
			r.ingest([]inventory.Change{ch}, dirty)
			if err := r.reconcile(ctx, false, dirty); err != nil {
				b.Fatal(err)
			}
			clear(dirty)
		}
	}
	b.StopTimer()
	if _, ok := agent.services["n1:web1000:80"]; ok {
		b.Fatal("the dead container's service is still registered")
	}
}
