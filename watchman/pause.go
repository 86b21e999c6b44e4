package watchman

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// ErrBusy is returned when another action on the container is in flight.
var ErrBusy = errors.New("watchman: another action on this container is in progress")

// ErrRefused is returned when the safety rules forbid an action.
var ErrRefused = errors.New("watchman: refused")

// ErrInterrupted is returned by a pause that a wake overtook.
var ErrInterrupted = errors.New("watchman: pause interrupted by a wake")

// errWakeWins is the cause with which a wake cancels a pause in flight.
var errWakeWins = errors.New("a wake arrived while pausing")

// defaultDockerTimeout bounds each Docker call of the watchman (a stop
// waits for the container's stop timeout, 10 s by default, inside it).
const defaultDockerTimeout = 30 * time.Second

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
	if t.ours() {
		w.mu.Unlock()
		return nil
	}
	key := groupKey(t)
	var members []*tracked
	for _, m := range w.ctrs {
		// The inventory's paused flag may lag behind our own pause and
		// wake; the container asked for is paused regardless.
		if m.managed && m.c.State.Running && !m.ours() && groupKey(m) == key &&
			(m == t || !m.c.State.Paused) {
			if m.busy() {
				w.mu.Unlock()
				return fmt.Errorf("%w: %s", ErrBusy, m.c.Name)
			}
			members = append(members, m)
		}
	}
	pctx, ids, cancel := w.beginPauseLocked(ctx, members)
	w.mu.Unlock()
	defer cancel(nil)
	return w.pauseIDs(pctx, ids, policy.ActionPause, TriggerAPI, reason)
}

// beginPauseLocked marks members as pausing under one context that a wake
// of any of them cancels.
func (w *Watchman) beginPauseLocked(ctx context.Context, members []*tracked) (context.Context, []string, context.CancelCauseFunc) {
	pctx, cancel := context.WithCancelCause(ctx)
	wakeWins := func() { cancel(errWakeWins) }
	ids := make([]string, len(members))
	for i, m := range members {
		m.beginPause(wakeWins)
		ids[i] = m.c.ID
	}
	return pctx, ids, cancel
}

// wakeWon reports whether a wake cancelled the pause context.
func wakeWon(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errWakeWins)
}

// pauseIDs pauses (or stops) a group whose members the caller marked as
// pausing. If one member fails, the members already paused are woken
// again; if a wake overtakes the pause, the members not yet paused are
// left alone and the wake takes care of the others.
func (w *Watchman) pauseIDs(ctx context.Context, ids []string, action policy.Action, trigger, reason string) error {
	var done []string
	for i, id := range ids {
		err := w.safely("pause", func() error { return w.pauseOne(ctx, id, action, trigger, reason) })
		if err == nil && wakeWon(ctx) {
			err = fmt.Errorf("%w: %.12s", ErrInterrupted, id)
		}
		if err != nil {
			w.mu.Lock()
			for _, rest := range ids[i:] {
				if t, ok := w.ctrs[rest]; ok && t.state == StatePausing {
					t.pauseAborted(w.baseStateLocked(t))
				}
			}
			w.mu.Unlock()
			if len(done) > 0 && !wakeWon(ctx) {
				_ = w.wakeIDs(context.WithoutCancel(ctx), done, TriggerRollback, "rollback of a failed group pause", time.Now())
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
		t.pauseAborted(w.baseStateLocked(t))
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
	if wakeWon(ctx) {
		t.pauseAborted(w.baseStateLocked(t))
		w.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrInterrupted, fresh.Name)
	}
	w.mu.Unlock()

	fail := func(stage string, err error) error {
		w.mu.Lock()
		t.pauseAborted(w.baseStateLocked(t))
		w.m.decisions.WithLabelValues("failed").Inc()
		w.eventLockedOutcome(t, "pause-failed", trigger, stage+": "+err.Error(), t, "failure")
		w.mu.Unlock()
		return fmt.Errorf("watchman: %s %s: %w", stage, fresh.Name, err)
	}
	maint := w.deps.Maintainer != nil
	if maint {
		mctx, cancel := context.WithTimeout(ctx, w.dockerTimeout)
		err := w.deps.Maintainer.Maintenance(mctx, id, true, "watchman: "+reason)
		cancel()
		if err != nil && !wakeWon(ctx) {
			return fail("maintenance on", err)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, w.dockerTimeout)
	switch action {
	case policy.ActionStop:
		err = w.deps.Docker.ContainerStop(dctx, id, container.StopOptions{})
	default:
		err = w.deps.Docker.ContainerPause(dctx, id)
	}
	cancel()
	if err != nil && !wakeWon(ctx) {
		if maint {
			mctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.dockerTimeout)
			if merr := w.deps.Maintainer.Maintenance(mctx, id, false, "watchman: pause failed"); merr != nil {
				w.log.Warn("end maintenance after failed pause", "container", fresh.Name, "err", merr)
			}
			cancel()
		}
		return fail(string(action), err)
	}
	// Paused, or a wake overtook the pause: then the request may or may
	// not have reached Docker, and the wake that waits for this attempt
	// undoes whatever happened (unpausing a running container is a no-op).
	w.mu.Lock()
	defer w.mu.Unlock()
	t.pausedByWatchman(action == policy.ActionStop, w.now(), maint)
	w.persistLocked()
	if err != nil {
		return nil
	}
	w.prepareWatchLocked(t)
	w.m.pauses.WithLabelValues(trigger).Inc()
	w.m.decisions.WithLabelValues(string(action)).Inc()
	w.eventLocked(t, string(action), trigger, reason, t)
	return nil
}
