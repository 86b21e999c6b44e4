package watchman

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/policy"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// ErrBusy is returned when another action on the container is in flight.
var ErrBusy = errors.New("watchman: another action on this container is in progress")

// ErrRefused is returned when the safety rules forbid an action.
var ErrRefused = errors.New("watchman: refused")

// Pause pauses the container ref (ID, ID prefix or name) and the other
// members of its group now, as POST /v1/containers/{id}/pause asks. The
// safety rules apply (opt-in label, exclusions, never the agent itself);
// the idle window, the per-minute cap and dry-run do not: this is an
// explicit request.
func (w *Watchman) Pause(ctx context.Context, ref, reason string) error {
	if reason == "" {
		reason = "requested"
	}
	w.mu.Lock()
	t, ok := w.lookupLocked(ref)
	if !ok {
		w.mu.Unlock()
		return w.errNotFound(ref)
	}
	if !t.managed {
		w.mu.Unlock()
		return fmt.Errorf("%w: %s is %s", ErrRefused, t.c.Name, w.baseStateLocked(t))
	}
	if t.pausedByUs || t.stoppedByUs {
		w.mu.Unlock()
		return nil
	}
	key := groupKey(t)
	var ids []string
	var members []*tracked
	for _, m := range w.ctrs {
		// The inventory's paused flag may lag behind our own pause and
		// wake; the container asked for is paused regardless.
		if m.managed && m.c.State.Running && !m.pausedByUs && !m.stoppedByUs && groupKey(m) == key &&
			(m == t || !m.c.State.Paused) {
			if m.busy {
				w.mu.Unlock()
				return fmt.Errorf("%w: %s", ErrBusy, m.c.Name)
			}
			members = append(members, m)
		}
	}
	for _, m := range members {
		m.busy = true
		w.setStateLocked(m, StatePausing)
		ids = append(ids, m.c.ID)
	}
	w.mu.Unlock()
	return w.pauseIDs(ctx, ids, policy.ActionPause, "api", reason)
}

// pauseIDs pauses (or stops) a group whose members the caller marked busy.
// If one member fails, the members already paused are woken again.
func (w *Watchman) pauseIDs(ctx context.Context, ids []string, action policy.Action, trigger, reason string) error {
	var done []string
	for i, id := range ids {
		if err := w.pauseOne(ctx, id, action, trigger, reason); err != nil {
			w.mu.Lock()
			for _, rest := range ids[i+1:] {
				if t, ok := w.ctrs[rest]; ok {
					t.busy = false
					w.setStateLocked(t, w.baseStateLocked(t))
				}
			}
			w.mu.Unlock()
			if len(done) > 0 {
				_ = w.wakeIDs(ctx, done, "rollback", time.Now())
			}
			return err
		}
		done = append(done, id)
	}
	return nil
}

// pauseOne re-checks the safety rules against the container's current
// labels, puts it into maintenance, then pauses or stops it.
func (w *Watchman) pauseOne(ctx context.Context, id string, action policy.Action, trigger, reason string) (err error) {
	fresh, ok := w.deps.Source.Get(id)
	w.mu.Lock()
	t, tok := w.ctrs[id]
	if !tok {
		w.mu.Unlock()
		return w.errNotFound(id)
	}
	refuse := func(why string) error {
		t.busy = false
		w.setStateLocked(t, w.baseStateLocked(t))
		w.m.decisions.WithLabelValues("refused").Inc()
		w.eventLocked(t, "pause-refused", trigger, why, t)
		w.mu.Unlock()
		return fmt.Errorf("%w: %s: %s", ErrRefused, t.c.Name, why)
	}
	if !ok || !fresh.State.Running {
		return refuse("not running")
	}
	pol, perr := policy.Parse(fresh.Labels, w.defaults)
	switch {
	case perr != nil:
		return refuse("malformed labels: " + perr.Error())
	case !pol.Enabled:
		return refuse("not opted in")
	case w.excludedLocked(fresh):
		return refuse("excluded")
	}
	w.mu.Unlock()

	fail := func(stage string, err error) error {
		w.mu.Lock()
		t.busy = false
		w.setStateLocked(t, w.baseStateLocked(t))
		w.m.decisions.WithLabelValues("failed").Inc()
		w.eventLockedOutcome(t, "pause-failed", trigger, stage+": "+err.Error(), t, "failure")
		w.mu.Unlock()
		return fmt.Errorf("watchman: %s %s: %w", stage, fresh.Name, err)
	}
	maint := w.deps.Maintainer != nil
	if maint {
		if err := w.deps.Maintainer.Maintenance(ctx, id, true, "watchman: "+reason); err != nil {
			return fail("maintenance on", err)
		}
	}
	switch action {
	case policy.ActionStop:
		err = w.deps.Docker.ContainerStop(ctx, id, container.StopOptions{})
	default:
		err = w.deps.Docker.ContainerPause(ctx, id)
	}
	if err != nil {
		if maint {
			if merr := w.deps.Maintainer.Maintenance(context.WithoutCancel(ctx), id, false, "watchman: pause failed"); merr != nil {
				w.log.Warn("end maintenance after failed pause", "container", fresh.Name, "err", merr)
			}
		}
		return fail(string(action), err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	t.busy = false
	t.maintenance = maint
	t.pausedAt = w.now()
	if action == policy.ActionStop {
		t.stoppedByUs = true
		w.setStateLocked(t, StateStopped)
	} else {
		t.pausedByUs = true
		w.setStateLocked(t, StatePaused)
		w.startWatchLocked(t)
	}
	w.m.pauses.WithLabelValues(trigger).Inc()
	w.m.decisions.WithLabelValues(string(action)).Inc()
	w.eventLocked(t, string(action), trigger, reason, t)
	return nil
}

// Wake unpauses the container ref and the other paused members of its
// group, waits until Docker reports them healthy (when they have a health
// check), then ends their maintenance. trigger says who asked (api, cli,
// connect, ...).
func (w *Watchman) Wake(ctx context.Context, ref, trigger string) error {
	if trigger == "" {
		trigger = "api"
	}
	w.mu.Lock()
	t, ok := w.lookupLocked(ref)
	if !ok {
		w.mu.Unlock()
		return w.errNotFound(ref)
	}
	ids := w.wakeSetLocked(t)
	w.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	return w.wakeIDs(ctx, ids, trigger, time.Now())
}

// wakeSetLocked returns the containers to wake with t: t itself if it is
// paused, and every member of its group the watchman paused or stopped.
func (w *Watchman) wakeSetLocked(t *tracked) []string {
	var ids []string
	if t.c.State.Paused || t.pausedByUs || t.stoppedByUs {
		ids = append(ids, t.c.ID)
	}
	key := groupKey(t)
	for id, m := range w.ctrs {
		if m != t && (m.pausedByUs || m.stoppedByUs) && groupKey(m) == key {
			ids = append(ids, id)
		}
	}
	return ids
}

// wakeIDs unpauses (or starts) ids, then for each waits for health and
// ends maintenance. detected is when the need to wake was noticed.
func (w *Watchman) wakeIDs(ctx context.Context, ids []string, trigger string, detected time.Time) error {
	type woken struct {
		t        *tracked
		id       string
		at       time.Time
		maint    bool
		hasCheck bool
	}
	var ws []woken
	var errs []error
	for _, id := range ids {
		w.mu.Lock()
		t, ok := w.ctrs[id]
		if !ok {
			w.mu.Unlock()
			continue
		}
		if t.busy && t.state != StatePausing {
			w.mu.Unlock()
			errs = append(errs, fmt.Errorf("%w: %s", ErrBusy, t.c.Name))
			continue
		}
		t.busy = true
		stopped := t.stoppedByUs
		w.stopWatchLocked(t)
		w.setStateLocked(t, StateWaking)
		name := t.c.Name
		hasCheck := t.c.Healthcheck != nil
		w.mu.Unlock()

		var err error
		if stopped {
			err = w.deps.Docker.ContainerStart(ctx, id, container.StartOptions{})
		} else {
			err = w.deps.Docker.ContainerUnpause(ctx, id)
			if err != nil && (errdefs.IsConflict(err) || strings.Contains(err.Error(), "is not paused")) {
				err = nil // already running: somebody beat us to it
			}
		}
		if err != nil {
			w.mu.Lock()
			t.busy = false
			if stopped {
				w.setStateLocked(t, StateStopped)
			} else {
				w.setStateLocked(t, StatePaused)
				w.startWatchLocked(t)
			}
			w.m.decisions.WithLabelValues("failed").Inc()
			w.eventLockedOutcome(t, "wake-failed", trigger, err.Error(), nil, "failure")
			w.mu.Unlock()
			errs = append(errs, fmt.Errorf("watchman: wake %s: %w", name, err))
			continue
		}
		at := time.Now()
		w.m.wakeDuration.WithLabelValues(trigger).Observe(at.Sub(detected).Seconds())
		w.mu.Lock()
		maint := t.maintenance
		w.mu.Unlock()
		ws = append(ws, woken{t: t, id: id, at: at, maint: maint, hasCheck: hasCheck})
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, x := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcome := "success"
			id := x.id
			if x.hasCheck {
				if err := w.waitHealthy(ctx, id, x.at); err != nil {
					outcome = "health-timeout"
					w.log.Warn("woken container did not report healthy", "container", id, "err", err)
				}
			}
			if x.maint && w.deps.Maintainer != nil {
				if err := w.deps.Maintainer.Maintenance(context.WithoutCancel(ctx), id, false, "watchman: woken"); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("watchman: end maintenance %.12s: %w", id, err))
					mu.Unlock()
					outcome = "maintenance-failed"
				}
			}
			w.mu.Lock()
			t := x.t
			t.busy = false
			t.pausedByUs, t.stoppedByUs, t.maintenance = false, false, false
			t.tr.Reset()
			t.hasPrev = false
			w.setStateLocked(t, StateActive)
			w.setStateLocked(t, w.baseStateLocked(t))
			w.m.wakes.WithLabelValues(trigger).Inc()
			w.eventLockedOutcome(t, "wake", trigger, fmt.Sprintf("unpaused %s after the trigger", x.at.Sub(detected).Round(time.Millisecond)), nil, outcome)
			w.mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitHealthy waits until a health probe that started after since passed.
// Docker keeps the status from before the pause, so the status alone would
// report a stale "healthy".
func (w *Watchman) waitHealthy(ctx context.Context, id string, since time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.WakeHealthTimeout)
	defer cancel()
	for {
		resp, err := w.deps.Docker.ContainerInspect(ctx, id)
		if err == nil && resp.ContainerJSONBase != nil && resp.State != nil {
			h := resp.State.Health
			if h == nil {
				return nil // no health check after all
			}
			for _, r := range h.Log {
				if r != nil && r.ExitCode == 0 && r.Start.After(since.Add(-50*time.Millisecond)) {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no passing health probe since wake: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// fallbackLocked samples t through Docker's one-shot stats API in the
// background (bounded to two at a time).
func (w *Watchman) fallbackLocked(t *tracked) {
	if t.fallingBk || w.runCtx == nil {
		return
	}
	t.fallingBk = true
	ctx := w.runCtx
	id := t.c.ID
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		var s Sample
		err := func() error {
			select {
			case w.fbSem <- struct{}{}:
				defer func() { <-w.fbSem }()
			case <-ctx.Done():
				return ctx.Err()
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return w.dockerSample(cctx, id, &s)
		}()
		w.mu.Lock()
		defer w.mu.Unlock()
		t.fallingBk = false
		if err != nil {
			w.m.sampleErrors.WithLabelValues("docker").Inc()
			return
		}
		if cur, ok := w.ctrs[id]; !ok || cur != t || t.sm != nil {
			return
		}
		t.prev, t.hasPrev = t.cur, t.hasCur && t.cur.FromDocker
		t.cur, t.hasCur = s, true
		w.m.dockerSamples.Inc()
		w.observeLocked(t)
	}()
}

// dockerSample fills s from Docker's one-shot stats.
func (w *Watchman) dockerSample(ctx context.Context, id string, s *Sample) error {
	resp, err := w.deps.Docker.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return fmt.Errorf("docker stats: %w", err)
	}
	defer resp.Body.Close()
	var st container.StatsResponse
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return fmt.Errorf("decode docker stats: %w", err)
	}
	statsFromDocker(&st, s)
	s.At = w.now()
	return nil
}

// statsFromDocker converts a Docker stats response into a Sample.
func statsFromDocker(st *container.StatsResponse, s *Sample) {
	s.FromDocker = true
	c := &s.Cgroup
	c.CPUUsage = st.CPUStats.CPUUsage.TotalUsage
	c.CPUUser = st.CPUStats.CPUUsage.UsageInUsermode
	c.CPUSystem = st.CPUStats.CPUUsage.UsageInKernelmode
	c.CFSPeriods = st.CPUStats.ThrottlingData.Periods
	c.CFSThrottled = st.CPUStats.ThrottlingData.ThrottledPeriods
	c.CFSThrottledTime = st.CPUStats.ThrottlingData.ThrottledTime
	c.MemoryUsage = st.MemoryStats.Usage
	c.MemoryLimit = st.MemoryStats.Limit
	inactive := st.MemoryStats.Stats["total_inactive_file"]
	if v, ok := st.MemoryStats.Stats["inactive_file"]; ok && inactive == 0 {
		inactive = v
	}
	c.MemoryInactiveFile = inactive
	if inactive < c.MemoryUsage {
		c.MemoryWorkingSet = c.MemoryUsage - inactive
	}
	c.MemoryRSS = st.MemoryStats.Stats["total_rss"] + st.MemoryStats.Stats["anon"]
	c.MemoryCache = st.MemoryStats.Stats["total_cache"] + st.MemoryStats.Stats["file"]
	c.Pids = st.PidsStats.Current
	c.PidsMax = st.PidsStats.Limit
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		found := false
		for i := range c.BlkIO {
			if uint64(c.BlkIO[i].Major) == e.Major && uint64(c.BlkIO[i].Minor) == e.Minor {
				addBlk(&c.BlkIO[i].ReadBytes, &c.BlkIO[i].WriteBytes, e.Op, e.Value)
				found = true
				break
			}
		}
		if !found {
			c.BlkIO = append(c.BlkIO, blkDev(e.Major, e.Minor))
			addBlk(&c.BlkIO[len(c.BlkIO)-1].ReadBytes, &c.BlkIO[len(c.BlkIO)-1].WriteBytes, e.Op, e.Value)
		}
	}
	s.Net = s.Net[:0]
	for name, n := range st.Networks {
		s.Net = append(s.Net, procfs.Iface{Name: name, RxBytes: n.RxBytes, RxPackets: n.RxPackets,
			RxErrors: n.RxErrors, RxDrops: n.RxDropped, TxBytes: n.TxBytes, TxPackets: n.TxPackets,
			TxErrors: n.TxErrors, TxDrops: n.TxDropped})
	}
	s.HasNet = len(st.Networks) > 0
}

func blkDev(major, minor uint64) cgroup.BlkDev {
	return cgroup.BlkDev{Major: uint32(major), Minor: uint32(minor)}
}

func addBlk(read, write *uint64, op string, v uint64) {
	switch strings.ToLower(op) {
	case "read":
		*read += v
	case "write":
		*write += v
	}
}
