package watchman

import (
	"context"
	"sort"
	"time"

	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// observeLocked turns the last two samples into rates and a verdict.
func (w *Watchman) observeLocked(t *tracked) {
	if !t.hasPrev {
		return
	}
	t.rates, t.hasRates = computeRates(&t.prev, &t.cur), true
	if !t.managed || t.busy() || t.pausedByUs() || t.c.State.Paused {
		t.tr.Reset()
		t.verdict = policy.Verdict{}
		return
	}
	t.verdict = t.tr.Observe(t.pol, w.cfg.Pressure, t.c.State.StartedAt, t.prev.At, t.cur.At, t.rates.Signals())
	t.idleStreak(t.verdict.Idle)
}

// decideLocked acts on every group whose members are all due.
func (w *Watchman) decideLocked(ctx context.Context, now time.Time) {
	// A group is acted on only when every member is due: with no member
	// due anywhere (the usual tick) there is nothing to group.
	anyDue := false
	for _, t := range w.ctrs {
		if t.verdict.Due && t.managed && t.c.State.Running && !t.ours() {
			anyDue = true
			break
		}
	}
	if !anyDue {
		return
	}
	groups := map[string][]*tracked{}
	for _, t := range w.ctrs {
		if !t.c.State.Running || t.ours() {
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
			if !t.managed || t.busy() || t.c.State.Paused || !t.verdict.Due {
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
					t.set(StateWouldPause)
					w.m.wouldPause.Inc()
					w.eventLocked(t, "would-"+string(action), TriggerIdle, "dry run", t)
				}
			}
		case action == policy.ActionNotify:
			for _, t := range members {
				if !t.recorded {
					t.recorded = true
					t.set(StateNotified)
					w.m.decisions.WithLabelValues("notify").Inc()
					w.eventLocked(t, "notify", TriggerIdle, "idle for the whole window", t)
				}
			}
		case !w.limiter.Allow(now, len(members)):
			for _, t := range members {
				if !t.deferred {
					t.deferred = true
					w.m.decisions.WithLabelValues("deferred").Inc()
					w.eventLocked(t, "pause-deferred", TriggerIdle, "node-wide max-pauses-per-minute reached", t)
				}
			}
		default:
			if ctx.Err() != nil {
				continue
			}
			pctx, ids, cancel := w.beginPauseLocked(ctx, members)
			w.goRun(ctx, "pause", func(context.Context) {
				defer cancel(nil)
				_ = w.pauseIDs(pctx, ids, action, TriggerIdle, "idle for the whole window")
			})
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
