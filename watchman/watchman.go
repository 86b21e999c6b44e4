// Package watchman measures every container on the node from its cgroup and
// network namespace files, exports cAdvisor-compatible metrics, and pauses
// (or stops, or reports) idle containers that opted in by label, waking them
// on demand or when a client connects.
//
// Data flow: the inventory tells the watchman which containers exist; every
// Config.Interval it reads each running container's cgroup files (kept open,
// re-read from offset 0) and /proc/<pid>/net/dev, turns two consecutive
// readings into rates, and feeds the rates of opted-in containers to a
// policy.Tracker. When every member of a group has been idle for its whole
// window, the group is paused: the Maintainer takes its services out of
// discovery first, then Docker pauses it. While it is paused its TCP table
// is polled and a new inbound connection to a listening port wakes it.
package watchman

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/gpu"
	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// Watchman is the idle-container pauser. Create it with New and run it with
// Run.
type Watchman struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	now   func() time.Time
	peers []netip.Prefix
	m     *metrics
	gpu   gpu.Reader
	// dockerTimeout bounds every Docker call the watchman makes.
	dockerTimeout time.Duration

	mu       sync.Mutex
	ctrs     map[string]*tracked
	defaults policy.Defaults // local config overlaid with KV
	kvDryRun bool            // cluster or node dry-run switch from KV
	limiter  *policy.Limiter
	ready    bool
	gpuDevs  []gpu.Device // last GPU sample, for the collector
	// owned is the record of what the watchman paused or stopped, kept in
	// the data directory across restarts.
	owned *ownedStore
	// wg counts the goroutines Run (and the tick and change handling it
	// drives) started; Run waits for them before it returns.
	wg sync.WaitGroup
	// watchKick asks Run to start connection watches for containers the
	// watchman paused outside Run's goroutine (API pauses, failed wakes).
	watchKick chan struct{}
	// mechLogged holds the mechanism/reason kinds of connection watches
	// already logged; watchSeries counts the watches behind each
	// connection_watch series.
	mechLogged  map[string]bool
	watchSeries map[[2]string]int
	events      chan map[string]any
	fbSem       chan struct{}
	// nets shares each network namespace's net/dev among its containers.
	nets *netnsSet
}

// New validates cfg and returns a watchman.
func New(cfg Config, deps Deps) (*Watchman, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Source == nil {
		return nil, errors.New("watchman: deps.Source is required")
	}
	if deps.Docker == nil {
		return nil, errors.New("watchman: deps.Docker is required")
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	peers, _ := parsePeers(cfg.HealthCheckPeers)
	w := &Watchman{
		cfg:           cfg,
		deps:          deps,
		log:           log,
		now:           time.Now,
		peers:         peers,
		dockerTimeout: defaultDockerTimeout,
		ctrs:          map[string]*tracked{},
		defaults:      cfg.defaults(),
		limiter:       policy.NewLimiter(cfg.MaxPausesPerMinute),
		watchKick:     make(chan struct{}, 1),
		mechLogged:    map[string]bool{},
		watchSeries:   map[[2]string]int{},
		events:        make(chan map[string]any, 256),
		fbSem:         make(chan struct{}, 2),
		nets:          newNetnsSet(cfg.ProcRoot),
	}
	g, err := gpu.Open(cfg.ProcRoot)
	if err != nil {
		log.Info("GPU metrics unavailable; gpu thresholds are ignored", "reason", err)
	} else {
		w.gpu = g
	}
	if w.m, err = newMetrics(w, deps.Registerer); err != nil {
		if w.gpu != nil {
			_ = w.gpu.Close()
		}
		return nil, err
	}
	w.owned = openOwnedStore(deps.DataDir, log, w.m.stateFileErrors)
	return w, nil
}

// Ready returns nil once the first sample of every running container has
// been taken.
func (w *Watchman) Ready() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.ready {
		return errors.New("watchman: first sample not taken yet")
	}
	return nil
}

// Run samples and acts until ctx ends. It returns nil when ctx ends. Every
// goroutine it starts (automatic pauses, connection watches, the Docker
// stats fallback, maintenance after a manual unpause, the KV watch and the
// event shipper) runs under ctx and has ended when Run returns.
func (w *Watchman) Run(ctx context.Context) error {
	sub, err := w.deps.Source.Subscribe(ctx)
	if err != nil {
		return nil // ctx ended before the inventory's first sync
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		sub.Close()
		w.mu.Lock()
		for _, t := range w.ctrs {
			w.stopWatchLocked(t)
		}
		w.mu.Unlock()
		w.wg.Wait()
		w.mu.Lock()
		for _, t := range w.ctrs {
			t.sm.close()
			t.sm = nil
		}
		w.ready = false
		w.mu.Unlock()
	}()
	w.mu.Lock()
	for _, c := range sub.Snapshot() {
		w.upsertLocked(c, "snapshot")
	}
	w.owned.forgetRestored()
	w.persistLocked()
	// Containers this watchman paused (in this process before a restart of
	// Run, or recorded in the data directory) are watched again.
	w.watchPausedLocked(ctx)
	w.mu.Unlock()
	w.goRun(ctx, "events", w.shipEvents)
	if w.deps.Samples != nil && w.cfg.ESInterval > 0 {
		w.goRun(ctx, "utilization", w.shipUtilization)
	}
	if w.deps.KV != nil && w.cfg.KVPrefix != "" {
		w.goRun(ctx, "kv", w.watchKV)
	}
	w.tick(ctx)
	w.mu.Lock()
	w.ready = true
	w.mu.Unlock()
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Changed():
			changes := sub.Pending()
			w.mu.Lock()
			for _, ch := range changes {
				w.applyLocked(ctx, ch)
			}
			w.mu.Unlock()
		case <-w.watchKick:
			w.mu.Lock()
			w.watchPausedLocked(ctx)
			w.mu.Unlock()
		case <-t.C:
			w.tick(ctx)
		}
	}
}

// goRun starts fn as a goroutine of Run: it gets Run's context, Run waits
// for it, and a panic in it is recovered and counted.
func (w *Watchman) goRun(ctx context.Context, what string, fn func(ctx context.Context)) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer w.recoverPanic(what, nil)
		fn(ctx)
	}()
}

// tick samples every running container and acts on due groups.
func (w *Watchman) tick(ctx context.Context) {
	// Pin the goroutine to its thread so the thread's CPU time measures
	// this tick's own cost (exported as tick_cpu_seconds_total).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	defer func() { w.m.tickCPU.Add((threadCPU() - cpu0).Seconds()) }()
	start := time.Now()
	var snap gpu.Snapshot
	if w.gpu != nil {
		s, err := w.gpu.Sample(ctx)
		if err != nil {
			w.m.sampleErrors.WithLabelValues("gpu").Inc()
		} else {
			snap = s
		}
	}
	w.mu.Lock()
	if w.gpu != nil {
		w.gpuDevs = snap.Devices
	}
	w.nets.nextTick()
	for id, t := range w.ctrs {
		w.sampleLocked(ctx, t, snap.Containers[id], snap.Containers != nil)
	}
	w.decideLocked(ctx, w.now())
	w.mu.Unlock()
	w.m.tickDuration.Observe(time.Since(start).Seconds())
}

// applyLocked folds one inventory change into the state.
func (w *Watchman) applyLocked(ctx context.Context, ch inventory.Change) {
	defer w.persistLocked()
	c := ch.Container
	if ch.Kind == inventory.Removed {
		if t, ok := w.ctrs[c.ID]; ok {
			w.stopWatchLocked(t)
			t.endPauseAttempt() // a wake waiting for it goes on
			t.sm.close()
			delete(w.ctrs, c.ID)
		}
		return
	}
	t := w.upsertLocked(c, ch.Action)
	switch ch.Action {
	case "unpause":
		// The inventory inspects after each event, so a stale unpause
		// event (ours, processed after a later pause) shows Paused; one
		// observed before the watchman's latest pause completed but applied
		// after it is stale too.
		if t.pausedByUs() && !t.busy() && !c.State.Paused && !ch.Time.Before(t.since) {
			// Somebody unpaused it by hand: track it as active again and
			// end the maintenance we started.
			w.stopWatchLocked(t)
			maint := t.unpausedByHand()
			t.tr.Reset()
			t.hasPrev = false
			w.m.wakes.WithLabelValues(TriggerManual).Inc()
			w.eventLocked(t, "wake", TriggerManual, "unpaused outside the watchman", nil)
			if maint && w.deps.Maintainer != nil {
				id := c.ID
				w.goRun(ctx, "maintenance", func(ctx context.Context) {
					if err := w.deps.Maintainer.Maintenance(ctx, id, false, "watchman: unpaused manually"); err != nil {
						w.log.Warn("end maintenance after manual unpause failed", "container", id, "err", err)
					}
				})
			}
		}
	case "die", "stop", "kill":
		if !c.State.Running {
			w.stopWatchLocked(t)
		}
	}
}

// upsertLocked records the container's new state and re-derives its
// policy.
func (w *Watchman) upsertLocked(c *inventory.Container, action string) *tracked {
	t, ok := w.ctrs[c.ID]
	if !ok {
		t = &tracked{}
		w.ctrs[c.ID] = t
	}
	prev := t.c
	t.c = c
	if prev != nil && prev.State.Pid != c.State.Pid {
		t.resetMeasurement()
		t.tr.Reset()
	}
	w.policyLocked(t)
	rec, known := w.owned.restored(c.ID, action == "snapshot")
	switch {
	case !c.State.Running:
		t.sm.close()
		t.sm, t.hasCur, t.hasPrev, t.hasRates = nil, false, false, false
		if known && rec.Action == ownedStop && !t.ours() {
			// Stopped by an earlier run of the watchman: a wake starts it.
			t.pausedByWatchman(true, rec.Since, rec.Maintenance)
		}
		t.seenNotRunning()
	case c.State.Paused:
		if !t.pausedByUs() && !t.busy() {
			if known && rec.Action == ownedPause {
				// Paused by an earlier run of the watchman (the agent
				// restarted): it is still the watchman's to wake.
				t.adopt(rec.Since, rec.Maintenance)
			} else {
				t.seenPausedExternally()
			}
		}
	default:
		t.seenRunning(w.baseStateLocked(t))
	}
	return t
}

// policyLocked re-derives the container's policy from its labels and the
// current defaults.
func (w *Watchman) policyLocked(t *tracked) {
	prevErr := t.polErr
	t.pol, t.polErr = policy.Parse(t.c.Labels, w.defaults)
	t.managed = t.polErr == nil && t.pol.Enabled && !w.excludedLocked(t.c)
	if t.polErr != nil && (prevErr == nil || prevErr.Error() != t.polErr.Error()) {
		w.log.Warn("malformed watchman labels; the container will not be paused", "container", t.c.Name, "err", t.polErr)
		w.m.policyErrors.Inc()
		w.eventLocked(t, "policy-invalid", "labels", t.polErr.Error(), nil)
	}
	if !t.busy() && !t.ours() && t.c.State.Running && !t.c.State.Paused {
		switch base := w.baseStateLocked(t); {
		case base != StateActive:
			t.set(base)
		case t.state != StateIdle && t.state != StateWouldPause && t.state != StateNotified:
			t.set(StateActive)
		}
	}
}

// baseStateLocked is the state of a running, unpaused container before
// any idle decision.
func (w *Watchman) baseStateLocked(t *tracked) string {
	switch {
	case w.isSelf(t.c.ID) || w.excludedLocked(t.c):
		return StateExcluded
	case t.polErr != nil:
		return StateInvalid
	case !t.pol.Enabled:
		return StateUnmanaged
	}
	return StateActive
}

func (w *Watchman) isSelf(id string) bool {
	return inventory.IsSelf(id, w.deps.SelfContainerID)
}

func (w *Watchman) excludedLocked(c *inventory.Container) bool {
	if w.isSelf(c.ID) {
		return true
	}
	for _, e := range w.cfg.Exclude {
		if c.Names(e) {
			return true
		}
	}
	return false
}

// groupKey is the container's pause group: the group label, else the
// Swarm service, else the container alone.
func groupKey(t *tracked) string {
	switch {
	case t.pol.Group != "":
		return "group:" + t.pol.Group
	case t.c.Swarm != nil && t.c.Swarm.ServiceName != "":
		return "service:" + t.c.Swarm.ServiceName
	}
	return "container:" + t.c.ID
}

// dryRunLocked reports whether actions on t are only recorded.
func (w *Watchman) dryRunLocked(t *tracked) bool {
	return w.cfg.DryRun || w.kvDryRun || t.pol.DryRun
}

// lookupLocked finds a tracked container by full ID, name or unique ID
// prefix (inventory.Find's rules).
func (w *Watchman) lookupLocked(ref string) (*tracked, bool) {
	if t, ok := w.ctrs[inventory.NormalizeRef(ref)]; ok {
		return t, true
	}
	all := make([]*tracked, 0, len(w.ctrs))
	for _, t := range w.ctrs {
		all = append(all, t)
	}
	t, err := inventory.Find(all, func(t *tracked) *inventory.Container { return t.c }, ref)
	return t, err == nil
}

// ErrNotFound is returned for an unknown container. It is
// inventory.ErrNotFound, so that callers test for one not-found error.
var ErrNotFound = inventory.ErrNotFound

func (w *Watchman) errNotFound(ref string) error {
	return fmt.Errorf("watchman: %w: %s", ErrNotFound, ref)
}

// threadCPU returns the calling thread's user+system CPU time.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
