package watchman

import (
	"fmt"
	"runtime/debug"
)

// recoverPanic, deferred, turns a panic in one watchman action (a pause, a
// wake, a connection watch, one container's sample) into a log line and
// heartwood_watchman_panics_total{where}, so that one bad input costs that
// action and never the agent. cleanup, if not nil, runs after a panic.
func (w *Watchman) recoverPanic(where string, cleanup func()) {
	if r := recover(); r != nil {
		w.m.panics.WithLabelValues(where).Inc()
		w.log.Error("recovered from a panic", "where", where, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		if cleanup != nil {
			cleanup()
		}
	}
}

// safely runs fn and returns its error, or an error for a panic in it.
func (w *Watchman) safely(where string, fn func() error) (err error) {
	defer w.recoverPanic(where, func() { err = fmt.Errorf("watchman: %s: internal error (panic recovered)", where) })
	return fn()
}
