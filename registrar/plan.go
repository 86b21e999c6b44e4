package registrar

import (
	"sort"

	consulapi "github.com/hashicorp/consul/api"
)

// step is one Consul write.
type step struct {
	op        string
	id        string
	reg       *consulapi.AgentServiceRegistration
	enable    bool
	reason    string
	checkID   string
	status    string
	container string
	// fresh marks a registration of an ID the agent had no service of
	// ours under at the last read: its ownership is checked first.
	fresh bool
}

// plan is the writes for one service ID, run in order.
type plan struct {
	id    string
	steps []step
}

// planLocked compares desired and actual state for the given service IDs
// and returns the writes that make them equal. Drift is counted by kind.
func (r *Registrar) planLocked(ids []string, full bool) []plan {
	sort.Strings(ids)
	ids = compactSorted(ids)
	var plans []plan
	drift := 0
	count := func(kind string) {
		drift++
		r.m.drift.WithLabelValues(kind).Inc()
	}
	for _, sid := range ids {
		want, have := r.desired[sid], r.actual[sid]
		p := plan{id: sid}
		switch {
		case want == nil && have == nil:
		case want == nil:
			if r.retainedLocked(have.container) {
				break
			}
			count("stale")
			p.steps = append(p.steps, step{op: opDeregister, id: sid, container: have.container})
		default:
			owner := r.owner[sid]
			reason := r.maintenanceLocked(owner)
			maint := reason != ""
			if rj, ok := r.rejected[sid]; ok && rj.hash == want.Hash {
				break // Consul refused this exact registration; see DescribeContainer
			}
			if have == nil || have.hash != want.Hash {
				if have == nil {
					count("missing")
				} else {
					count("changed")
				}
				p.steps = append(p.steps, step{op: opRegister, id: sid, reg: want.Registration(), container: owner, fresh: have == nil})
				if maint {
					p.steps = append(p.steps, step{op: opMaintenance, id: sid, enable: true, reason: reason, container: owner})
				}
				break
			}
			if have.maint != maint {
				count("maintenance")
				p.steps = append(p.steps, step{op: opMaintenance, id: sid, enable: maint, reason: reason, container: owner})
			}
			if want.HealthCheckID != "" && have.health != want.HealthStatus {
				count("health")
				p.steps = append(p.steps, step{op: opHealth, id: sid, checkID: want.HealthCheckID, status: want.HealthStatus, container: owner})
			}
		}
		if len(p.steps) > 0 {
			plans = append(plans, p)
		}
	}
	if full {
		fids := make([]string, 0, len(r.stale))
		for sid := range r.stale {
			fids = append(fids, sid)
		}
		sort.Strings(fids)
		for _, sid := range fids {
			count("stale")
			plans = append(plans, plan{id: sid, steps: []step{{op: opDeregister, id: sid}}})
		}
		r.m.lastDrift.Set(float64(drift))
	}
	return plans
}

func compactSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
