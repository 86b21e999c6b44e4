package watchman

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/gpu"
	"github.com/heartwood-ops/heartwood/watchman/policy"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// hookDocker wraps the harness's fake Docker engine with a pause that can
// block or panic.
type hookDocker struct {
	*fakeDocker
	pause func(ctx context.Context, id string) error
}

func (d *hookDocker) ContainerPause(ctx context.Context, id string) error {
	if d.pause != nil {
		return d.pause(ctx, id)
	}
	return d.fakeDocker.ContainerPause(ctx, id)
}

// pauseByOperator records a `docker pause` that the watchman did not do.
func (h *harness) pauseByOperator(id string) {
	c := h.get(id)
	c.State.Paused = true
	h.update(&c, "pause")
}

// TestWakeRefusesOperatorPause: a container an operator paused stays paused
// on a plain wake, even when it is opted in.
func TestWakeRefusesOperatorPause(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	h.pauseByOperator("a")
	if s := h.state("a"); s != StatePausedExternal {
		t.Fatalf("state %s", s)
	}
	err := h.w.Wake(context.Background(), "a", "api")
	if err == nil || !strings.Contains(err.Error(), "force") {
		t.Errorf("Wake of an operator's pause = %v, want an error that asks for force", err)
	}
	h.wantCalls()
}

// TestForceWakeUnpausesOperatorPause: with force the operator's pause is
// undone, and the error without it is ErrForceRequired.
func TestForceWakeUnpausesOperatorPause(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", nil) // not even opted in
	h.pauseByOperator("a")
	if err := h.w.WakeWith(context.Background(), "n-a", WakeOptions{Trigger: TriggerCLI}); !errors.Is(err, ErrForceRequired) {
		t.Fatalf("WakeWith without force = %v, want ErrForceRequired", err)
	}
	if err := h.w.WakeWith(context.Background(), "n-a", WakeOptions{Trigger: TriggerCLI, Force: true}); err != nil {
		t.Fatal(err)
	}
	h.wantCalls("unpause a")
}

// TestWakeWinsOverPauseInFlight: a wake that arrives while the pause is
// still at Docker leaves the container running.
func TestWakeWinsOverPauseInFlight(t *testing.T) {
	h := newHarness(t, nil)
	entered := make(chan struct{})
	release := make(chan struct{})
	fd := h.w.deps.Docker.(*fakeDocker)
	h.w.deps.Docker = &hookDocker{fakeDocker: fd, pause: func(ctx context.Context, id string) error {
		close(entered)
		select {
		case <-ctx.Done():
			fd.c.add("pause-abandoned " + id)
			return ctx.Err()
		case <-release:
			fd.c.add("pause " + id)
			return nil
		}
	}}
	h.add("a", optIn)
	pauseErr := make(chan error, 1)
	go func() { pauseErr <- h.w.Pause(context.Background(), "a", "test") }()
	<-entered
	woke := make(chan error, 1)
	go func() { woke <- h.w.Wake(context.Background(), "a", "api") }()
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("Wake: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Wake did not return while the pause was in flight")
	}
	close(release) // a pause that did not give way completes now
	select {
	case <-pauseErr:
	case <-time.After(5 * time.Second):
		t.Fatal("Pause did not return")
	}
	calls := strings.Join(h.calls.get(), "|")
	if i, j := strings.LastIndex(calls, "pause a"), strings.LastIndex(calls, "unpause a"); i > j+2 || j < 0 {
		t.Errorf("calls %s: the wake did not come last", calls)
	}
	if s := h.state("a"); s != StateActive {
		t.Errorf("state %s after a wake that arrived during the pause, want %s", s, StateActive)
	}
}

// TestWakeTriggerLabelIsBounded: the free-text reason of an API wake never
// becomes a label value.
func TestWakeTriggerLabelIsBounded(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	for range 7 {
		h.tick(nil)
	}
	if h.state("a") != StatePaused {
		t.Fatalf("state %s", h.state("a"))
	}
	if err := h.w.Wake(context.Background(), "a", "deploy 1234 by alice"); err != nil {
		t.Fatal(err)
	}
	reg := h.w.deps.Registerer.(*prometheus.Registry)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "alice") {
					t.Errorf("%s has label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if got := testutil.ToFloat64(h.w.m.wakes.WithLabelValues("api")); got != 1 {
		t.Errorf("wakes_total{trigger=api} = %v", got)
	}
	// The text goes to the decision event (queued for Run's shipper).
	found := false
	for len(h.w.events) > 0 {
		d := <-h.w.events
		if ev, _ := d["event"].(map[string]any); ev["action"] == "wake" {
			r, _ := ev["reason"].(string)
			found = found || strings.Contains(r, "deploy 1234 by alice")
		}
	}
	if !found {
		t.Error("the wake event lacks the caller's reason")
	}
}

// TestMetricsSurviveInvalidInterfaceName: an interface name that is not
// UTF-8 (a container with NET_ADMIN can make one) neither fails the scrape
// nor hides the node's other series.
func TestMetricsSurviveInvalidInterfaceName(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", nil)
	h.add("b", nil)
	h.tick(nil)
	h.w.mu.Lock()
	t1 := h.w.ctrs["a"]
	t1.cur.HasNet = true
	t1.cur.Net = []procfs.Iface{{Name: "eth0", RxBytes: 1}, {Name: "bad\xff\xfe", RxBytes: 2}}
	h.w.mu.Unlock()
	reg := h.w.deps.Registerer.(*prometheus.Registry)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var ifaces []string
	for _, mf := range mfs {
		if mf.GetName() != "container_network_receive_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "interface" {
					ifaces = append(ifaces, l.GetValue())
				}
			}
		}
	}
	if len(ifaces) != 2 {
		t.Errorf("interfaces %q, want eth0 and the sanitized bad name", ifaces)
	}
}

// TestMetricsSkipDuplicateSeries: two label values that become equal once
// bounded in length cost one series (counted), not the scrape.
func TestMetricsSkipDuplicateSeries(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", nil)
	h.tick(nil)
	long := strings.Repeat("x", 300)
	h.w.mu.Lock()
	t1 := h.w.ctrs["a"]
	t1.cur.HasNet = true
	t1.cur.Net = []procfs.Iface{{Name: long + "1"}, {Name: long + "2"}}
	h.w.mu.Unlock()
	reg := h.w.deps.Registerer.(*prometheus.Registry)
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
	if got := testutil.ToFloat64(h.w.m.seriesDropped); got == 0 {
		t.Error("the duplicate series were not counted")
	}
}

// TestPanicInPauseIsRecovered: a panic in the Docker call of a pause is an
// error and a metric, and the container is not left pausing.
func TestPanicInPauseIsRecovered(t *testing.T) {
	h := newHarness(t, nil)
	fd := h.w.deps.Docker.(*fakeDocker)
	h.w.deps.Docker = &hookDocker{fakeDocker: fd, pause: func(context.Context, string) error { panic("poison") }}
	h.add("a", optIn)
	if err := h.w.Pause(context.Background(), "a", "test"); err == nil {
		t.Error("Pause succeeded through a panic")
	}
	if got := testutil.ToFloat64(h.w.m.panics.WithLabelValues("pause")); got != 1 {
		t.Errorf("panics_total{where=pause} = %v", got)
	}
	if s := h.state("a"); s != StateActive {
		t.Errorf("state %s after the panic", s)
	}
}

// TestPanicInSampleIsRecovered: a panic while sampling one container costs
// that sample only.
func TestPanicInSampleIsRecovered(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", nil)
	h.w.mu.Lock()
	tr := h.w.ctrs["a"]
	tr.sm = &sampler{every: cadence{pressure: 1, detail: 1}, cg: (*cgroup.Reader)(nil)} // reading it panics
	h.w.sampleLocked(h.ctx, tr, gpu.ContainerUsage{}, false)
	h.w.mu.Unlock()
	if got := testutil.ToFloat64(h.w.m.panics.WithLabelValues("sample")); got != 1 {
		t.Errorf("panics_total{where=sample} = %v", got)
	}
}

// TestDockerCallsHaveDeadlines: a Docker engine that never answers does not
// hang a pause.
func TestDockerCallsHaveDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, nil)
		fd := h.w.deps.Docker.(*fakeDocker)
		h.w.deps.Docker = &hookDocker{fakeDocker: fd, pause: func(ctx context.Context, _ string) error {
			<-ctx.Done()
			return ctx.Err()
		}}
		h.add("a", optIn)
		err := h.w.Pause(context.Background(), "a", "test")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Pause against a hung engine = %v, want a deadline error", err)
		}
	})
}

func TestSanitizeLabel(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"eth0", "eth0"},
		{"bad\xff\xfe", `bad\xff\xfe`},
		{"ünï", "ünï"},
		{strings.Repeat("é", 200), strings.Repeat("é", maxLabelLen/2)},
		{strings.Repeat("a", 255) + "é", strings.Repeat("a", 255)},
	} {
		if got := sanitizeLabel(tc.in); got != tc.want {
			t.Errorf("sanitizeLabel(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOwnedRecordAcrossRestart: what the watchman paused is recorded in the
// data directory; a new watchman on the same directory adopts it (and only
// it) and forgets it once woken.
func TestOwnedRecordAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	h := newHarnessDir(t, nil, dir)
	h.add("a", optIn)
	h.add("b", map[string]string{policy.LabelEnable: "true", policy.LabelWindow: "1h"})
	for range 7 {
		h.tick(nil)
	}
	if h.state("a") != StatePaused {
		t.Fatalf("state %s", h.state("a"))
	}
	b, err := os.ReadFile(filepath.Join(dir, OwnedFileName))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := parseOwnedFile(b)
	if err != nil || len(recs) != 1 || recs["a"].Action != ownedPause || !recs["a"].Maintenance {
		t.Fatalf("record %v (%v): %s", recs, err, b)
	}

	// The agent restarts: a is still paused, and an operator paused b.
	h2 := newHarnessDir(t, nil, dir)
	for _, id := range []string{"a", "b"} {
		c := h.get(id)
		c.State.Paused = true
		h2.snapshot(&c)
	}
	h2.w.mu.Lock()
	h2.w.owned.forgetRestored()
	h2.w.mu.Unlock()
	if h2.state("a") != StatePaused || h2.state("b") != StatePausedExternal {
		t.Fatalf("after restart a=%s b=%s", h2.state("a"), h2.state("b"))
	}
	if err := h2.w.Wake(context.Background(), "b", TriggerAPI); !errors.Is(err, ErrForceRequired) {
		t.Errorf("wake of the operator's pause: %v", err)
	}
	if err := h2.w.Wake(context.Background(), "a", TriggerAPI); err != nil {
		t.Fatal(err)
	}
	h2.wantCalls("unpause a", "maint-false a")
	b, _ = os.ReadFile(filepath.Join(dir, OwnedFileName))
	if recs, err := parseOwnedFile(b); err != nil || len(recs) != 0 {
		t.Errorf("record after the wake: %v %v", recs, err)
	}
}

// TestOwnedRecordMakesDataDir: a data directory that does not exist yet is
// made at the first write instead of failing every write.
func TestOwnedRecordMakesDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	h := newHarnessDir(t, nil, dir)
	h.add("a", optIn)
	for range 7 {
		h.tick(nil)
	}
	if h.state("a") != StatePaused {
		t.Fatalf("state %s", h.state("a"))
	}
	b, err := os.ReadFile(filepath.Join(dir, OwnedFileName))
	if err != nil {
		t.Fatal(err)
	}
	if recs, err := parseOwnedFile(b); err != nil || len(recs) != 1 {
		t.Fatalf("record %v, %v; want container a", recs, err)
	}
}

// TestOwnedRecordQuarantine: an unparsable record is moved aside and
// counted; the watchman starts and owns nothing.
func TestOwnedRecordQuarantine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, OwnedFileName), []byte(`{"version":1,"containers":[{"id":"a","action":"pa`), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarnessDir(t, nil, dir)
	if got := testutil.ToFloat64(h.w.m.stateFileErrors.WithLabelValues("quarantined")); got != 1 {
		t.Errorf("state_file_errors_total{op=quarantined} = %v", got)
	}
	ents, _ := filepath.Glob(filepath.Join(dir, OwnedFileName+".corrupt-*"))
	if len(ents) != 1 {
		t.Errorf("quarantined files %v", ents)
	}
	c := &inventory.Container{ID: "a", Name: "n-a", Labels: optIn, State: inventory.State{Running: true, Paused: true, Pid: 1}}
	h.snapshot(c)
	if h.state("a") != StatePausedExternal {
		t.Errorf("state %s", h.state("a"))
	}
}

func TestParseOwnedFile(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // error substring; "" for success
	}{
		{`{"version":1,"containers":[]}`, ""},
		{`{"version":1,"containers":[{"id":"ab12","action":"stop","since":"2026-11-28T11:00:00Z","maintenance":false}]}`, ""},
		{`{"version":2,"containers":[]}`, "unknown version"},
		{`{"version":1,"containers":[{"id":"../x","action":"pause","since":"2026-11-28T11:00:00Z"}]}`, "invalid id"},
		{`{"version":1,"containers":[{"id":"a","action":"kill","since":"2026-11-28T11:00:00Z"}]}`, "invalid action"},
		{`{"version":1,"containers":[{"id":"a","action":"pause","since":"2026-11-28T11:00:00Z"},{"id":"a","action":"pause","since":"2026-11-28T11:00:00Z"}]}`, "duplicate"},
		{`{"version":1,"containers":[],"extra":1}`, "unknown field"},
		{`{"version":1,"containers":[]} {}`, "trailing"},
		{``, "EOF"},
	} {
		_, err := parseOwnedFile([]byte(tc.in))
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("parseOwnedFile(%s) = %v, want %q", tc.in, err, tc.want)
		}
	}
}

// TestAPIPauseOfGroupSucceeds: an explicit pause of a group that nothing
// interrupts succeeds for every member.
func TestAPIPauseOfGroupSucceeds(t *testing.T) {
	h := newHarness(t, nil)
	g := map[string]string{policy.LabelEnable: "true", policy.LabelGroup: "job"}
	h.add("a", g)
	h.add("b", g)
	if err := h.w.Pause(context.Background(), "a", "test"); err != nil {
		t.Fatal(err)
	}
	if h.state("a") != StatePaused || h.state("b") != StatePaused {
		t.Errorf("states a=%s b=%s", h.state("a"), h.state("b"))
	}
}

// TestNotFoundIsTheInventoryError: an unknown container is
// inventory.ErrNotFound, which the API answers with 404.
func TestNotFoundIsTheInventoryError(t *testing.T) {
	h := newHarness(t, nil)
	for name, err := range map[string]error{
		"pause": h.w.Pause(context.Background(), "nope", "test"),
		"wake":  h.w.Wake(context.Background(), "nope", TriggerAPI),
	} {
		if !errors.Is(err, inventory.ErrNotFound) || !errors.Is(err, ErrNotFound) {
			t.Errorf("%s of an unknown container: %v", name, err)
		}
	}
}

// TestStaleUnpauseIgnored: an unpause change the inventory observed before
// the watchman's latest pause, but delivered after it, is not taken for a
// manual unpause (which would drop the connection watch).
func TestStaleUnpauseIgnored(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", optIn)
	for range 7 {
		h.tick(nil)
	}
	if h.state("a") != StatePaused {
		t.Fatalf("state %s", h.state("a"))
	}
	running := h.get("a") // the inventory's view before the pause
	h.w.mu.Lock()
	pausedAt := h.w.ctrs["a"].since
	h.w.applyLocked(h.ctx, inventory.Change{Kind: inventory.Updated, Action: "unpause", Container: &running, Time: pausedAt.Add(-time.Millisecond)})
	h.w.mu.Unlock()
	if h.state("a") != StatePaused {
		t.Errorf("state %s after a stale unpause", h.state("a"))
	}
	h.w.mu.Lock()
	h.w.applyLocked(h.ctx, inventory.Change{Kind: inventory.Updated, Action: "unpause", Container: &running, Time: pausedAt.Add(time.Millisecond)})
	h.w.mu.Unlock()
	h.w.wg.Wait()
	if h.state("a") != StateActive {
		t.Errorf("state %s after a real manual unpause", h.state("a"))
	}
}
