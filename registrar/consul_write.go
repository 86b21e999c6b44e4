package registrar

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// execute runs the plans with bounded concurrency, updating the actual
// state after every successful write.
func (r *Registrar) execute(ctx context.Context, plans []plan, since map[string]time.Time) error {
	if len(plans) == 0 {
		return nil
	}
	if len(plans) == 1 {
		// The common case of one container's event: written from this
		// goroutine, without handing the plan to a worker (on a busy
		// node every hand-off waits for the scheduler).
		if err := r.run(ctx, plans[0], since); err != nil {
			return err
		}
		return ctx.Err()
	}
	workers := min(r.cfg.WriteConcurrency, len(plans))
	next := make(chan plan)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := r.run(ctx, p, since); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		}()
	}
feed:
	for _, p := range plans {
		select {
		case next <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// run performs one service's writes in order, stopping at the first error.
// A panic while writing (a poison input) is recovered here: it fails this
// service only, counts as heartwood_registrar_errors_total{kind="panic"},
// and a registration that panicked is not retried until it changes.
func (r *Registrar) run(ctx context.Context, p plan, since map[string]time.Time) (err error) {
	var cur step
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		r.m.errors.WithLabelValues("panic").Inc()
		err = fmt.Errorf("%s %s: internal error: %v", cur.op, p.id, v)
		r.log.Error("consul write panicked", "service_id", p.id, "op", cur.op, "container", inventory.ShortID(cur.container), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		if cur.op == opRegister && cur.reg != nil {
			r.mu.Lock()
			r.rejected[p.id] = rejection{hash: cur.reg.Meta[translate.MetaHash], err: err.Error(), at: time.Now()}
			r.mu.Unlock()
			err = nil
		}
	}()
	for _, s := range p.steps {
		cur = s
		if s.op == opRegister && s.fresh {
			proceed, err := r.claim(ctx, s)
			if err != nil {
				r.m.errors.WithLabelValues("read").Inc()
				return fmt.Errorf("check owner of %s: %w", s.id, err)
			}
			if !proceed {
				return nil
			}
		}
		err := r.write(ctx, s)
		r.m.writes.WithLabelValues(s.op).Inc()
		if s.op == opRegister && permanent(err) {
			r.m.errors.WithLabelValues("rejected").Inc()
			r.mu.Lock()
			r.rejected[s.id] = rejection{hash: s.reg.Meta[translate.MetaHash], err: err.Error(), at: time.Now()}
			r.mu.Unlock()
			r.log.Warn("consul rejected the service registration; not retried until it changes", "service_id", s.id, "container", inventory.ShortID(s.container), "err", err)
			return nil
		}
		if err != nil {
			r.m.errors.WithLabelValues(s.op).Inc()
			return fmt.Errorf("%s %s: %w", s.op, s.id, err)
		}
		r.applied(s, since)
	}
	return nil
}

// write sends one step to the agent, within consul-timeout.
func (r *Registrar) write(ctx context.Context, s step) error {
	q, cancel := r.query(ctx)
	defer cancel()
	switch s.op {
	case opRegister:
		return r.agent.ServiceRegisterOpts(s.reg, consulapi.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(q.Context()))
	case opDeregister:
		return r.agent.ServiceDeregisterOpts(s.id, q)
	case opMaintenance:
		if s.enable {
			return r.agent.EnableServiceMaintenanceOpts(s.id, s.reason, q)
		}
		return r.agent.DisableServiceMaintenanceOpts(s.id, q)
	case opHealth:
		return r.agent.UpdateTTLOpts(s.checkID, "Docker health: "+s.status, s.status, q)
	}
	return fmt.Errorf("unknown operation %q", s.op)
}

// claim checks, before registering an ID that was not ours at the last
// read, that the agent has no service under it or has ours. If another
// holds it, the ID is recorded as taken (the container is told why) and
// claim reports false.
func (r *Registrar) claim(ctx context.Context, s step) (bool, error) {
	free, h, err := r.ownership(ctx, s.id)
	switch {
	case err != nil:
		return false, err
	case free || h == nil: // nobody's, or already this node's
		return true, nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.mayTakeOverLocked(*h, s.container) {
		return true, nil
	}
	r.taken[s.id] = *h
	r.refuseLocked(s.id, s.container, *h)
	return false, nil
}

// applied records a successful write in the actual state.
func (r *Registrar) applied(s step, since map[string]time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch s.op {
	case opRegister:
		a := &actualService{container: s.container, hash: s.reg.Meta[translate.MetaHash]}
		for _, c := range s.reg.Checks {
			if strings.HasSuffix(c.CheckID, ":docker-health") && c.CheckID == "service:"+s.id+":docker-health" {
				a.health = c.Status
			}
		}
		r.actual[s.id] = a
		r.m.registrations.Inc()
		r.log.Info("service registered", "service_id", s.id, "service", s.reg.Name, "container", inventory.ShortID(s.container))
	case opDeregister:
		delete(r.actual, s.id)
		delete(r.stale, s.id)
		r.m.deregistration.Inc()
		r.log.Info("service deregistered", "service_id", s.id, "container", inventory.ShortID(s.container))
	case opMaintenance:
		if a := r.actual[s.id]; a != nil {
			a.maint = s.enable
		}
		r.log.Info("service maintenance", "service_id", s.id, "enabled", s.enable, "reason", s.reason)
	case opHealth:
		if a := r.actual[s.id]; a != nil {
			a.health = s.status
		}
		r.log.Info("service docker health", "service_id", s.id, "status", s.status)
	}
	if t, ok := since[s.container]; ok && !t.IsZero() && (s.op == opRegister || s.op == opDeregister || s.op == opHealth) {
		r.m.eventLatency.Observe(time.Since(t).Seconds())
	}
}

// permanent reports whether the agent answered a registration with an
// error about its content (4xx other than 403/408/429, or the 500 Consul
// uses for refused checks such as disabled script checks), so that sending
// the same content again cannot succeed.
func permanent(err error) bool {
	var se consulapi.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch {
	case se.Code == 403 || se.Code == 408 || se.Code == 429:
		return false
	case se.Code >= 400 && se.Code < 500, se.Code == 500:
		return true
	}
	return false
}
