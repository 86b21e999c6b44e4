package registrar

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/inventory/inventorytest"
)

// fakeAgent is an in-memory Consul agent: services, maintenance and TTL
// check states, with write counting and injectable failure.
type fakeAgent struct {
	mu       sync.Mutex
	services map[string]*consulapi.AgentServiceRegistration
	maint    map[string]string
	status   map[string]string // check ID → status
	writes   map[string]int
	down     bool
	reads    int    // service list reads, to observe retry pacing
	panicOn  string // a registration of a service with this name panics
}

func newFakeAgent() *fakeAgent {
	return &fakeAgent{services: map[string]*consulapi.AgentServiceRegistration{}, maint: map[string]string{}, status: map[string]string{}, writes: map[string]int{}}
}

var errDown = errors.New("connection refused")

func (f *fakeAgent) totalWrites() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.writes {
		n += v
	}
	return n
}

func (f *fakeAgent) ServicesWithFilterOpts(filter string, _ *consulapi.QueryOptions) (map[string]*consulapi.AgentService, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.down {
		return nil, errDown
	}
	out := map[string]*consulapi.AgentService{}
	for id, s := range f.services {
		if filter != "" && !(strings.Contains(filter, `"`+s.Meta["managed_by"]+`"`) && strings.Contains(filter, `"`+s.Meta["heartwood_node"]+`"`)) {
			continue
		}
		out[id] = &consulapi.AgentService{ID: id, Service: s.Name, Meta: s.Meta, Tags: s.Tags, Port: s.Port, Address: s.Address}
	}
	return out, nil
}

func (f *fakeAgent) ChecksWithFilterOpts(string, *consulapi.QueryOptions) (map[string]*consulapi.AgentCheck, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	out := map[string]*consulapi.AgentCheck{}
	for id := range f.maint {
		cid := "_service_maintenance:" + id
		out[cid] = &consulapi.AgentCheck{CheckID: cid, ServiceID: id, Type: "maintenance", Status: "critical"}
	}
	for id, s := range f.services {
		for _, c := range s.Checks {
			if c.Name == "Docker health" {
				out[c.CheckID] = &consulapi.AgentCheck{CheckID: c.CheckID, ServiceID: id, Name: c.Name, Type: "ttl", Status: f.status[c.CheckID]}
			}
		}
	}
	return out, nil
}

func (f *fakeAgent) write(op string) error {
	if f.down {
		return errDown
	}
	f.writes[op]++
	return nil
}

func (f *fakeAgent) ServiceRegisterOpts(s *consulapi.AgentServiceRegistration, o consulapi.ServiceRegisterOpts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("register"); err != nil {
		return err
	}
	if f.panicOn != "" && s.Name == f.panicOn {
		panic("poison registration " + s.Name)
	}
	for _, c := range s.Checks {
		if len(c.Args) > 0 {
			return consulapi.StatusError{Code: 400, Body: "Scripts are disabled on this agent"}
		}
	}
	if !o.ReplaceExistingChecks {
		return errors.New("registered without replace-existing-checks")
	}
	f.services[s.ID] = s
	delete(f.maint, s.ID) // as the real agent: replace-existing-checks drops maintenance
	for _, c := range s.Checks {
		f.status[c.CheckID] = c.Status
	}
	return nil
}

func (f *fakeAgent) ServiceDeregisterOpts(id string, _ *consulapi.QueryOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("deregister"); err != nil {
		return err
	}
	delete(f.services, id)
	delete(f.maint, id)
	return nil
}

func (f *fakeAgent) EnableServiceMaintenanceOpts(id, reason string, _ *consulapi.QueryOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("maint-on"); err != nil {
		return err
	}
	if _, ok := f.services[id]; !ok {
		return fmt.Errorf("unknown service %q", id)
	}
	f.maint[id] = reason
	return nil
}

func (f *fakeAgent) DisableServiceMaintenanceOpts(id string, _ *consulapi.QueryOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("maint-off"); err != nil {
		return err
	}
	delete(f.maint, id)
	return nil
}

func (f *fakeAgent) UpdateTTLOpts(checkID, _, status string, _ *consulapi.QueryOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.write("ttl"); err != nil {
		return err
	}
	f.status[checkID] = status
	return nil
}

func (f *fakeAgent) SelfOpts(*consulapi.QueryOptions) (map[string]map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, errDown
	}
	return map[string]map[string]any{"Member": {"Addr": "10.9.9.9"}}, nil
}

func (f *fakeAgent) Service(id string, _ *consulapi.QueryOptions) (*consulapi.AgentService, *consulapi.QueryMeta, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, nil, errDown
	}
	s, ok := f.services[id]
	if !ok {
		return nil, nil, consulapi.StatusError{Code: 404, Body: "unknown service ID: " + id}
	}
	return &consulapi.AgentService{ID: id, Service: s.Name, Meta: s.Meta, Tags: s.Tags, Port: s.Port, Address: s.Address}, &consulapi.QueryMeta{}, nil
}

type harness struct {
	t     *testing.T
	r     *Registrar
	agent *fakeAgent
	now   time.Time
}

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.IP = "10.0.0.1"
	if mod != nil {
		mod(&cfg)
	}
	agent := newFakeAgent()
	r, err := newRegistrar(cfg, Deps{Source: inventorytest.New(), NodeName: "n1"}, agent)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, r: r, agent: agent, now: time.Unix(1700000000, 0)}
}

func ctr(name string, labels ...string) *inventory.Container {
	l := map[string]string{}
	for _, kv := range labels {
		k, v, _ := strings.Cut(kv, "=")
		l[k] = v
	}
	return &inventory.Container{
		ID: strings.Repeat(name[:1], 8) + name, Name: name, Image: "img/" + name + ":1", Labels: l,
		Created: time.Unix(1600000000, 0),
		State:   inventory.State{Status: "running", Running: true, StartedAt: time.Unix(1700000000, 0)},
		Ports:   []inventory.Port{{ContainerPort: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}},
	}
}

func (h *harness) change(kind inventory.ChangeKind, action string, c *inventory.Container) {
	h.t.Helper()
	h.now = h.now.Add(time.Millisecond)
	dirty := map[string]time.Time{}
	h.r.ingest([]inventory.Change{{Kind: kind, Action: action, Container: c, Time: h.now}}, dirty)
	if err := h.r.reconcile(context.Background(), false, dirty); err != nil {
		h.t.Fatalf("incremental reconcile after %s %s: %v", action, c.Name, err)
	}
}

func (h *harness) full() error { return h.r.reconcile(context.Background(), true, nil) }

func (h *harness) ids() []string {
	h.agent.mu.Lock()
	defer h.agent.mu.Unlock()
	var out []string
	for id := range h.agent.services {
		out = append(out, id)
	}
	return sortStrings(out)
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

func (h *harness) wantIDs(want ...string) {
	h.t.Helper()
	got := h.ids()
	if strings.Join(got, ",") != strings.Join(sortStrings(want), ",") {
		h.t.Fatalf("services = %v, want %v", got, want)
	}
}

func TestFullReconcileRegistersThenMakesNoWrites(t *testing.T) {
	h := newHarness(t, nil)
	h.r.ingest([]inventory.Change{
		{Kind: inventory.Added, Action: "resync", Container: ctr("web")},
		{Kind: inventory.Added, Action: "resync", Container: ctr("api", "SERVICE_NAME=api", "SERVICE_CHECK_TCP=1")},
	}, map[string]time.Time{})
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.wantIDs("n1:api:80", "n1:web:80")
	before := h.agent.totalWrites()
	for range 3 {
		if err := h.full(); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.agent.totalWrites() - before; got != 0 {
		t.Fatalf("steady state made %d writes, want 0 (%v)", got, h.agent.writes)
	}
	if h.r.Ready() == nil {
		t.Fatal("ready before Run reconciled") // readiness is Run's to set
	}
}

func TestStaleAndForeignServices(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.CleanupRegistrator = true })
	// Ours, from a container that no longer exists.
	h.agent.services["n1:gone:80"] = &consulapi.AgentServiceRegistration{ID: "n1:gone:80", Name: "gone", Meta: map[string]string{"managed_by": "heartwood", "heartwood_node": "n1"}}
	// Another node's: must stay.
	h.agent.services["n2:x:80"] = &consulapi.AgentServiceRegistration{ID: "n2:x:80", Name: "x", Meta: map[string]string{"managed_by": "heartwood", "heartwood_node": "n2"}}
	// Registrator's, for a container that is gone (cleanup) and one that runs.
	h.agent.services["n1:old:80"] = &consulapi.AgentServiceRegistration{ID: "n1:old:80", Name: "old"}
	h.agent.services["n1:web:443"] = &consulapi.AgentServiceRegistration{ID: "n1:web:443", Name: "web"}
	// Not Registrator's format: never touched.
	h.agent.services["manual"] = &consulapi.AgentServiceRegistration{ID: "manual", Name: "manual"}
	h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: ctr("web")}}, map[string]time.Time{})
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.wantIDs("manual", "n1:web:443", "n1:web:80", "n2:x:80")
}

func TestLifecycleDrainDieAndPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy   string
		exit     int
		retained bool
	}{
		{DeregisterAlways, 1, false},
		{DeregisterOnSuccess, 0, false},
		{DeregisterOnSuccess, 137, false},
		{DeregisterOnSuccess, 2, true},
		{DeregisterNever, 0, true},
	} {
		t.Run(fmt.Sprintf("%s_exit%d", tc.policy, tc.exit), func(t *testing.T) {
			h := newHarness(t, func(c *Config) { c.Deregister = tc.policy })
			if err := h.full(); err != nil {
				t.Fatal(err)
			}
			c := ctr("web")
			h.change(inventory.Added, "start", c)
			h.wantIDs("n1:web:80")
			h.change(inventory.Updated, "kill", c)
			if h.agent.maint["n1:web:80"] == "" {
				t.Fatalf("kill did not put the service into maintenance")
			}
			dead := *c
			dead.State = inventory.State{Status: "exited", ExitCode: tc.exit, StartedAt: c.State.StartedAt}
			h.change(inventory.Updated, "die", &dead)
			if tc.retained {
				h.wantIDs("n1:web:80")
				if err := h.full(); err != nil {
					t.Fatal(err)
				}
				h.wantIDs("n1:web:80") // a full reconcile keeps it too
			} else {
				h.wantIDs()
			}
			h.change(inventory.Removed, "destroy", &dead)
			h.wantIDs()
			// Restart of a retained container: services back, out of maintenance.
		})
	}
}

func TestRestartClearsDrain(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Deregister = DeregisterNever })
	c := ctr("web")
	h.change(inventory.Added, "start", c)
	h.change(inventory.Updated, "kill", c)
	dead := *c
	dead.State = inventory.State{Status: "exited", ExitCode: 0, StartedAt: c.State.StartedAt}
	h.change(inventory.Updated, "die", &dead)
	again := *c
	again.State.StartedAt = c.State.StartedAt.Add(time.Minute)
	h.change(inventory.Updated, "start", &again)
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatalf("service still in maintenance after restart")
	}
	// kill with a signal that does not stop the container: drain ends after drain-timeout.
	h.r.cfg.DrainTimeout = time.Nanosecond
	h.change(inventory.Updated, "kill", &again)
	if _, on := h.agent.maint["n1:web:80"]; !on {
		t.Fatal("kill did not drain")
	}
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatalf("drain did not time out while the container kept running")
	}
}

func TestMaintenanceSurvivesReregistrationAndConsulRestart(t *testing.T) {
	h := newHarness(t, nil)
	c := ctr("web")
	h.change(inventory.Added, "start", c)
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if err := h.r.Maintenance(context.Background(), c.ID, true, "idle: paused by watchman"); err != nil {
		t.Fatal(err)
	}
	if h.agent.maint["n1:web:80"] != "idle: paused by watchman" {
		t.Fatalf("maintenance not applied: %v", h.agent.maint)
	}
	// A label change re-registers (which drops maintenance in Consul): it must come back.
	c2 := *c
	c2.Labels = map[string]string{"SERVICE_TAGS": "v2"}
	h.change(inventory.Updated, "update", &c2)
	if h.agent.maint["n1:web:80"] == "" {
		t.Fatal("maintenance lost on re-registration")
	}
	// Paused and unpaused: explicit maintenance stays.
	p := c2
	p.State.Paused = true
	h.change(inventory.Updated, "pause", &p)
	h.change(inventory.Updated, "unpause", &c2)
	if h.agent.maint["n1:web:80"] == "" {
		t.Fatal("explicit maintenance lost on unpause")
	}
	// Consul loses everything.
	h.agent.mu.Lock()
	h.agent.services = map[string]*consulapi.AgentServiceRegistration{}
	h.agent.maint = map[string]string{}
	h.agent.mu.Unlock()
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.wantIDs("n1:web:80")
	if h.agent.maint["n1:web:80"] == "" {
		t.Fatal("maintenance not restored after consul restart")
	}
	if err := h.r.Maintenance(context.Background(), c.ID, false, ""); err != nil {
		t.Fatal(err)
	}
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatal("maintenance not turned off")
	}
	before := h.agent.totalWrites()
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if d := h.agent.totalWrites() - before; d != 0 {
		t.Fatalf("%d writes in steady state", d)
	}
}

func TestPausedContainerInMaintenance(t *testing.T) {
	h := newHarness(t, nil)
	c := ctr("web")
	h.change(inventory.Added, "start", c)
	p := *c
	p.State.Paused = true
	h.change(inventory.Updated, "pause", &p)
	if h.agent.maint["n1:web:80"] != "container is paused" {
		t.Fatalf("paused container not in maintenance: %v", h.agent.maint)
	}
	h.change(inventory.Updated, "unpause", c)
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatal("unpaused container still in maintenance")
	}
}

func TestDockerHealthMirroredWithoutReregistration(t *testing.T) {
	h := newHarness(t, nil)
	c := ctr("web")
	c.Healthcheck = &inventory.Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Second}
	c.State.Health = "starting"
	h.change(inventory.Added, "start", c)
	cid := "service:n1:web:80:docker-health"
	if h.agent.status[cid] != "critical" {
		t.Fatalf("starting container health = %q", h.agent.status[cid])
	}
	for _, tc := range []struct{ docker, consul string }{{"healthy", "passing"}, {"unhealthy", "critical"}, {"healthy", "passing"}} {
		u := *c
		u.State.Health = tc.docker
		regs := h.agent.writes["register"]
		h.change(inventory.Updated, "health_status", &u)
		if h.agent.status[cid] != tc.consul {
			t.Fatalf("docker %s → consul %q, want %q", tc.docker, h.agent.status[cid], tc.consul)
		}
		if h.agent.writes["register"] != regs {
			t.Fatal("health change re-registered the service")
		}
	}
	// After a Consul restart the status is restored too (full reconcile).
	h.agent.mu.Lock()
	h.agent.status[cid] = "critical"
	h.agent.mu.Unlock()
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if h.agent.status[cid] != "passing" {
		t.Fatalf("health drift not repaired: %q", h.agent.status[cid])
	}
}

func TestIDConflictHandOver(t *testing.T) {
	h := newHarness(t, nil)
	a := ctr("alpha", "SERVICE_ID=shared")
	b := ctr("beta", "SERVICE_ID=shared")
	b.Created = a.Created.Add(time.Second)
	h.change(inventory.Added, "start", a)
	h.change(inventory.Added, "start", b)
	h.wantIDs("shared")
	if got := h.agent.services["shared"].Meta["heartwood_container"]; got != a.ID {
		t.Fatalf("shared owned by %s, want alpha", got)
	}
	v := h.r.DescribeContainer(b.ID).(ContainerView)
	if len(v.Skipped) != 1 || !strings.Contains(v.Skipped[0].Reason, "alpha") {
		t.Fatalf("conflict not reported: %+v", v.Skipped)
	}
	h.change(inventory.Removed, "destroy", a)
	h.wantIDs("shared")
	if got := h.agent.services["shared"].Meta["heartwood_container"]; got != b.ID {
		t.Fatalf("shared not handed over to beta: %s", got)
	}
}

func TestConsulDownKeepsDesiredAndConverges(t *testing.T) {
	h := newHarness(t, nil)
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.agent.down = true
	dirty := map[string]time.Time{}
	h.r.ingest([]inventory.Change{{Kind: inventory.Added, Action: "start", Container: ctr("web")}}, dirty)
	if err := h.r.reconcile(context.Background(), false, dirty); !errors.Is(err, errDown) {
		t.Fatalf("err = %v, want connection refused", err)
	}
	if err := h.full(); err == nil {
		t.Fatal("full reconcile succeeded with consul down")
	}
	h.agent.down = false
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.wantIDs("n1:web:80")
}

func TestAgentAddressUsedWithoutIP(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.IP = "" })
	h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: ctr("web")}}, map[string]time.Time{})
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if got := h.agent.services["n1:web:80"].Address; got != "10.9.9.9" {
		t.Fatalf("address = %q, want the agent's 10.9.9.9", got)
	}
}

func TestDescribeHasNoSecrets(t *testing.T) {
	h := newHarness(t, nil)
	c := ctr("web", `SERVICE_CHECKS=[{"id":"a","http":"/","header":{"Authorization":["Bearer s3cret"]}}]`)
	c.Env = []string{"DB_PASSWORD=hunter2", "SERVICE_CHECK_SCRIPT=curl -u admin:pw http://x"}
	h.change(inventory.Added, "start", c)
	out := fmt.Sprintf("%+v", h.r.DescribeContainer(c.ID))
	for _, secret := range []string{"hunter2", "s3cret", "admin:pw"} {
		if strings.Contains(out, secret) {
			t.Fatalf("describe leaks %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, "Authorization") {
		t.Fatalf("header name missing: %s", out)
	}
	if h.r.DescribeContainer("nope") != nil {
		t.Fatal("unknown container described")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Deregister = "sometimes" }, `registrar.deregister: must be always, on-success or never, got "sometimes"`},
		{func(c *Config) { c.ReconcileInterval = -time.Second }, "registrar.reconcile-interval: must be > 0, got -1s"},
		{func(c *Config) { c.IP = "host.local" }, `registrar.ip: must be an IP address`},
		{func(c *Config) { c.Tags = []string{"{{.Name}}"} }, "registrar.tags: templates are not supported"},
		{func(c *Config) { c.WriteConcurrency = 0 }, "registrar.write-concurrency"},
		{func(c *Config) { c.RetryMaxInterval = time.Millisecond }, "registrar.retry-max-interval"},
		{func(c *Config) { c.RequireLabels = []string{"=x"} }, "registrar.require-labels"},
	}
	for _, tc := range tests {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestNewRejectsBadDeps(t *testing.T) {
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Fatal("New accepted nil deps")
	}
	if _, err := newRegistrar(DefaultConfig(), Deps{Source: inventorytest.New(), NodeName: "a:b"}, newFakeAgent()); err == nil {
		t.Fatal("accepted node name with ':'")
	}
}

func TestRejectedRegistrationNotRetriedAndReported(t *testing.T) {
	// Script checks are allowed here so that the agent's refusal of them
	// is what is tested.
	h := newHarness(t, func(c *Config) { c.AllowScriptChecks = true })
	h.r.ingest([]inventory.Change{
		{Kind: inventory.Added, Container: ctr("good")},
		{Kind: inventory.Added, Container: ctr("script", "SERVICE_CHECK_SCRIPT=true")},
	}, map[string]time.Time{})
	if err := h.full(); err != nil {
		t.Fatalf("a rejected service failed the reconcile: %v", err)
	}
	h.wantIDs("n1:good:80")
	regs := h.agent.writes["register"]
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if h.agent.writes["register"] != regs {
		t.Fatal("rejected registration retried although nothing changed")
	}
	v := h.r.DescribeContainer(ctr("script").ID).(ContainerView)
	if len(v.Desired) != 1 || !strings.Contains(v.Desired[0].Error, "Scripts are disabled") {
		t.Fatalf("rejection not reported: %+v", v.Desired)
	}
	// Fixing the labels registers it.
	h.change(inventory.Updated, "update", ctr("script", "SERVICE_CHECK_TCP=true"))
	h.wantIDs("n1:good:80", "n1:script:80")
}

func TestMaintenanceFailuresAndEarlyCalls(t *testing.T) {
	h := newHarness(t, nil)
	c := ctr("web")
	h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: c}}, map[string]time.Time{})
	if err := h.r.Maintenance(context.Background(), c.ID, true, "early"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("err = %v, want ErrNotReady", err)
	}
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatal("a failed Maintenance(on) was applied later")
	}
	// Consul down: "on" fails and is forgotten; "off" fails and is kept.
	if err := h.r.Maintenance(context.Background(), c.ID, true, "ok"); err != nil {
		t.Fatal(err)
	}
	h.agent.setDown(true)
	if err := h.r.Maintenance(context.Background(), c.ID, false, ""); err == nil {
		t.Fatal("Maintenance(off) succeeded with consul down")
	}
	h.agent.setDown(false)
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatal("Maintenance(off) that failed was not applied when consul returned")
	}
	h.agent.setDown(true)
	if err := h.r.Maintenance(context.Background(), c.ID, true, "pause"); err == nil {
		t.Fatal("Maintenance(on) succeeded with consul down")
	}
	h.agent.setDown(false)
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if _, on := h.agent.maint["n1:web:80"]; on {
		t.Fatal("a failed Maintenance(on) was applied when consul returned")
	}
	// Unknown containers are forgotten at the next full reconcile.
	if err := h.r.Maintenance(context.Background(), "nosuch", true, "x"); err != nil {
		t.Fatal(err)
	}
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.r.mu.Lock()
	_, kept := h.r.explicit["nosuch"]
	h.r.mu.Unlock()
	if kept {
		t.Fatal("maintenance for an unknown container kept")
	}
}
