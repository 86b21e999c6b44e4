package watchman

import (
	"errors"
	"sort"
	"time"

	"github.com/heartwood-ops/heartwood/watchman/gpu"
	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// sampleLocked takes one sample of t and updates its verdict.
func (w *Watchman) sampleLocked(t *tracked, now time.Time, g gpu.ContainerUsage, gpuKnown bool) {
	c := t.c
	if !c.State.Running || c.State.Pid <= 0 {
		return
	}
	if t.sm == nil {
		sm, err := openSampler(w.cfg.ProcRoot, w.cfg.CgroupRoot, c.State.Pid, c.NetworkMode == "host", w.detailEvery())
		if err != nil {
			if !errors.Is(err, errNoCgroup) {
				w.m.skipped.Inc()
				return
			}
			t.openErr = err
			if !t.errLogged {
				t.errLogged = true
				w.log.Warn("cannot read container cgroup; using Docker stats", "container", c.Name, "err", err)
			}
			w.fallbackLocked(t)
			return
		}
		t.sm, t.openErr, t.errLogged = sm, nil, false
	}
	t.prev, t.cur = t.cur, t.prev
	t.hasPrev = t.hasCur
	t.hasCur = false
	start := time.Now()
	err := t.sm.read(&t.cur, now)
	w.m.sampleDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		t.sm.close()
		t.sm = nil
		t.hasPrev = false
		if vanished(err) {
			w.m.skipped.Inc() // stopped between two samples: not an error
			return
		}
		w.m.sampleErrors.WithLabelValues("cgroup").Inc()
		if !t.errLogged {
			t.errLogged = true
			w.log.Warn("container sample failed", "container", c.Name, "err", err)
		}
		return
	}
	if gpuKnown {
		t.cur.HasGPU, t.cur.GPUUtil, t.cur.GPUMemBytes = true, g.Util, g.MemoryBytes
	}
	t.hasCur = true
	w.observeLocked(t)
}

// observeLocked turns the last two samples into rates and a verdict.
func (w *Watchman) observeLocked(t *tracked) {
	if !t.hasPrev {
		return
	}
	t.rates, t.hasRates = computeRates(&t.prev, &t.cur), true
	if !t.managed || t.busy || t.pausedByUs || t.c.State.Paused {
		t.tr.Reset()
		t.verdict = policy.Verdict{}
		return
	}
	t.verdict = t.tr.Observe(t.pol, w.cfg.Pressure, t.c.State.StartedAt, t.prev.At, t.cur.At, t.rates.Signals())
	if t.verdict.Idle {
		if t.state == StateActive {
			w.setStateLocked(t, StateIdle)
		}
	} else {
		w.setStateLocked(t, StateActive)
	}
}

// decideLocked acts on every group whose members are all due.
func (w *Watchman) decideLocked(now time.Time) {
	groups := map[string][]*tracked{}
	for _, t := range w.ctrs {
		if !t.c.State.Running || t.pausedByUs || t.stoppedByUs {
			continue
		}
		if !t.managed && !(t.polErr != nil && t.pol.Group != "") {
			continue
		}
		k := groupKey(t)
		groups[k] = append(groups[k], t)
	}
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		members := groups[k]
		due := true
		for _, t := range members {
			if !t.managed || t.busy || t.c.State.Paused || !t.verdict.Due {
				due = false
				break
			}
		}
		if !due {
			continue
		}
		sort.Slice(members, func(i, j int) bool { return members[i].c.ID < members[j].c.ID })
		action := policy.ActionStop
		dry := false
		for _, t := range members {
			action = conservative(action, t.pol.Action)
			dry = dry || w.dryRunLocked(t)
		}
		switch {
		case dry:
			for _, t := range members {
				if !t.recorded {
					t.recorded = true
					w.setStateLocked(t, StateWouldPause)
					w.m.wouldPause.Inc()
					w.eventLocked(t, "would-"+string(action), "idle", "dry run", t)
				}
			}
		case action == policy.ActionNotify:
			for _, t := range members {
				if !t.recorded {
					t.recorded = true
					w.setStateLocked(t, StateNotified)
					w.m.decisions.WithLabelValues("notify").Inc()
					w.eventLocked(t, "notify", "idle", "idle for the whole window", t)
				}
			}
		case !w.limiter.Allow(now, len(members)):
			for _, t := range members {
				if !t.deferred {
					t.deferred = true
					w.m.decisions.WithLabelValues("deferred").Inc()
					w.eventLocked(t, "pause-deferred", "idle", "node-wide max-pauses-per-minute reached", t)
				}
			}
		default:
			if w.runCtx == nil {
				continue
			}
			ids := make([]string, len(members))
			for i, t := range members {
				t.busy = true
				w.setStateLocked(t, StatePausing)
				ids[i] = t.c.ID
			}
			ctx := w.runCtx
			w.wg.Add(1)
			go func() {
				defer w.wg.Done()
				w.pauseIDs(ctx, ids, action, "idle", "idle for the whole window")
			}()
		}
	}
}

// conservative returns the milder of two actions (notify < pause < stop).
func conservative(a, b policy.Action) policy.Action {
	rank := map[policy.Action]int{policy.ActionNotify: 0, policy.ActionPause: 1, policy.ActionStop: 2}
	if rank[b] < rank[a] {
		return b
	}
	return a
}

// detailPeriod is how often the figures the idle decision does not need
// (memory breakdown and limit, pids, I/O operation counts, CPU user/system
// split, freezer state) are re-read; the decision's own signals are read
// every interval.
const detailPeriod = 5 * time.Second

func (w *Watchman) detailEvery() int {
	return max(1, int(detailPeriod/w.cfg.Interval))
}
