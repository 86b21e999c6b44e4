//go:build bench

// Package registrar_bench is the end-to-end performance harness of the
// registrar: a real inventory and registrar in-process against the shared
// dockerd and Consul, with a counting proxy in front of Consul. Run it with
//
//	go test -tags bench -run TestBench -v -timeout 60m ./bench/registrar/ -args -seq 50 -burst 100 -parallel 8 -rounds 3 -scale 500
//
// and see RESULTS.md for recorded figures.
package registrar_bench

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heartwood-ops/heartwood/bench/registrar/catalogwatch"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar"
)

var (
	seqN      = flag.Int("seq", 50, "sequential containers for run→catalog and die→gone latency (0 skips)")
	burstN    = flag.Int("burst", 100, "containers per burst (0 skips)")
	parallel  = flag.Int("parallel", 8, "parallel docker operations in bursts and scale setup")
	rounds    = flag.Int("rounds", 3, "burst rounds")
	scaleN    = flag.Int("scale", 500, "containers for the full-reconcile scenario (0 skips)")
	reconcile = flag.Duration("reconcile", 3*time.Second, "registrar reconcile interval during the scale scenario")
)

// counter is a reverse proxy to Consul that counts write requests.
type counter struct {
	writes atomic.Int64
	srv    *httptest.Server
}

func newCounter(t *testing.T, target string) *counter {
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	c := &counter{}
	rp := httputil.NewSingleHostReverseProxy(u)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut || r.Method == http.MethodPost || r.Method == http.MethodDelete {
			c.writes.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

type bench struct {
	t       *testing.T
	docker  *client.Client
	consul  *consulapi.Client // direct, for observation
	proxy   *counter
	runID   string
	node    string
	image   string
	reg     *registrar.Registrar
	metrics *prometheus.Registry
	cancel  context.CancelFunc
	done    chan struct{}
}

func TestBench(t *testing.T) {
	docker := testenv.Docker(t)
	addr := testenv.RequireConsul(t)
	b := &bench{t: t, docker: docker, runID: testenv.RunID()}
	b.node = "hwbench-" + b.runID
	b.image = testenv.Busybox(t, docker)
	cfg := consulapi.DefaultConfig()
	cfg.Address = addr
	var err error
	if b.consul, err = consulapi.NewClient(cfg); err != nil {
		t.Fatal(err)
	}
	b.proxy = newCounter(t, addr)
	t.Cleanup(func() { testenv.RemoveLabelled(t, docker, b.runID) })
	t.Cleanup(b.deregisterAll)
	b.start(30 * time.Second)
	defer b.stop()

	if *seqN > 0 {
		b.sequential(*seqN)
	}
	if *burstN > 0 {
		for r := 1; r <= *rounds; r++ {
			b.burst(r, *burstN)
		}
	}
	if *scaleN > 0 {
		b.stop()
		b.start(*reconcile)
		b.scale(*scaleN)
	}
}

func (b *bench) start(interval time.Duration) {
	cfg := registrar.DefaultConfig()
	cfg.IP = "127.0.0.1"
	cfg.RequireLabels = []string{testenv.LabelTest + "=" + b.runID}
	cfg.ReconcileInterval = interval
	cc := consulapi.DefaultConfig()
	cc.Address = strings.TrimPrefix(b.proxy.srv.URL, "http://")
	client, err := consulapi.NewClient(cc)
	if err != nil {
		b.t.Fatal(err)
	}
	b.metrics = prometheus.NewRegistry()
	inv := inventory.New(b.docker, inventory.Options{})
	reg, err := registrar.New(cfg, registrar.Deps{Source: inv, Consul: client, NodeName: b.node, Registerer: b.metrics})
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.reg, b.cancel, b.done = reg, cancel, make(chan struct{})
	go func() {
		defer close(b.done)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = inv.Run(ctx) }()
		_ = reg.Run(ctx)
		wg.Wait()
	}()
	deadline := time.Now().Add(time.Minute)
	for reg.Ready() != nil {
		if time.Now().After(deadline) {
			b.t.Fatalf("registrar not ready: %v", reg.Ready())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (b *bench) stop() {
	if b.cancel != nil {
		b.cancel()
		<-b.done
		b.cancel = nil
	}
}

func (b *bench) deregisterAll() {
	svcs, err := b.consul.Agent().ServicesWithFilter(fmt.Sprintf(`Meta.heartwood_node == %q`, b.node))
	if err != nil {
		return
	}
	for id := range svcs {
		_ = b.consul.Agent().ServiceDeregister(id)
	}
}

// create makes (and starts) a labelled busybox container.
func (b *bench) create(ctx context.Context, name string, env []string, publish bool) (string, error) {
	cfg := &container.Config{Image: b.image, Cmd: []string{"sleep", "3600"}, Env: env,
		Labels: map[string]string{testenv.LabelTest: b.runID}, ExposedPorts: nat.PortSet{"80/tcp": {}}}
	hc := &container.HostConfig{}
	if publish {
		hc.PortBindings = nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}}
	}
	created, err := b.docker.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	if err := b.docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return created.ID, fmt.Errorf("start %s: %w", name, err)
	}
	return created.ID, nil
}

// watch waits until the service name has (present) or lacks instances of
// this bench's node and returns when that was seen; ready is closed once
// the blocking query is parked.
func (b *bench) watch(ctx context.Context, name string, present bool, ready chan<- struct{}) (time.Time, error) {
	return catalogwatch.Watch(ctx, b.consul, name, b.node, present, ready)
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// sequential: run→catalog and die→gone latency, one container at a time.
func (b *bench) sequential(n int) {
	ctx := context.Background()
	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	msgs, errs := b.docker.Events(evCtx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("event", "die"), filters.Arg("event", "start"), filters.Arg("label", testenv.LabelTest+"="+b.runID))})
	dies := make(chan events.Message, 16)
	starts := make(chan events.Message, 16)
	go func() {
		for {
			select {
			case m := <-msgs:
				if m.Action == events.ActionStart {
					starts <- m
				} else {
					dies <- m
				}
			case <-errs:
				return
			}
		}
	}()
	var up, fromEvent, gone []time.Duration
	early := 0
	for i := range n {
		name := fmt.Sprintf("hwb-%s-seq%d", b.runID, i)
		svc := "hwbench-" + b.runID + fmt.Sprint("-seq", i)
		ready := make(chan struct{})
		seen := make(chan time.Time, 1)
		go func() {
			t, err := b.watch(ctx, svc, true, ready)
			if err != nil {
				b.t.Errorf("watch: %v", err)
			}
			seen <- t
		}()
		<-ready
		id, err := b.create(ctx, name, []string{"SERVICE_NAME=" + svc}, true)
		returned := time.Now()
		if err != nil {
			b.t.Fatal(err)
		}
		at := <-seen
		if at.Before(returned) {
			early++
			at = returned
		}
		up = append(up, at.Sub(returned))
		for st := range starts {
			if st.Actor.ID == id {
				fromEvent = append(fromEvent, at.Sub(time.Unix(0, st.TimeNano)))
				break
			}
		}

		ready = make(chan struct{})
		go func() {
			t, err := b.watch(ctx, svc, false, ready)
			if err != nil {
				b.t.Errorf("watch: %v", err)
			}
			seen <- t
		}()
		<-ready
		if err := b.docker.ContainerKill(ctx, id, "KILL"); err != nil {
			b.t.Fatal(err)
		}
		var die events.Message
		for die = range dies {
			if die.Actor.ID == id {
				break
			}
		}
		at = <-seen
		gone = append(gone, at.Sub(time.Unix(0, die.TimeNano)))
		testenv.Remove(b.docker, id)
	}
	b.t.Logf("SEQUENTIAL n=%d: docker run returned→in catalog p50 %s p99 %s max %s (%d seen before ContainerStart returned, counted as 0)",
		n, ms(percentile(up, .5)), ms(percentile(up, .99)), ms(percentile(up, 1)), early)
	b.t.Logf("SEQUENTIAL n=%d: start event→in catalog p50 %s p99 %s max %s", n, ms(percentile(fromEvent, .5)), ms(percentile(fromEvent, .99)), ms(percentile(fromEvent, 1)))
	c, sum := b.histogram("heartwood_registrar_event_to_registered_seconds", "")
	if c > 0 {
		b.t.Logf("SEQUENTIAL: registrar's own inventory change→Consul write done: mean %s over %d writes", ms(time.Duration(sum/float64(c)*float64(time.Second))), c)
	}
	b.t.Logf("SEQUENTIAL n=%d: die event→gone from catalog p50 %s p99 %s max %s", n, ms(percentile(gone, .5)), ms(percentile(gone, .99)), ms(percentile(gone, 1)))
}

// parallelDo runs f(i) for i in [0,n) with bounded parallelism.
func parallelDo(n, par int, f func(i int) error) []error {
	var mu sync.Mutex
	var errs []error
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errs
}

// catalogIDs returns the service IDs of a name in the catalog.
func (b *bench) catalogIDs(name string) map[string]bool {
	// Only this registrar's instances: other agents under test on the same
	// Consul may register the same containers under their own node name.
	svcs, _, err := b.consul.Catalog().Service(name, "", &consulapi.QueryOptions{Filter: fmt.Sprintf("ServiceMeta.heartwood_node == %q", b.node)})
	if err != nil {
		b.t.Fatalf("catalog: %v", err)
	}
	out := map[string]bool{}
	for _, s := range svcs {
		out[s.ServiceID] = true
	}
	return out
}

// converge waits until the catalog has exactly want for name, returning
// the time it took, or the missing and stale IDs after timeout.
func (b *bench) converge(name string, want map[string]bool, timeout time.Duration) (time.Duration, []string, []string) {
	start := time.Now()
	for {
		got := b.catalogIDs(name)
		var missing, stale []string
		for id := range want {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		for id := range got {
			if !want[id] {
				stale = append(stale, id)
			}
		}
		if len(missing) == 0 && len(stale) == 0 {
			return time.Since(start), nil, nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), missing, stale
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// burst: n parallel starts then n parallel removals, par at a time.
func (b *bench) burst(round, n int) {
	ctx := context.Background()
	svc := fmt.Sprintf("hwbench-%s-burst%d", b.runID, round)
	ids := make([]string, n)
	start := time.Now()
	if errs := parallelDo(n, *parallel, func(i int) error {
		id, err := b.create(ctx, fmt.Sprintf("hwb-%s-r%d-%d", b.runID, round, i), []string{"SERVICE_NAME=" + svc}, true)
		ids[i] = id
		return err
	}); len(errs) > 0 {
		b.t.Fatalf("burst starts: %v", errs[0])
	}
	startsTook := time.Since(start)
	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf("%s:hwb-%s-r%d-%d:80", b.node, b.runID, round, i)] = true
	}
	took, missing, stale := b.converge(svc, want, 10*time.Second)
	b.t.Logf("BURST round %d: %d parallel starts (%d at a time) took %s; catalog == docker ps %s after the last start; missing %d, stale %d",
		round, n, *parallel, startsTook.Round(time.Millisecond), ms(took), len(missing), len(stale))
	if len(missing)+len(stale) > 0 {
		b.t.Errorf("burst round %d starts: missing %v stale %v", round, missing, stale)
	}
	start = time.Now()
	if errs := parallelDo(n, *parallel, func(i int) error {
		return b.docker.ContainerRemove(ctx, ids[i], container.RemoveOptions{Force: true})
	}); len(errs) > 0 {
		b.t.Fatalf("burst removals: %v", errs[0])
	}
	removesTook := time.Since(start)
	took, missing, stale = b.converge(svc, map[string]bool{}, 10*time.Second)
	b.t.Logf("BURST round %d: %d parallel removals took %s; catalog empty %s after the last removal; missing %d, stale %d",
		round, n, removesTook.Round(time.Millisecond), ms(took), len(missing), len(stale))
	if len(missing)+len(stale) > 0 {
		b.t.Errorf("burst round %d removals: stale %v", round, stale)
	}
}

// histogram returns the sample count and sum of a histogram series.
func (b *bench) histogram(name, mode string) (uint64, float64) {
	mfs, err := b.metrics.Gather()
	if err != nil {
		b.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if mode == "" || labelIs(m, "mode", mode) {
				return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
			}
		}
	}
	return 0, 0
}

func labelIs(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

// nextFull waits for the next full reconcile and returns its duration.
func (b *bench) nextFull() time.Duration {
	c0, s0 := b.histogram("heartwood_registrar_reconcile_duration_seconds", "full")
	deadline := time.Now().Add(3**reconcile + 10*time.Second)
	for time.Now().Before(deadline) {
		c, s := b.histogram("heartwood_registrar_reconcile_duration_seconds", "full")
		if c > c0 {
			return time.Duration((s - s0) / float64(c-c0) * float64(time.Second))
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.t.Fatal("no full reconcile happened")
	return 0
}

// scale: n running containers; full reconcile duration in steady state and
// after the agent lost every registration; Consul writes in steady state.
func (b *bench) scale(n int) {
	ctx := context.Background()
	svc := "hwbench-" + b.runID + "-scale"
	start := time.Now()
	if errs := parallelDo(n, *parallel, func(i int) error {
		// Internal addresses: no docker-proxy process per container.
		_, err := b.create(ctx, fmt.Sprintf("hwb-%s-s%d", b.runID, i), []string{"SERVICE_NAME=" + svc, "SERVICE_NETWORK=bridge"}, false)
		return err
	}); len(errs) > 0 {
		b.t.Fatalf("scale starts (%d failed): %v", len(errs), errs[0])
	}
	b.t.Logf("SCALE: started %d containers in %s", n, time.Since(start).Round(time.Second))
	want := map[string]bool{}
	for i := range n {
		want[fmt.Sprintf("%s:hwb-%s-s%d:80", b.node, b.runID, i)] = true
	}
	took, missing, stale := b.converge(svc, want, 30*time.Second)
	if len(missing)+len(stale) > 0 {
		b.t.Fatalf("scale: missing %d stale %d", len(missing), len(stale))
	}
	b.t.Logf("SCALE: catalog complete %s after the last start", ms(took))

	b.nextFull() // let one full reconcile pass after the registrations
	w0 := b.proxy.writes.Load()
	var steady []time.Duration
	for range 3 {
		steady = append(steady, b.nextFull())
	}
	writes := b.proxy.writes.Load() - w0
	b.t.Logf("SCALE n=%d: steady-state full reconcile %s / %s / %s; Consul writes during 3 full reconciles: %d",
		n, ms(steady[0]), ms(steady[1]), ms(steady[2]), writes)
	if writes != 0 {
		b.t.Errorf("steady state made %d Consul writes", writes)
	}

	// The agent loses every registration (as a restarted dev agent does):
	// the next full reconcile re-registers all of them.
	parallelDo(n, *parallel, func(i int) error {
		return b.consul.Agent().ServiceDeregister(fmt.Sprintf("%s:hwb-%s-s%d:80", b.node, b.runID, i))
	})
	w0 = b.proxy.writes.Load()
	cold := b.nextFull()
	b.t.Logf("SCALE n=%d: full reconcile re-registering all %d services took %s with %d writes", n, n, ms(cold), b.proxy.writes.Load()-w0)
	took, missing, stale = b.converge(svc, want, 10*time.Second)
	if len(missing)+len(stale) > 0 {
		b.t.Errorf("after re-registration: missing %d stale %d", len(missing), len(stale))
	}
}
