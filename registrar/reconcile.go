package registrar

import (
	"context"
	"sort"
	"time"

	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// reconcile brings Consul in line with the desired state: for the dirty
// containers only, or (full) for everything after reading the agent.
func (r *Registrar) reconcile(ctx context.Context, full bool, dirty map[string]time.Time) error {
	r.work.Lock()
	defer r.work.Unlock()
	start := time.Now()
	mode := "incremental"
	if full {
		mode = "full"
	}

	var fresh agentState
	if full {
		var err error
		if fresh, err = r.readActual(ctx); err != nil {
			r.m.reconciles.WithLabelValues(mode, "error").Inc()
			return err
		}
	}

	r.mu.Lock()
	if full {
		r.actual, r.taken, r.stale, r.loaded = fresh.actual, fresh.taken, fresh.stale, true
		for id, d := range r.drain {
			if c, ok := r.containers[id]; ok && c.State.Running && time.Since(d.at) > r.cfg.DrainTimeout {
				delete(r.drain, id)
			}
		}
		for id := range r.explicit {
			if _, ok := r.containers[id]; !ok {
				delete(r.explicit, id) // a container that never existed or is gone
			}
		}
	}
	o := r.options()
	var ids []string
	if full {
		r.desired, r.owner, r.contested, r.results = map[string]*translate.Service{}, map[string]string{}, map[string]map[string]bool{}, map[string]translate.Result{}
		r.conflicts = map[string]string{}
		for _, id := range r.orderLocked() {
			got, _ := r.recomputeLocked(id, o)
			ids = append(ids, got...)
		}
		r.forgetReportsLocked()
		for sid := range r.actual {
			ids = append(ids, sid)
		}
		for sid, rj := range r.rejected {
			if d := r.desired[sid]; d == nil || d.Hash != rj.hash || time.Since(rj.at) > rejectionTTL {
				delete(r.rejected, sid)
			}
		}
	} else {
		queue := make([]string, 0, len(dirty))
		for id := range dirty {
			queue = append(queue, id)
			queue = append(queue, r.sharersLocked(id)...)
		}
		sort.Strings(queue)
		seen := map[string]bool{}
		for len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			if seen[id] {
				continue
			}
			seen[id] = true
			got, retry := r.recomputeLocked(id, o)
			ids = append(ids, got...)
			queue = append(queue, retry...)
		}
	}
	plans := r.planLocked(ids, full)
	r.updateGaugesLocked()
	r.mu.Unlock()

	err := r.execute(ctx, plans, dirty)
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.m.reconciles.WithLabelValues(mode, result).Inc()
	r.m.reconcileDur.WithLabelValues(mode).Observe(time.Since(start).Seconds())
	if len(plans) > 0 {
		r.log.Debug("reconciled", "mode", mode, "writes", len(plans), "took", time.Since(start).Round(time.Microsecond), "err", err)
	}
	return err
}
