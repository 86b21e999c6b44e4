package registrar

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// Run registers and deregisters services until ctx ends, then (only with
// deregister-on-shutdown) removes this node's services. It returns nil when
// ctx ends.
func (r *Registrar) Run(ctx context.Context) error {
	sub, err := r.src.Subscribe(ctx)
	if err != nil {
		return nil // ctx ended before the inventory's first sync
	}
	defer sub.Close()
	r.mu.Lock()
	for _, c := range sub.Snapshot() {
		r.containers[c.ID] = c
	}
	r.mu.Unlock()

	dirty := map[string]time.Time{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	needFull := true
	retries := backoff.New(r.cfg.RetryInterval, r.cfg.RetryMaxInterval)
	retry := func(err error) {
		needFull = true
		wait := retries.Next()
		r.log.Warn("consul reconcile failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			r.shutdown(ctx)
			return nil
		case <-sub.Changed():
			r.ingest(sub.Pending(), dirty)
			if needFull || len(dirty) == 0 {
				continue
			}
			err := r.reconcile(ctx, false, dirty)
			clear(dirty)
			if err != nil && ctx.Err() == nil {
				retry(err)
			}
		case <-timer.C:
			r.ingest(sub.Pending(), dirty)
			err := r.reconcile(ctx, true, dirty)
			if ctx.Err() != nil {
				continue
			}
			if err != nil {
				r.setReady(fmt.Errorf("reconcile with consul: %w", err))
				retry(err)
				continue
			}
			r.setReady(nil)
			clear(dirty)
			needFull = false
			retries.Reset()
			timer.Reset(r.cfg.ReconcileInterval)
		}
	}
}

// ingest applies inventory changes to the registrar's container map and
// notes which containers need a reconcile, with the time of their first
// change.
func (r *Registrar) ingest(changes []inventory.Change, dirty map[string]time.Time) {
	if len(changes) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range changes {
		c := ch.Container
		if c == nil {
			continue
		}
		id := c.ID
		if ch.Kind == inventory.Removed {
			delete(r.containers, id)
			delete(r.drain, id)
			delete(r.explicit, id)
		} else {
			r.containers[id] = c
		}
		switch ch.Action {
		case "kill", "stop":
			sig := ch.Attributes["signal"]
			if c.State.Running && ch.Kind != inventory.Removed && !reloadSignal(sig) && !r.diesDeregistered(sig) {
				r.drain[id] = drainState{at: ch.Time, started: c.State.StartedAt}
			}
		case "start", "restart":
			delete(r.drain, id)
		}
		if d, ok := r.drain[id]; ok && !c.State.StartedAt.Equal(d.started) {
			delete(r.drain, id)
		}
		if t, ok := dirty[id]; !ok || ch.Time.Before(t) {
			dirty[id] = ch.Time
		}
	}
}

// diesDeregistered reports a kill whose container dies at once and whose
// services its death deregisters: SIGKILL under the always and on-success
// policies (a signal's exit code is not a success). Draining it would only
// add a maintenance write that the deregistration follows within
// milliseconds, and delay that deregistration while the write is in
// flight.
func (r *Registrar) diesDeregistered(sig string) bool {
	if r.cfg.Deregister == DeregisterNever {
		return false
	}
	switch strings.TrimPrefix(strings.ToUpper(sig), "SIG") {
	case "9", "KILL":
		return true
	}
	return false
}

// reloadSignal reports signals that applications take as "reload" or
// "report", not "stop" (docker kill -s HUP): they do not drain services.
func reloadSignal(sig string) bool {
	switch strings.TrimPrefix(strings.ToUpper(sig), "SIG") {
	case "1", "HUP", "10", "USR1", "12", "USR2", "28", "WINCH":
		return true
	}
	return false
}

// shutdown deregisters this node's services if configured to.
func (r *Registrar) shutdown(ctx context.Context) {
	if !r.cfg.DeregisterOnShutdown {
		r.log.Info("stopping; services stay registered (deregister-on-shutdown is off)")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	r.work.Lock()
	defer r.work.Unlock()
	q, cancelQuery := r.query(ctx)
	svcs, err := r.agent.ServicesWithFilterOpts(r.ownFilter(), q)
	cancelQuery()
	if err != nil {
		r.log.Error("deregister on shutdown: list services", "err", err)
		return
	}
	plans := make([]plan, 0, len(svcs))
	for id, s := range svcs {
		plans = append(plans, plan{id: id, steps: []step{{op: opDeregister, id: id, container: s.Meta[translate.MetaContainer]}}})
	}
	if err := r.execute(ctx, plans, nil); err != nil {
		r.log.Error("deregister on shutdown", "err", err)
		return
	}
	r.log.Info("deregistered all services on shutdown", "services", len(plans))
}
