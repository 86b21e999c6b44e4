package watchman

import (
	"context"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// Container states reported by DescribeContainer and the state metric.
const (
	StateUnmanaged      = "unmanaged"       // no opt-in label
	StateExcluded       = "excluded"        // excluded by configuration, or the agent itself
	StateInvalid        = "invalid-policy"  // malformed heartwood.watchman.* labels
	StateNotRunning     = "not-running"     // created, exited or dead
	StateActive         = "active"          // opted in, some signal above threshold
	StateIdle           = "idle"            // opted in, idle, window not yet over
	StateWouldPause     = "would-pause"     // dry run: would have been paused
	StateNotified       = "notified"        // action notify fired
	StatePausing        = "pausing"         // action in flight
	StatePaused         = "paused"          // paused by the watchman
	StateStopped        = "stopped"         // stopped by the watchman
	StateWaking         = "waking"          // wake in flight
	StatePausedExternal = "paused-external" // paused by someone else
)

var allStates = []string{StateUnmanaged, StateExcluded, StateInvalid, StateNotRunning, StateActive,
	StateIdle, StateWouldPause, StateNotified, StatePausing, StatePaused, StateStopped, StateWaking, StatePausedExternal}

// tracked is everything the watchman holds for one container: what the
// inventory says, the policy its labels give, its measurements, the idle
// tracker and its place in the pause state machine. Guarded by Watchman.mu.
type tracked struct {
	c       *inventory.Container
	pol     policy.Policy
	polErr  error
	managed bool // opted in, valid, not excluded, not self

	measurement
	tr      policy.Tracker
	verdict policy.Verdict

	lifecycle
	watchStop    context.CancelFunc // ends the connection watch, if one runs
	pendingWatch *connWatch         // baseline taken at pause time, for Run to watch
}

// ownership is what the watchman itself did to a container.
type ownership int

const (
	ownNone    ownership = iota
	ownPaused            // the watchman paused it
	ownStopped           // the watchman stopped it
)

// lifecycle is a container's place in the pause state machine: the state
// it reports, what the watchman itself did to it, and the flags that make
// dry-run and cap events once per idle streak. It changes only through the
// transitions below; busy (an action in flight) is the pausing and waking
// states.
type lifecycle struct {
	state       string
	owned       ownership
	maintenance bool      // the watchman put its registrations into maintenance
	since       time.Time // when the watchman paused or stopped it
	recorded    bool      // would-pause / notify recorded for this idle streak
	deferred    bool      // cap event recorded for this idle streak

	// A pause in flight: cancelling it lets a wake win; done closes when
	// the pause attempt has finished.
	pauseCancel context.CancelFunc
	pauseDone   chan struct{}
}

func (l *lifecycle) busy() bool       { return l.state == StatePausing || l.state == StateWaking }
func (l *lifecycle) pausedByUs() bool { return l.owned == ownPaused }
func (l *lifecycle) stoppedByUs() bool {
	return l.owned == ownStopped
}

// ours reports whether the watchman paused or stopped the container.
func (l *lifecycle) ours() bool { return l.owned != ownNone }

// set moves to state s; becoming active starts a new idle streak.
func (l *lifecycle) set(s string) {
	if l.state == s {
		return
	}
	l.state = s
	if s == StateActive {
		l.recorded, l.deferred = false, false
	}
}

// beginPause: a pause or stop is in flight; cancel lets a wake abort it.
func (l *lifecycle) beginPause(cancel context.CancelFunc) {
	l.set(StatePausing)
	l.pauseCancel = cancel
	l.pauseDone = make(chan struct{})
}

// endPauseAttempt ends the in-flight pause bookkeeping. (The pause's
// context belongs to the whole group's pause, which releases it.)
func (l *lifecycle) endPauseAttempt() {
	l.pauseCancel = nil
	if l.pauseDone != nil {
		close(l.pauseDone)
		l.pauseDone = nil
	}
}

// pauseAborted: the pause was refused, failed or rolled back.
func (l *lifecycle) pauseAborted(base string) {
	l.endPauseAttempt()
	l.set(base)
}

// pausedByWatchman: the watchman paused (or, with stop, stopped) it.
func (l *lifecycle) pausedByWatchman(stop bool, at time.Time, maintenance bool) {
	l.endPauseAttempt()
	l.maintenance, l.since = maintenance, at
	if stop {
		l.owned = ownStopped
		l.set(StateStopped)
	} else {
		l.owned = ownPaused
		l.set(StatePaused)
	}
}

// beginWake: an unpause or start is in flight.
func (l *lifecycle) beginWake() { l.set(StateWaking) }

// wakeFailed: the unpause or start failed; it stays paused or stopped.
func (l *lifecycle) wakeFailed() {
	if l.owned == ownStopped {
		l.set(StateStopped)
	} else {
		l.set(StatePaused)
	}
}

// woken: running again; a new idle streak starts.
func (l *lifecycle) woken(base string) {
	l.owned, l.maintenance = ownNone, false
	l.set(StateActive)
	l.set(base)
}

// unpausedByHand: somebody else unpaused what the watchman paused. It
// returns whether the watchman's maintenance must still be ended.
func (l *lifecycle) unpausedByHand() (maintenance bool) {
	maintenance = l.maintenance
	l.owned, l.maintenance = ownNone, false
	l.set(StateActive)
	return maintenance
}

// adopt: an earlier run of the watchman paused it (known from the data
// directory).
func (l *lifecycle) adopt(since time.Time, maintenance bool) {
	l.owned, l.maintenance, l.since = ownPaused, maintenance, since
	l.set(StatePaused)
}

// seenPausedExternally: paused, and not by the watchman.
func (l *lifecycle) seenPausedExternally() { l.set(StatePausedExternal) }

// seenNotRunning: the container exited. What the watchman stopped stays
// its own, so that a wake starts it again.
func (l *lifecycle) seenNotRunning() {
	if l.owned != ownStopped {
		l.owned = ownNone
		l.set(StateNotRunning)
	}
}

// seenRunning: running and not paused. A stopped container that runs
// again is no longer the watchman's.
func (l *lifecycle) seenRunning(base string) {
	if l.owned == ownStopped {
		l.owned = ownNone
	}
	switch l.state {
	case StatePausedExternal, StateNotRunning, "", StateStopped:
		l.set(base)
	}
}

// idleStreak records the verdict of an opted-in, unpaused container.
func (l *lifecycle) idleStreak(idle bool) {
	switch {
	case !idle:
		l.set(StateActive)
	case l.state == StateActive:
		l.set(StateIdle)
	}
}
