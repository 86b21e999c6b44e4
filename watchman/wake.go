package watchman

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"
)

// Triggers: who asked for a pause or a wake. They are the values of the
// trigger and reason labels of the watchman's metrics, so no other value is
// ever used; free text goes to the decision event and the log only.
const (
	TriggerAPI      = "api"      // the HTTP API (and anything not listed here)
	TriggerCLI      = "cli"      // heartwood pause/wake
	TriggerConnect  = "connect"  // a client connected to a paused container
	TriggerManual   = "manual"   // unpaused outside the watchman
	TriggerIdle     = "idle"     // the idle window ran out
	TriggerRollback = "rollback" // undoing part of a failed group pause
)

// normalizeTrigger maps a caller's trigger to one of the Trigger values.
func normalizeTrigger(s string) string {
	switch s {
	case TriggerAPI, TriggerCLI, TriggerConnect, TriggerManual, TriggerIdle, TriggerRollback:
		return s
	}
	return TriggerAPI
}

// ErrForceRequired is returned by a wake of a container that the watchman
// did not pause (an operator paused it) without WakeOptions.Force.
var ErrForceRequired = errors.New("watchman: not paused by the watchman; waking it needs force")

// WakeOptions qualify a wake.
type WakeOptions struct {
	// Trigger says who asks: one of the Trigger values; anything else
	// counts as TriggerAPI.
	Trigger string
	// Reason is free text recorded in the decision event and the log.
	Reason string
	// Force also unpauses a container the watchman did not pause.
	Force bool
}

// Wake wakes ref like WakeWith without force; trigger is one of the Trigger
// values (any other text is recorded as the reason, with trigger api).
func (w *Watchman) Wake(ctx context.Context, ref, trigger string) error {
	return w.WakeWith(ctx, ref, WakeOptions{Trigger: trigger, Reason: trigger})
}

// WakeWith unpauses (or starts) the container ref (ID, ID prefix or name)
// and the other members of its group that the watchman paused, waits until
// Docker reports them healthy (when they have a health check), then ends
// their maintenance. A container the watchman did not pause is unpaused
// only with opt.Force (ErrForceRequired otherwise). A wake that arrives
// while a pause of the group is in flight wins: the pause is abandoned and
// whatever it did is undone.
func (w *Watchman) WakeWith(ctx context.Context, ref string, opt WakeOptions) error {
	trigger := normalizeTrigger(opt.Trigger)
	reason := opt.Reason
	if reason == "" {
		reason = trigger
	}
	w.mu.Lock()
	t, ok := w.lookupLocked(ref)
	if !ok {
		w.mu.Unlock()
		return w.errNotFound(ref)
	}
	// Overtake pauses in flight in the group.
	var pending []chan struct{}
	key := groupKey(t)
	for _, m := range w.ctrs {
		if (m == t || groupKey(m) == key) && m.state == StatePausing && m.pauseDone != nil {
			m.pauseCancel()
			pending = append(pending, m.pauseDone)
		}
	}
	w.mu.Unlock()
	for _, done := range pending {
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	w.mu.Lock()
	if !t.ours() && t.c.State.Paused && !opt.Force {
		w.mu.Unlock()
		return fmt.Errorf("%w: %s was paused outside the watchman (force=true unpauses it anyway)", ErrForceRequired, t.c.Name)
	}
	ids := w.wakeSetLocked(t, opt.Force)
	w.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	return w.wakeIDs(ctx, ids, trigger, reason, time.Now())
}

// wakeSetLocked returns the containers to wake with t: t itself if the
// watchman paused or stopped it (or, with force, if it is paused), and every
// member of its group the watchman paused or stopped.
func (w *Watchman) wakeSetLocked(t *tracked, force bool) []string {
	var ids []string
	if t.ours() || (force && t.c.State.Paused) {
		ids = append(ids, t.c.ID)
	}
	key := groupKey(t)
	for id, m := range w.ctrs {
		if m != t && m.ours() && groupKey(m) == key {
			ids = append(ids, id)
		}
	}
	return ids
}

// wakeIDs unpauses (or starts) ids, then for each waits for health and
// ends maintenance. detected is when the need to wake was noticed.
func (w *Watchman) wakeIDs(ctx context.Context, ids []string, trigger, reason string, detected time.Time) error {
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
		if t.state == StateWaking {
			w.mu.Unlock()
			errs = append(errs, fmt.Errorf("%w: %s", ErrBusy, t.c.Name))
			continue
		}
		stopped := t.stoppedByUs()
		w.stopWatchLocked(t)
		t.beginWake()
		name := t.c.Name
		hasCheck := t.c.Healthcheck != nil
		w.mu.Unlock()

		err := w.safely("wake", func() error {
			dctx, cancel := context.WithTimeout(ctx, w.dockerTimeout)
			defer cancel()
			if stopped {
				return w.deps.Docker.ContainerStart(dctx, id, container.StartOptions{})
			}
			err := w.deps.Docker.ContainerUnpause(dctx, id)
			if err != nil && (errdefs.IsConflict(err) || strings.Contains(err.Error(), "is not paused")) {
				err = nil // already running: somebody beat us to it
			}
			return err
		})
		if err != nil {
			w.mu.Lock()
			t.wakeFailed()
			if !stopped {
				w.prepareWatchLocked(t)
			}
			w.m.decisions.WithLabelValues("failed").Inc()
			w.eventLockedOutcome(t, "wake-failed", trigger, reason+": "+err.Error(), nil, "failure")
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
			err := w.safely("wake", func() error {
				if x.hasCheck {
					if err := w.waitHealthy(ctx, id, x.at); err != nil {
						outcome = "health-timeout"
						w.log.Warn("woken container did not report healthy", "container", id, "err", err)
					}
				}
				if x.maint && w.deps.Maintainer != nil {
					mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.dockerTimeout)
					defer cancel()
					if err := w.deps.Maintainer.Maintenance(mctx, id, false, "watchman: woken"); err != nil {
						outcome = "maintenance-failed"
						return fmt.Errorf("watchman: end maintenance %.12s: %w", id, err)
					}
				}
				return nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				if outcome == "success" {
					outcome = "failure"
				}
			}
			w.mu.Lock()
			t := x.t
			t.woken(w.baseStateLocked(t))
			t.tr.Reset()
			t.hasPrev = false
			w.persistLocked()
			w.m.wakes.WithLabelValues(trigger).Inc()
			w.eventLockedOutcome(t, "wake", trigger, fmt.Sprintf("%s: unpaused %s after the trigger", reason, x.at.Sub(detected).Round(time.Millisecond)), nil, outcome)
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
		ictx, icancel := context.WithTimeout(ctx, w.dockerTimeout)
		resp, err := w.deps.Docker.ContainerInspect(ictx, id)
		icancel()
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
