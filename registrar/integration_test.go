//go:build integration

package registrar_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/registrar"
)

// expected is what the agent must hold for one service.
type expected struct {
	name    string
	address string // "" = 127.0.0.1
	port    string // host port, or container port for container addresses
	tags    []string
	meta    map[string]string
	checks  map[string]string // check ID → "type target"
}

func TestIntegrationRegistratorTable(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	// Script checks are allowed so that the agent's own refusal of them
	// is what is tested.
	cfg := it.config()
	cfg.AllowScriptChecks = true
	a := it.start(docker, cfg)
	n := it.name

	plain := it.run(docker, spec{name: n("plain"), ports: []string{"80/tcp"}})
	multi := it.run(docker, spec{name: n("multi"), env: []string{"SERVICE_NAME=dns"}, labels: map[string]string{"SERVICE_53_TAGS": `resolver,a\,b`}, ports: []string{"53/tcp", "53/udp", "8080/tcp"}})
	perport := it.run(docker, spec{name: n("perport"), env: []string{"SERVICE_TAGS=env-tag"}, labels: map[string]string{"SERVICE_80_NAME": "front", "SERVICE_81_NAME": "admin", "SERVICE_81_TAGS": "internal"}, ports: []string{"80/tcp", "81/tcp"}})
	internal := it.run(docker, spec{name: n("internal"), labels: map[string]string{"SERVICE_NAME": "backend", "SERVICE_NETWORK": "bridge"}, ports: []string{"9000/tcp"}, unpublished: true})
	it.run(docker, spec{name: n("unpublished"), ports: []string{"9001/tcp"}, unpublished: true})
	it.run(docker, spec{name: n("ignored"), labels: map[string]string{"SERVICE_IGNORE": "1"}, ports: []string{"80/tcp"}})
	ignport := it.run(docker, spec{name: n("ignport"), labels: map[string]string{"SERVICE_81_IGNORE": "yes"}, ports: []string{"80/tcp", "81/tcp"}})
	custom := it.run(docker, spec{name: n("custom"), env: []string{"SERVICE_REGION=us1", "SERVICE_NAME=custom"}, labels: map[string]string{"SERVICE_ID": "custom-" + it.runID, "SERVICE_REGION": "us2", "SERVICE_TEAM": "ml"}, ports: []string{"80/tcp"}})
	httpd := []string{"sh", "-c", "mkdir -p /www && echo ok > /www/health && exec httpd -f -p 80 -h /www"}
	chttp := it.run(docker, spec{name: n("chttp"), cmd: httpd, labels: map[string]string{"SERVICE_CHECK_HTTP": "/health", "SERVICE_CHECK_INTERVAL": "1s"}, ports: []string{"80/tcp"}})
	chttps := it.run(docker, spec{name: n("chttps"), labels: map[string]string{"SERVICE_CHECK_HTTPS": "/s", "SERVICE_CHECK_TLS_SKIP_VERIFY": "1"}, ports: []string{"443/tcp"}})
	ctcp := it.run(docker, spec{name: n("ctcp"), cmd: httpd, labels: map[string]string{"SERVICE_CHECK_TCP": "true", "SERVICE_CHECK_TIMEOUT": "2s", "SERVICE_CHECK_INTERVAL": "1s"}, ports: []string{"80/tcp"}})
	cgrpc := it.run(docker, spec{name: n("cgrpc"), labels: map[string]string{"SERVICE_CHECK_GRPC": "true", "SERVICE_CHECK_GRPC_USE_TLS": "1"}, ports: []string{"50051/tcp"}})
	cttl := it.run(docker, spec{name: n("cttl"), labels: map[string]string{"SERVICE_CHECK_TTL": "30s", "SERVICE_CHECK_INITIAL_STATUS": "passing"}, ports: []string{"80/tcp"}})
	cmulti := it.run(docker, spec{name: n("cmulti"), labels: map[string]string{"SERVICE_CHECK_TCP": "1", "SERVICE_CHECK_HTTP_METHOD": "HEAD", "SERVICE_CHECKS": `[{"id":"ready","http":"/ready","interval":"5s","header":{"X-A":["b"]}},{"id":"hb","ttl":"1m"}]`}, ports: []string{"80/tcp"}})
	cscript := it.run(docker, spec{name: n("cscript"), labels: map[string]string{"SERVICE_CHECK_SCRIPT": "true"}, ports: []string{"80/tcp"}})
	dhealth := it.run(docker, spec{name: n("dhealth"), ports: []string{"80/tcp"}, health: &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: time.Second, Retries: 1}})

	hp := func(id, port string) string { return it.hostPort(docker, id, port) }
	internalIP := it.inspect(docker, internal).NetworkSettings.Networks["bridge"].IPAddress
	customID := "custom-" + it.runID
	want := map[string]expected{
		it.id(n("plain"), "80"):          {name: "busybox", port: hp(plain, "80/tcp")},
		it.id(n("multi"), "53"):          {name: "dns-53", port: hp(multi, "53/tcp"), tags: []string{"resolver", "a,b"}},
		it.id(n("multi"), "53") + ":udp": {name: "dns-53", port: hp(multi, "53/udp"), tags: []string{"resolver", "a,b", "udp"}},
		it.id(n("multi"), "8080"):        {name: "dns-8080", port: hp(multi, "8080/tcp")},
		it.id(n("perport"), "80"):        {name: "front", port: hp(perport, "80/tcp"), tags: []string{"env-tag"}},
		it.id(n("perport"), "81"):        {name: "admin", port: hp(perport, "81/tcp"), tags: []string{"internal"}},
		it.id(n("internal"), "9000"):     {name: "backend", address: internalIP, port: "9000"},
		it.id(n("ignport"), "80"):        {name: "busybox-80", port: hp(ignport, "80/tcp")},
		customID:                         {name: "custom", port: hp(custom, "80/tcp"), meta: map[string]string{"region": "us2", "team": "ml"}},
		it.id(n("chttp"), "80"): {name: "busybox", port: hp(chttp, "80/tcp"), checks: map[string]string{
			"service:" + it.id(n("chttp"), "80"): "http 1s"}},
		it.id(n("chttps"), "443"): {name: "busybox", port: hp(chttps, "443/tcp"), checks: map[string]string{
			"service:" + it.id(n("chttps"), "443"): "http 10s"}},
		it.id(n("ctcp"), "80"): {name: "busybox", port: hp(ctcp, "80/tcp"), checks: map[string]string{
			"service:" + it.id(n("ctcp"), "80"): "tcp 1s timeout=2s"}},
		it.id(n("cgrpc"), "50051"): {name: "busybox", port: hp(cgrpc, "50051/tcp"), checks: map[string]string{
			"service:" + it.id(n("cgrpc"), "50051"): "grpc 10s"}},
		it.id(n("cttl"), "80"): {name: "busybox", port: hp(cttl, "80/tcp"), checks: map[string]string{
			"service:" + it.id(n("cttl"), "80"): "ttl passing"}},
		it.id(n("cmulti"), "80"): {name: "busybox", port: hp(cmulti, "80/tcp"), checks: map[string]string{
			"service:" + it.id(n("cmulti"), "80"):            "tcp 10s",
			"service:" + it.id(n("cmulti"), "80") + ":ready": "http 5s",
			"service:" + it.id(n("cmulti"), "80") + ":hb":    "ttl",
		}},
		it.id(n("dhealth"), "80"): {name: "busybox", port: hp(dhealth, "80/tcp"), checks: map[string]string{
			"service:" + it.id(n("dhealth"), "80") + ":docker-health": "ttl passing"}},
	}
	var ids []string
	for id := range want {
		ids = append(ids, id)
	}
	it.waitIDs(15*time.Second, ids...)

	// Docker health turns passing once Docker reports healthy.
	dh := "service:" + it.id(n("dhealth"), "80") + ":docker-health"
	poll.UntilTrue(t, 10*time.Second, "docker health passing", func() bool {
		c := it.checks(it.id(n("dhealth"), "80"))[dh]
		return c != nil && c.Status == "passing"
	})

	// The HTTP and TCP checks target the published port: they pass.
	for _, id := range []string{it.id(n("chttp"), "80"), it.id(n("ctcp"), "80")} {
		poll.UntilTrue(t, 10*time.Second, id+" check passing", func() bool {
			c := it.checks(id)["service:"+id]
			return c != nil && c.Status == "passing"
		})
	}

	svcs := it.services()
	for id, w := range want {
		s := svcs[id]
		addr := w.address
		if addr == "" {
			addr = "127.0.0.1"
		}
		if s.Service != w.name || s.Address != addr || fmt.Sprint(s.Port) != w.port {
			t.Errorf("%s = %s %s:%d, want %s %s:%s", id, s.Service, s.Address, s.Port, w.name, addr, w.port)
		}
		if !slices.Equal(s.Tags, w.tags) && !(len(s.Tags) == 0 && len(w.tags) == 0) {
			t.Errorf("%s tags = %q, want %q", id, s.Tags, w.tags)
		}
		for k, v := range s.Meta {
			if strings.HasPrefix(k, "check") || k == "name" || k == "id" || k == "tags" {
				t.Errorf("%s: setting %s leaked into Meta", id, k)
			}
			if k == "managed_by" || strings.HasPrefix(k, "heartwood_") {
				continue
			}
			if w.meta[k] != v {
				t.Errorf("%s: unexpected Meta %s=%q", id, k, v)
			}
		}
		for k, v := range w.meta {
			if s.Meta[k] != v {
				t.Errorf("%s: Meta %s = %q, want %q", id, k, s.Meta[k], v)
			}
		}
		got := it.checkSummary(s.Service, id)
		wantChecks := w.checks
		if wantChecks == nil {
			wantChecks = map[string]string{}
		}
		if fmt.Sprint(got) != fmt.Sprint(wantChecks) {
			t.Errorf("%s checks:\n got %v\nwant %v", id, got, wantChecks)
		}
	}

	// The script check is refused by this agent (script checks disabled):
	// reported, not retried, and it blocks nothing else.
	view := a.reg.DescribeContainer(cscript).(registrar.ContainerView)
	if len(view.Desired) != 1 || !strings.Contains(view.Desired[0].Error, "consul rejected") {
		t.Errorf("script-check service not reported as rejected: %+v", view.Desired)
	}
	if err := a.reg.Ready(); err != nil {
		t.Errorf("Ready() = %v", err)
	}
	b, _ := json.Marshal(a.reg.DescribeContainer(multi))
	t.Logf("describe multi: %s", b)
}

// checkSummary returns "type interval [timeout=t]" (TTL checks: "ttl
// [passing]") for each check of a service, from /v1/health/checks, the
// only API that shows a check's interval; no API shows its target, so
// targets are asserted by checks that must pass and by the golden tests.
func (it *itest) checkSummary(name, serviceID string) map[string]string {
	it.t.Helper()
	var list []struct {
		CheckID, Type, Status, Interval, Timeout string
	}
	if _, err := it.consul.Raw().Query("/v1/health/checks/"+name, &list, &consulapi.QueryOptions{Filter: fmt.Sprintf("ServiceID == %q", serviceID)}); err != nil {
		it.t.Fatalf("health checks: %v", err)
	}
	out := map[string]string{}
	for _, c := range list {
		parts := []string{c.Type}
		if c.Type == "ttl" {
			if c.Status == "passing" {
				parts = append(parts, "passing")
			}
		} else {
			parts = append(parts, c.Interval)
			if c.Timeout != "" {
				parts = append(parts, "timeout="+c.Timeout)
			}
		}
		out[c.CheckID] = strings.Join(parts, " ")
	}
	return out
}

func TestIntegrationMalformedLabels(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	cfg := it.config()
	cfg.AllowScriptChecks = true // SERVICE_84_CHECK_SCRIPT reaches the agent, which refuses it
	a := it.start(docker, cfg)
	n := it.name
	labels := map[string]string{
		"SERVICE_80_NAME":           "bad name/with slash",
		"SERVICE_81_ID":             "a b",
		"SERVICE_82_CHECK_HTTP":     "/",
		"SERVICE_82_CHECK_INTERVAL": "often",
		"SERVICE_83_CHECKS":         "{not json",
		"SERVICE_84_CHECK_SCRIPT":   "true",
		"SERVICE_BIG":               strings.Repeat("x", 600),
		"SERVICE_BAD.KEY":           "v",
		"SERVICE_99999_NAME":        "no such port",
	}
	for i := range 70 {
		labels[fmt.Sprintf("SERVICE_K%02d", i)] = "v"
	}
	bad := it.run(docker, spec{name: n("bad"), labels: labels, ports: []string{"80/tcp", "81/tcp", "82/tcp", "83/tcp", "84/tcp"}})
	good := it.run(docker, spec{name: n("good"), ports: []string{"80/tcp"}})
	it.waitIDs(15*time.Second, it.id(n("good"), "80"), it.id(n("bad"), "82"), it.id(n("bad"), "83"))
	_ = good

	svcs := it.services()
	s82 := svcs[it.id(n("bad"), "82")]
	if len(s82.Meta) > 64 {
		t.Errorf("%d Meta pairs", len(s82.Meta))
	}
	if _, ok := s82.Meta["big"]; ok {
		t.Error("oversized Meta value registered")
	}
	if len(it.checks(it.id(n("bad"), "82"))) != 0 {
		t.Error("check with a bad interval registered")
	}
	view := a.reg.DescribeContainer(bad).(registrar.ContainerView)
	reasons := map[string]string{}
	for _, s := range view.Skipped {
		reasons[s.Port] = s.Reason
	}
	if !strings.Contains(reasons["80/tcp"], "invalid service name") || !strings.Contains(reasons["81/tcp"], "invalid service ID") {
		t.Errorf("skips not reported: %+v", view.Skipped)
	}
	warns := map[string]string{}
	for _, d := range view.Desired {
		warns[d.ID] = strings.Join(d.Warnings, "; ") + d.Error
	}
	for id, want := range map[string]string{
		it.id(n("bad"), "82"): "interval \"often\"",
		it.id(n("bad"), "83"): "SERVICE_CHECKS",
		it.id(n("bad"), "84"): "consul rejected",
	} {
		if !strings.Contains(warns[id], want) {
			t.Errorf("%s: warnings %q lack %q", id, warns[id], want)
		}
	}
	if !strings.Contains(warns[it.id(n("bad"), "82")], "over Consul's limit of 64 pairs") {
		t.Errorf("meta overflow not reported: %s", warns[it.id(n("bad"), "82")])
	}
	if err := a.reg.Ready(); err != nil {
		t.Errorf("malformed labels made the registrar unready: %v", err)
	}
}

func TestIntegrationRestartConvergence(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	a := it.start(docker, it.config())
	var ids []string
	for i := range 4 {
		ids = append(ids, it.run(docker, spec{name: it.name(fmt.Sprint("c", i)), ports: []string{"80/tcp"}}))
	}
	it.waitIDs(10*time.Second, it.id(it.name("c0"), "80"), it.id(it.name("c1"), "80"), it.id(it.name("c2"), "80"), it.id(it.name("c3"), "80"))

	a.stop() // the agent is killed: services stay (deregister-on-shutdown off)
	it.remove(docker, ids[0])
	it.remove(docker, ids[1])
	for i := 4; i < 7; i++ {
		it.run(docker, spec{name: it.name(fmt.Sprint("c", i)), ports: []string{"80/tcp"}})
	}
	if got := len(it.serviceIDs()); got != 4 {
		t.Fatalf("%d services while the agent was down, want the 4 stale ones", got)
	}
	it.start(docker, it.config())
	took := it.waitIDs(2*time.Second, it.id(it.name("c2"), "80"), it.id(it.name("c3"), "80"),
		it.id(it.name("c4"), "80"), it.id(it.name("c5"), "80"), it.id(it.name("c6"), "80"))
	t.Logf("converged %s after the agent restarted", took)
}

func TestIntegrationDrainAndMaintenance(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	a := it.start(docker, it.config())
	// A process that ignores SIGTERM: docker stop waits 2 s before SIGKILL,
	// and the service must be in maintenance during that time.
	stubborn := it.run(docker, spec{name: it.name("stubborn"), ports: []string{"80/tcp"}, cmd: []string{"sh", "-c", "trap '' TERM; while true; do sleep 1; done"}})
	paused := it.run(docker, spec{name: it.name("idle"), ports: []string{"80/tcp"}})
	sid, pid := it.id(it.name("stubborn"), "80"), it.id(it.name("idle"), "80")
	it.waitIDs(10*time.Second, sid, pid)

	stopped := make(chan error, 1)
	go func() {
		timeout := 2
		stopped <- docker.ContainerStop(context.Background(), stubborn, container.StopOptions{Timeout: &timeout})
	}()
	inMaint := func(id string) bool { _, ok := it.checks(id)["_service_maintenance:"+id]; return ok }
	poll.UntilTrue(t, 1500*time.Millisecond, "maintenance after docker stop", func() bool { return inMaint(sid) })
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	it.waitIDs(2*time.Second, pid)

	// Watchman-style maintenance: on before pause, kept across a full
	// reconcile and an unpause, off on request.
	ctx := context.Background()
	if err := a.reg.Maintenance(ctx, paused, true, "idle: paused by watchman"); err != nil {
		t.Fatal(err)
	}
	if !inMaint(pid) {
		t.Fatal("Maintenance(on) returned before Consul had it")
	}
	if err := docker.ContainerPause(ctx, paused); err != nil {
		t.Fatal(err)
	}
	if err := docker.ContainerUnpause(ctx, paused); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // one full reconcile (5 s)
	if !inMaint(pid) {
		t.Fatal("maintenance lost across unpause and reconcile")
	}
	if err := a.reg.Maintenance(ctx, paused, false, ""); err != nil {
		t.Fatal(err)
	}
	if inMaint(pid) {
		t.Fatal("maintenance still on")
	}
}

func TestIntegrationHealthcheckCritical(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	it.start(docker, it.config())
	interval := time.Second
	id := it.run(docker, spec{
		name: it.name("flaky"), ports: []string{"80/tcp"},
		cmd:    []string{"sh", "-c", "touch /ok; sleep 4; rm /ok; sleep 3600"},
		health: &container.HealthConfig{Test: []string{"CMD", "test", "-f", "/ok"}, Interval: interval, Timeout: time.Second, Retries: 1},
	})
	sid := it.id(it.name("flaky"), "80")
	check := "service:" + sid + ":docker-health"
	status := func() string {
		c := it.checks(sid)[check]
		if c == nil {
			return ""
		}
		return c.Status
	}
	poll.UntilTrue(t, 10*time.Second, "check passing", func() bool { return status() == "passing" })
	poll.UntilTrue(t, 15*time.Second, "docker unhealthy", func() bool {
		in := it.inspect(docker, id)
		return in.State.Health != nil && in.State.Health.Status == "unhealthy"
	})
	took := poll.UntilTrue(t, interval, "consul check critical within one health interval", func() bool { return status() == "critical" })
	t.Logf("consul critical %s after docker reported unhealthy", took)
}

// TestIntegrationRenameReregisters renames a container: its service ID
// (which embeds the name) changes, the old one is removed.
func TestIntegrationRenameReregisters(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	it.start(docker, it.config())
	id := it.run(docker, spec{name: it.name("before"), ports: []string{"80/tcp"}})
	it.waitIDs(10*time.Second, it.id(it.name("before"), "80"))
	if err := docker.ContainerRename(context.Background(), id, it.name("after")); err != nil {
		t.Fatal(err)
	}
	took := it.waitIDs(2*time.Second, it.id(it.name("after"), "80"))
	t.Logf("rename re-registered in %s", took)
}
