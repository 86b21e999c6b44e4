package watchman

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/inventory/inventorytest"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/policy"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// calls records the order of actions across the fakes.
type calls struct {
	mu  sync.Mutex
	log []string
}

func (c *calls) add(s string) {
	c.mu.Lock()
	c.log = append(c.log, s)
	c.mu.Unlock()
}

func (c *calls) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

type fakeDocker struct {
	c        *calls
	pauseErr error
}

func (d *fakeDocker) ContainerPause(_ context.Context, id string) error {
	d.c.add("pause " + id)
	return d.pauseErr
}
func (d *fakeDocker) ContainerUnpause(_ context.Context, id string) error {
	d.c.add("unpause " + id)
	return nil
}
func (d *fakeDocker) ContainerStop(_ context.Context, id string, _ container.StopOptions) error {
	d.c.add("stop " + id)
	return nil
}
func (d *fakeDocker) ContainerStart(_ context.Context, id string, _ container.StartOptions) error {
	d.c.add("start " + id)
	return nil
}
func (d *fakeDocker) ContainerInspect(context.Context, string) (container.InspectResponse, error) {
	return container.InspectResponse{}, errors.New("not implemented")
}
func (d *fakeDocker) ContainerStatsOneShot(context.Context, string) (container.StatsResponseReader, error) {
	return container.StatsResponseReader{Body: io.NopCloser(strings.NewReader("{}"))}, nil
}

type fakeMaint struct{ c *calls }

func (m *fakeMaint) Maintenance(_ context.Context, id string, on bool, _ string) error {
	m.c.add(fmt.Sprintf("maint-%v %s", on, id))
	return nil
}

type fakeSink struct {
	mu   sync.Mutex
	docs []map[string]any
}

func (s *fakeSink) SendEvent(_ context.Context, _ string, doc map[string]any) error {
	s.mu.Lock()
	s.docs = append(s.docs, doc)
	s.mu.Unlock()
	return nil
}

type harness struct {
	t     *testing.T
	ctx   context.Context // stands in for Run's context
	w     *Watchman
	calls *calls
	src   *inventorytest.Fake
	sub   inventory.Subscription
	dock  *fakeDocker
	now   time.Time
	usage map[string]uint64
}

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newHarness(t *testing.T, mod func(*Config)) *harness {
	t.Helper()
	return newHarnessDir(t, mod, "")
}

// newHarnessDir is newHarness with the watchman's data directory.
func newHarnessDir(t *testing.T, mod func(*Config), dataDir string) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Window = 5 * time.Second
	cfg.MinAge = 0
	cfg.Interval = time.Second
	cfg.WakeOnConnect = false
	cfg.KVPrefix = ""
	if mod != nil {
		mod(&cfg)
	}
	c := &calls{}
	h := &harness{t: t, calls: c, dock: &fakeDocker{c: c}, now: t0, usage: map[string]uint64{},
		src: inventorytest.New()}
	w, err := New(cfg, Deps{Source: h.src, Docker: h.dock, Maintainer: &fakeMaint{c}, Events: &fakeSink{},
		SelfContainerID: "self0000000000000000", NodeName: "n1", Registerer: prometheus.NewRegistry(),
		DataDir: dataDir})
	if err != nil {
		t.Fatal(err)
	}
	w.now = func() time.Time { return h.now }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); w.wg.Wait() })
	h.ctx = ctx
	h.sub, err = h.src.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.sub.Close)
	h.w = w
	return h
}

// add puts a running container into the inventory and the watchman.
func (h *harness) add(id string, labels map[string]string) {
	c := &inventory.Container{ID: id, Name: "n-" + id, Image: "img", Labels: labels,
		State: inventory.State{Status: "running", Running: true, Pid: 100, StartedAt: t0.Add(-time.Hour)}}
	h.update(c, "start")
}

// update sets c in the inventory and lets the watchman apply the changes
// its subscription received, as Run does.
func (h *harness) update(c *inventory.Container, action string) {
	h.src.Set(action, c)
	h.w.mu.Lock()
	for _, ch := range h.sub.Pending() {
		h.w.applyLocked(h.ctx, ch)
	}
	h.w.mu.Unlock()
}

// tick advances the fake clock by a second, feeds every running container a
// sample with the given CPU use (cores; default 0), and decides.
func (h *harness) tick(cpu map[string]float64) {
	h.now = h.now.Add(time.Second)
	w := h.w
	w.mu.Lock()
	for id, t := range w.ctrs {
		if !t.c.State.Running {
			continue
		}
		h.usage[id] += uint64(cpu[id] * 1e9)
		t.prev, t.hasPrev = t.cur, t.hasCur
		t.cur = Sample{At: h.now, Cgroup: cgroup.Stats{CPUUsage: h.usage[id]}}
		t.hasCur = true
		w.observeLocked(t)
	}
	w.decideLocked(h.ctx, h.now)
	w.mu.Unlock()
	w.wg.Wait() // let actions finish
}

// snapshot lets the watchman see c as in the first inventory snapshot
// after a start.
func (h *harness) snapshot(c *inventory.Container) {
	h.w.mu.Lock()
	h.w.upsertLocked(c, "snapshot")
	h.w.mu.Unlock()
}

// get returns a copy of the inventory's container id.
func (h *harness) get(id string) inventory.Container {
	c, ok := h.src.Get(id)
	if !ok {
		h.t.Fatalf("no container %s in the inventory", id)
	}
	return *c
}

func (h *harness) state(id string) string {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	return h.w.ctrs[id].state
}

func (h *harness) wantCalls(want ...string) {
	h.t.Helper()
	got := h.calls.get()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		h.t.Errorf("calls %q, want %q", got, want)
	}
}

var optIn = map[string]string{policy.LabelEnable: "true"}

func TestPauseAfterWindowInOrder(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	h.tick(map[string]float64{"a": 1})
	for range 5 {
		if h.state("a") == StatePaused {
			t.Fatal("paused before the window was over")
		}
		h.tick(nil)
	}
	// The first tick only gives a baseline; after five idle seconds it is
	// paused, maintenance first.
	h.tick(nil)
	h.wantCalls("maint-true a", "pause a")
	if h.state("a") != StatePaused {
		t.Fatalf("state %s", h.state("a"))
	}
	if got := testutil.ToFloat64(h.w.m.pauses.WithLabelValues("idle")); got != 1 {
		t.Errorf("pauses_total{reason=idle} = %v", got)
	}
	// Wake: unpause, then maintenance off (no health check).
	if err := h.w.Wake(context.Background(), "a", "api"); err != nil {
		t.Fatal(err)
	}
	h.wantCalls("maint-true a", "pause a", "unpause a", "maint-false a")
	if h.state("a") != StateActive {
		t.Errorf("state after wake %s", h.state("a"))
	}
}

func TestNeverPaused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		id     string
		labels map[string]string
		cfg    func(*Config)
		state  string
	}{
		{"no opt-in", "a", nil, nil, StateUnmanaged},
		{"opted out", "a", map[string]string{policy.LabelEnable: "false"}, nil, StateUnmanaged},
		{"malformed", "a", map[string]string{policy.LabelEnable: "true", policy.LabelCPU: "lots"}, nil, StateInvalid},
		{"unknown label", "a", map[string]string{policy.LabelEnable: "true", "heartwood.watchman.cpus": "1"}, nil, StateInvalid},
		{"excluded by name", "a", optIn, func(c *Config) { c.Exclude = []string{"n-a"} }, StateExcluded},
		{"the agent itself", "self0000000000000000", optIn, nil, StateExcluded},
		{"node dry-run", "a", optIn, func(c *Config) { c.DryRun = true }, StateWouldPause},
		{"label dry-run", "a", map[string]string{policy.LabelEnable: "true", policy.LabelDryRun: "true"}, nil, StateWouldPause},
		{"notify", "a", map[string]string{policy.LabelEnable: "true", policy.LabelAction: "notify"}, nil, StateNotified},
		{"min-age", "a", map[string]string{policy.LabelEnable: "true", policy.LabelMinAge: "2h"}, nil, StateIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			h.add(tc.id, tc.labels)
			for range 10 {
				h.tick(nil)
			}
			h.wantCalls()
			if s := h.state(tc.id); s != tc.state {
				t.Errorf("state %s, want %s", s, tc.state)
			}
			if err := h.w.Pause(context.Background(), tc.id, "test"); err == nil && tc.state != StateWouldPause && tc.state != StateNotified && tc.state != StateIdle {
				t.Errorf("Pause accepted a %s container", tc.state)
			}
		})
	}
}

func TestDryRunRecordsOnce(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.DryRun = true })
	h.add("a", optIn)
	for range 20 {
		h.tick(nil)
	}
	if got := testutil.ToFloat64(h.w.m.wouldPause); got != 1 {
		t.Errorf("would_pause_total = %v, want 1 per idle streak", got)
	}
	h.tick(map[string]float64{"a": 1}) // active again: a new streak may record again
	for range 7 {
		h.tick(nil)
	}
	if got := testutil.ToFloat64(h.w.m.wouldPause); got != 2 {
		t.Errorf("would_pause_total = %v, want 2", got)
	}
	h.wantCalls()
}

func TestGroupPausesTogether(t *testing.T) {
	h := newHarness(t, nil)
	g := map[string]string{policy.LabelEnable: "true", policy.LabelGroup: "job"}
	h.add("a", g)
	h.add("b", g)
	h.add("c", optIn) // alone
	busyB := map[string]float64{"b": 0.5}
	for range 10 {
		h.tick(busyB)
	}
	// c paused alone; a is idle but its group member b is busy.
	h.wantCalls("maint-true c", "pause c")
	if h.state("a") != StateIdle {
		t.Fatalf("a: %s", h.state("a"))
	}
	for range 6 {
		h.tick(nil)
	}
	h.wantCalls("maint-true c", "pause c", "maint-true a", "pause a", "maint-true b", "pause b")
	// Waking one wakes the group.
	if err := h.w.Wake(context.Background(), "b", "api"); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(h.calls.get()[6:], "|")
	for _, want := range []string{"unpause a", "unpause b", "maint-false a", "maint-false b"} {
		if !strings.Contains(got, want) {
			t.Errorf("wake calls %q lack %q", got, want)
		}
	}
	if h.state("a") != StateActive || h.state("b") != StateActive || h.state("c") != StatePaused {
		t.Errorf("states a=%s b=%s c=%s", h.state("a"), h.state("b"), h.state("c"))
	}
}

func TestSwarmServiceIsTheDefaultGroup(t *testing.T) {
	h := newHarness(t, nil)
	for _, id := range []string{"a", "b"} {
		c := &inventory.Container{ID: id, Name: "svc." + id, Labels: optIn, Swarm: &inventory.SwarmTask{ServiceName: "svc"},
			State: inventory.State{Running: true, Pid: 1, StartedAt: t0.Add(-time.Hour)}}
		h.update(c, "start")
	}
	for range 10 {
		h.tick(map[string]float64{"a": 1})
	}
	h.wantCalls()
	for range 6 {
		h.tick(nil)
	}
	if len(h.calls.get()) != 4 {
		t.Errorf("calls %v", h.calls.get())
	}
}

func TestPauseCap(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.MaxPausesPerMinute = 1 })
	h.add("a", optIn)
	h.add("b", optIn)
	for range 7 {
		h.tick(nil)
	}
	if n := len(h.calls.get()); n != 2 {
		t.Fatalf("calls %v, want one pause", h.calls.get())
	}
	if got := testutil.ToFloat64(h.w.m.decisions.WithLabelValues("deferred")); got != 1 {
		t.Errorf("deferred = %v, want one event, not one per tick", got)
	}
	for range 60 {
		h.tick(nil)
	}
	if n := len(h.calls.get()); n != 4 {
		t.Errorf("calls %v, want the second pause after a minute", h.calls.get())
	}
}

func TestOptInRecheckedAtActionTime(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	// The inventory now says the label is gone, but the watchman has not
	// seen the change yet.
	h.src.Set("update", &inventory.Container{ID: "a", Name: "n-a", State: inventory.State{Running: true, Pid: 100}})
	for range 7 {
		h.tick(nil)
	}
	h.wantCalls()
	if got := testutil.ToFloat64(h.w.m.decisions.WithLabelValues("refused")); got < 1 {
		t.Errorf("refused = %v", got)
	}
}

func TestPauseFailureEndsMaintenance(t *testing.T) {
	h := newHarness(t, nil)
	h.dock.pauseErr = errors.New("boom")
	h.add("a", optIn)
	for range 7 {
		h.tick(nil)
	}
	got := h.calls.get()
	if len(got) < 3 || got[0] != "maint-true a" || got[1] != "pause a" || got[2] != "maint-false a" {
		t.Errorf("calls %v", got)
	}
	if h.state("a") == StatePaused {
		t.Error("state paused after a failed pause")
	}
}

func TestStopAction(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", map[string]string{policy.LabelEnable: "true", policy.LabelAction: "stop"})
	for range 7 {
		h.tick(nil)
	}
	h.wantCalls("maint-true a", "stop a")
	c := h.get("a")
	c.State.Running = false
	h.update(&c, "die")
	if h.state("a") != StateStopped {
		t.Errorf("state %s", h.state("a"))
	}
	if err := h.w.Wake(context.Background(), "n-a", "api"); err != nil {
		t.Fatal(err)
	}
	h.wantCalls("maint-true a", "stop a", "start a", "maint-false a")
}

func TestManualUnpauseNoticed(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	for range 7 {
		h.tick(nil)
	}
	c := h.get("a")
	c.State.Paused = true
	h.update(&c, "pause")
	if h.state("a") != StatePaused {
		t.Fatalf("state %s", h.state("a"))
	}
	// A stale unpause event (inspect shows it paused) is not a manual wake.
	h.update(&c, "unpause")
	if h.state("a") != StatePaused {
		t.Fatalf("stale unpause changed state to %s", h.state("a"))
	}
	c2 := c
	c2.State.Paused = false
	h.update(&c2, "unpause")
	h.w.wg.Wait()
	if h.state("a") != StateActive {
		t.Errorf("state %s after manual unpause", h.state("a"))
	}
	if got := testutil.ToFloat64(h.w.m.wakes.WithLabelValues("manual")); got != 1 {
		t.Errorf("wakes{manual} = %v", got)
	}
	h.wantCalls("maint-true a", "pause a", "maint-false a")
}

func TestAdoptPausedOnRestart(t *testing.T) {
	// The data directory of an earlier run says the watchman paused a.
	dir := t.TempDir()
	rec := `{"version":1,"containers":[{"id":"a","action":"pause","since":"2026-11-28T11:00:00Z","maintenance":true}]}`
	if err := os.WriteFile(filepath.Join(dir, OwnedFileName), []byte(rec), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarnessDir(t, nil, dir)
	c := &inventory.Container{ID: "a", Name: "n-a", Labels: optIn, State: inventory.State{Running: true, Paused: true, Pid: 1}}
	h.snapshot(c)
	if h.state("a") != StatePaused {
		t.Errorf("an opted-in container paused before a restart is %s", h.state("a"))
	}
	c2 := &inventory.Container{ID: "b", Name: "n-b", State: inventory.State{Running: true, Paused: true, Pid: 1}}
	h.snapshot(c2)
	if h.state("b") != StatePausedExternal {
		t.Errorf("a paused container without opt-in is %s", h.state("b"))
	}
	// Opted in and paused, but not by the watchman: an operator's pause.
	c3 := &inventory.Container{ID: "c", Name: "n-c", Labels: optIn, State: inventory.State{Running: true, Paused: true, Pid: 1}}
	h.snapshot(c3)
	if h.state("c") != StatePausedExternal {
		t.Errorf("an opted-in container the watchman did not pause is %s", h.state("c"))
	}
}

func TestKVOverridesDefaults(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	h.w.applyKV(map[string]string{"window": "1h", "cpu": "0.5"})
	d, dry := h.w.Defaults()
	if d.Window != time.Hour || d.CPU != 0.5 || dry {
		t.Fatalf("defaults %+v dry %v", d, dry)
	}
	for range 10 {
		h.tick(map[string]float64{"a": 0.3}) // below the new CPU threshold
	}
	h.wantCalls() // but the window is an hour now
	// Invalid values keep the previous settings.
	h.w.applyKV(map[string]string{"window": "soon"})
	if d, _ := h.w.Defaults(); d.Window != time.Hour {
		t.Errorf("invalid KV replaced the window: %s", d.Window)
	}
	// The node's dry-run switch.
	h.w.applyKV(map[string]string{"nodes/n1/dry-run": "true"})
	if _, dry := h.w.Defaults(); !dry {
		t.Error("node dry-run switch ignored")
	}
	h.w.applyKV(map[string]string{"nodes/other/dry-run": "true"})
	if _, dry := h.w.Defaults(); dry {
		t.Error("another node's dry-run switch applied")
	}
	// Back to the local configuration when the keys go away.
	h.w.applyKV(map[string]string{})
	if d, _ := h.w.Defaults(); d.Window != 5*time.Second {
		t.Errorf("window %s after the keys were removed", d.Window)
	}
}

func TestDescribeContainer(t *testing.T) {
	h := newHarness(t, nil)
	h.add("abcdef0123456789", optIn)
	h.tick(nil)
	h.tick(nil)
	v, ok := h.w.DescribeContainer("abcdef01").(*ContainerView)
	if !ok || v.State != StateIdle || v.Policy == nil || v.LastSample == nil || v.IdleSeconds != 1 || v.SecondsUntilAction != 4 {
		t.Errorf("view %+v", v)
	}
	if h.w.DescribeContainer("nope") != nil {
		t.Error("unknown container described")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	for _, tc := range []struct {
		mod  func(*Config)
		want string
	}{
		{func(c *Config) { c.Interval = 0 }, "watchman.interval: must be >= 100ms, got 0s"},
		{func(c *Config) { c.Window = -time.Second }, "watchman.window: must be > 0, got -1s"},
		{func(c *Config) { c.CPU = -1 }, "watchman.cpu: must be >= 0, got -1"},
		{func(c *Config) { c.GPU = 101 }, "watchman.gpu: must be between 0 and 100, got 101"},
		{func(c *Config) { c.Pressure = 2 }, "watchman.pressure"},
		{func(c *Config) { c.Action = "kill" }, "watchman.action: unknown action \"kill\""},
		{func(c *Config) { c.MaxPausesPerMinute = -1 }, "watchman.max-pauses-per-minute"},
		{func(c *Config) { c.HealthCheckPeers = []string{"10.0.0.0/8", "nope"} }, "watchman.health-check-peers: \"nope\" is neither"},
		{func(c *Config) { c.WakePoll = time.Millisecond }, "watchman.wake-poll"},
		{func(c *Config) { c.WakeMechanism = "ebpf" }, `watchman.wake-mechanism: must be auto or poll, got "ebpf"`},
		{func(c *Config) { c.ProcRoot = "" }, "watchman.proc-root"},
		{func(c *Config) { c.Exclude = []string{""} }, "watchman.exclude"},
		{func(c *Config) { c.KVPrefix = "/x" }, "watchman.kv-prefix"},
	} {
		c := DefaultConfig()
		tc.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate() = %v, want %q", err, tc.want)
		}
	}
}

func TestComputeRates(t *testing.T) {
	prev := Sample{At: t0, HasNet: true,
		Cgroup: cgroup.Stats{CPUUsage: 1e9, CFSThrottled: 3, BlkIO: []cgroup.BlkDev{{Major: 8, ReadBytes: 100, WriteBytes: 100}}, HasPSI: true},
	}
	prev.Net = append(prev.Net, ifc("lo", 0, 0), ifc("eth0", 1000, 1000))
	cur := Sample{At: t0.Add(2 * time.Second), HasNet: true,
		Cgroup: cgroup.Stats{CPUUsage: 2e9, CFSThrottled: 3, BlkIO: []cgroup.BlkDev{{Major: 8, ReadBytes: 2148, WriteBytes: 100}}, HasPSI: true},
	}
	cur.Pressure, cur.HasPressure = 0.25, true
	cur.Net = append(cur.Net, ifc("lo", 1e9, 1e9), ifc("eth0", 3000, 1000))
	r := computeRates(&prev, &cur)
	if r.CPU != 0.5 || r.NetBps != 1000 || r.DiskBps != 1024 || r.ThrottledPeriods != 0 || r.Pressure != 0.25 {
		t.Errorf("rates %+v", r)
	}
	// A counter reset (restart) never gives negative or huge rates.
	r = computeRates(&cur, &prev)
	if r.CPU != 0 {
		t.Errorf("reset gave %v", r.CPU)
	}
}

func ifc(name string, rx, tx uint64) procfs.Iface {
	return procfs.Iface{Name: name, RxBytes: rx, TxBytes: tx}
}

// fakeContainerTree makes a container's files under a temporary root from
// the v2 cgroupfs fixture: its cgroup directory (returned), and
// /proc/4242/cgroup pointing at it.
func fakeContainerTree(t *testing.T, id string) (root, cg, dir string) {
	t.Helper()
	src := filepath.Join("cgroup", "testdata", "v2-cgroupfs")
	root = t.TempDir()
	cg = filepath.Join(root, "sys/fs/cgroup")
	dir = filepath.Join(cg, "docker", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cgroup.controllers"} {
		b, _ := os.ReadFile(filepath.Join(src, "sys/fs/cgroup", f))
		os.WriteFile(filepath.Join(cg, f), b, 0o644)
	}
	ents, _ := os.ReadDir(filepath.Join(src, "sys/fs/cgroup/docker", id))
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, "sys/fs/cgroup/docker", id, e.Name()))
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	os.MkdirAll(filepath.Join(root, "proc/4242"), 0o755)
	os.WriteFile(filepath.Join(root, "proc/4242/cgroup"), []byte("0::/docker/"+id+"\n"), 0o644)
	return root, cg, dir
}

// TestSamplerPressure: PSI is read with the detail files and the stall
// ratio covers the whole detail period.
func TestSamplerPressure(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	root, cg, dir := fakeContainerTree(t, id)
	sm, err := openSampler(filepath.Join(root, "proc"), cg, 4242, newNetnsSet(filepath.Join(root, "proc")), cadence{pressure: 5, detail: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.close()
	var s Sample
	at := t0
	if _, err := sm.read(&s, at); err != nil || s.HasPressure {
		t.Fatalf("first read: %v, pressure %v", err, s.HasPressure)
	}
	// 2.5 s of I/O stall during the next 5 s.
	os.WriteFile(filepath.Join(dir, "io.pressure"), []byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=3389123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"), 0o644)
	for i := 1; i <= 4; i++ {
		at = at.Add(time.Second)
		if _, err := sm.read(&s, at); err != nil || s.HasPressure {
			t.Fatalf("hot read %d: %v, pressure %v", i, err, s.HasPressure)
		}
	}
	at = at.Add(time.Second)
	if _, err := sm.read(&s, at); err != nil || !s.HasPressure || s.Pressure != 0.5 {
		t.Fatalf("full read: %v, pressure %v %v", err, s.HasPressure, s.Pressure)
	}
	at = at.Add(time.Second)
	if _, err := sm.read(&s, at); err != nil || s.Pressure != 0.5 {
		t.Fatalf("the ratio holds until the next full read: %v %v", err, s.Pressure)
	}
	if sm.cgPath != "/docker/"+id {
		t.Errorf("id label %q", sm.cgPath)
	}
}

func TestNewErrors(t *testing.T) {
	c := &calls{}
	src := inventorytest.New()
	reg := prometheus.NewRegistry()
	deps := Deps{Source: src, Docker: &fakeDocker{c: c}, Registerer: reg}
	if _, err := New(DefaultConfig(), deps); err != nil {
		t.Fatal(err)
	}
	if _, err := New(DefaultConfig(), deps); err == nil {
		t.Error("registering the metrics twice did not fail")
	}
	bad := DefaultConfig()
	bad.Window = 0
	if _, err := New(bad, Deps{Source: src, Docker: &fakeDocker{c: c}}); err == nil || !strings.Contains(err.Error(), "watchman.window") {
		t.Errorf("invalid config: %v", err)
	}
	if _, err := New(DefaultConfig(), Deps{Docker: &fakeDocker{c: c}}); err == nil {
		t.Error("missing Source accepted")
	}
	if _, err := New(DefaultConfig(), Deps{Source: src}); err == nil {
		t.Error("missing Docker accepted")
	}
}
