//go:build integration

package registrar_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationConsulRestart restarts a private Consul dev agent (which
// loses every registration and maintenance state) and stops it while
// containers change: the registrar converges within the reconcile period
// once Consul is back.
func TestIntegrationConsulRestart(t *testing.T) {
	docker := testenv.Docker(t)
	pc := testenv.StartPrivateConsul(t)
	it := newITest(t, docker, pc.Addr)
	// The registrar reaches Consul through a proxy, so that the test can
	// see the restarted agent empty before the registrar writes again.
	proxy := testenv.NewProxy(t, pc.Addr)
	pcfg := consulapi.DefaultConfig()
	pcfg.Address = proxy.Addr
	regConsul, err := consulapi.NewClient(pcfg)
	if err != nil {
		t.Fatal(err)
	}
	it.regConsul = regConsul
	cfg := it.config()
	cfg.ReconcileInterval = 2 * time.Second
	cfg.RetryMaxInterval = 500 * time.Millisecond
	a := it.start(docker, cfg)

	var ids []string
	for i := range 3 {
		ids = append(ids, it.run(docker, spec{name: it.name(fmt.Sprint("c", i)), ports: []string{"80/tcp"}}))
	}
	all := []string{it.id(it.name("c0"), "80"), it.id(it.name("c1"), "80"), it.id(it.name("c2"), "80")}
	it.waitIDs(10*time.Second, all...)
	if err := a.reg.Maintenance(context.Background(), ids[0], true, "paused by watchman"); err != nil {
		t.Fatal(err)
	}

	proxy.Cut()
	pc.Restart()
	if got := it.serviceIDsQuiet(); len(got) != 0 {
		t.Fatalf("restarted dev agent still has %v", got)
	}
	proxy.Restore()
	took := it.waitIDs(cfg.ReconcileInterval+time.Second, all...)
	t.Logf("registrations back %s after the Consul restart (reconcile interval %s)", took, cfg.ReconcileInterval)
	poll.UntilTrue(t, time.Second, "maintenance restored", func() bool {
		_, ok := it.checks(all[0])["_service_maintenance:"+all[0]]
		return ok
	})

	// Consul down while containers change: desired state is kept and
	// applied when it returns.
	pc.Stop()
	it.remove(docker, ids[1])
	it.run(docker, spec{name: it.name("c3"), ports: []string{"80/tcp"}})
	time.Sleep(time.Second)
	if a.reg.Ready() == nil {
		t.Error("Ready() nil while Consul is down")
	}
	pc.Start()
	took = it.waitIDs(cfg.ReconcileInterval+time.Second, all[0], all[2], it.id(it.name("c3"), "80"))
	t.Logf("converged %s after Consul came back", took)
	poll.UntilTrue(t, cfg.ReconcileInterval, "ready again", func() bool { return a.reg.Ready() == nil })
}

// TestIntegrationDockerdRestart runs the inventory on a private dockerd and
// restarts it while containers change: one container comes back through its
// restart policy, one does not, and one is started right after.
func TestIntegrationDockerdRestart(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	docker := d.Client()
	it := newITest(t, docker, testenv.RequireConsul(t))
	cfg := it.config()
	it.start(docker, cfg)

	base := 40000 + int(time.Now().UnixNano()%10000)
	port := func(i int) string { return fmt.Sprint(base+i) + "/tcp" }
	pnum := func(i int) string { return fmt.Sprint(base + i) }
	// Host networking (the private engine has no bridge): exposed ports
	// count as published on the same port, as in Registrator.
	it.run(docker, spec{name: it.name("always"), ports: []string{port(0)}, netMode: "host", restart: "always"})
	it.run(docker, spec{name: it.name("once"), ports: []string{port(1)}, netMode: "host"})
	it.waitIDs(10*time.Second, it.id(it.name("always"), pnum(0)), it.id(it.name("once"), pnum(1)))

	// Stopping dockerd stops its containers first (their die events
	// deregister them); then the event stream breaks.
	d.Stop()
	it.waitIDs(5 * time.Second)
	d.Start()
	it.run(docker, spec{name: it.name("after"), ports: []string{port(2)}, netMode: "host"})
	took := it.waitIDs(10*time.Second, it.id(it.name("always"), pnum(0)), it.id(it.name("after"), pnum(2)))
	t.Logf("converged %s after dockerd came back", took)

	// The restarted container's service carries its container ID.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := docker.ContainerList(ctx, container.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := map[string]bool{}
	for _, c := range list {
		running[c.ID] = true
	}
	for id, s := range it.services() {
		if !running[s.Meta["heartwood_container"]] {
			t.Errorf("%s points at container %.12s, which is not running", id, s.Meta["heartwood_container"])
		}
	}
}
