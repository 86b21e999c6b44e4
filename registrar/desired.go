package registrar

import (
	"fmt"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

func (r *Registrar) options() translate.Options {
	o := translate.Options{
		Node:          r.node,
		HostIP:        r.hostIP,
		Internal:      r.cfg.Internal,
		Explicit:      r.cfg.Explicit,
		IPFromLabel:   r.cfg.IPFromLabel,
		Tags:          r.cfg.Tags,
		Network:       r.cfg.Network,
		IPv6:          r.cfg.IPv6,
		DockerHealth:  r.cfg.DockerHealth,
		CheckInterval: r.cfg.CheckInterval.String(),
		RequireLabels: r.cfg.RequireLabels,

		AllowScriptChecks: r.cfg.AllowScriptChecks,
	}
	o.Lookup = r.lookupLocked
	return o
}

// lookupLocked finds a container by ID, ID prefix or name; r.mu is held by
// the caller (Translate calls it during recompute).
func (r *Registrar) lookupLocked(ref string) (*inventory.Container, bool) {
	if c, ok := r.containers[ref]; ok {
		return c, true
	}
	for _, c := range r.containers {
		if c.Names(ref) {
			return c, true
		}
	}
	return nil, false
}

// translateLocked translates a container; a panic (a poison input) makes
// the container yield no service, with the reason, instead of stopping the
// registrar.
func (r *Registrar) translateLocked(c *inventory.Container, o translate.Options) (res translate.Result) {
	defer func() {
		if v := recover(); v != nil {
			r.m.errors.WithLabelValues("translate").Inc()
			res = translate.Result{Skipped: []translate.Skip{{Reason: "internal error while translating the container's settings; see the agent log"}}}
			r.once("translate\x00"+c.ID, func() {
				r.log.Error("translating a container panicked; it is not registered", "container", c.ShortID(), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			})
		}
	}()
	return r.translate(c, o)
}

// mayTakeOverLocked reports whether the registrar may register over a
// service it did not register: only Registrator's own registration of the
// same container, with cleanup-registrator on (the migration from
// Registrator).
func (r *Registrar) mayTakeOverLocked(h holder, containerID string) bool {
	if !r.cfg.CleanupRegistrator || h.registratorFor == "" {
		return false
	}
	c, ok := r.containers[containerID]
	return ok && c.Name == h.registratorFor
}

// conflictLocked records that container id cannot have service s because
// another holds its ID on the agent, logs it once, and returns the skip that
// reports it.
func (r *Registrar) conflictLocked(s *translate.Service, id string, h holder) translate.Skip {
	r.conflicts[s.ID] = id
	reason := "service ID is held on the local Consul agent by " + h.desc + "; not taken over"
	r.once("conflict\x00"+s.ID+"\x00"+id, func() {
		r.log.Warn("service ID held by another service on the agent; not registered", "service_id", s.ID, "container", inventory.ShortID(id), "holder", h.desc)
	})
	return translate.Skip{Port: portString(s.ContainerPort, s.Proto), ServiceID: s.ID, Reason: reason}
}

// refuseLocked withdraws service sid of container id after the agent was
// found to hold its ID for another (h).
func (r *Registrar) refuseLocked(sid, id string, h holder) {
	s := r.desired[sid]
	if s == nil || r.owner[sid] != id {
		return
	}
	delete(r.desired, sid)
	delete(r.owner, sid)
	res := r.results[id]
	kept := make([]*translate.Service, 0, len(res.Services))
	for _, x := range res.Services {
		if x.ID != sid {
			kept = append(kept, x)
		}
	}
	res.Services = kept
	res.Skipped = append(append([]translate.Skip(nil), res.Skipped...), r.conflictLocked(s, id, h))
	r.results[id] = res
	r.updateGaugesLocked()
}

// once runs f the first time key is seen since the last full reconcile
// that no longer saw it (see forgetReportsLocked).
func (r *Registrar) once(key string, f func()) {
	r.seen[key] = true
	if r.reported[key] {
		return
	}
	r.reported[key] = true
	f()
}

// forgetReportsLocked drops the once-keys not seen since the last call, so
// that a problem that went away and comes back is reported again.
func (r *Registrar) forgetReportsLocked() {
	for k := range r.reported {
		if !r.seen[k] {
			delete(r.reported, k)
		}
	}
	clear(r.seen)
}

// retainedLocked reports whether services of a stopped container stay
// registered under the deregistration policy.
func (r *Registrar) retainedLocked(id string) bool {
	c, ok := r.containers[id]
	if !ok || (c.State.Running && !c.State.Restarting) {
		return false
	}
	switch r.cfg.Deregister {
	case DeregisterNever:
		return true
	case DeregisterOnSuccess:
		code := c.State.ExitCode
		return code != 0 && code&0x80 == 0 // failed, and not killed by a signal
	}
	return false
}

// maintenanceLocked returns why a container's services should be in
// maintenance, "" if they should not.
func (r *Registrar) maintenanceLocked(id string) string {
	if reason := r.explicit[id]; reason != "" {
		return reason
	}
	if _, ok := r.drain[id]; ok {
		return "container is stopping (Docker kill/stop event)"
	}
	if c, ok := r.containers[id]; ok && c.State.Paused {
		return "container is paused"
	}
	return ""
}

// recomputeLocked translates one container again and updates the desired
// services and their owners. It returns the service IDs whose desired
// state may have changed and the containers to recompute because an ID
// they wanted became free.
func (r *Registrar) recomputeLocked(id string, o translate.Options) (ids []string, retry []string) {
	// The services a container owns are those of its last translation
	// (refuseLocked keeps the two equal): no scan of every owner.
	for _, s := range r.results[id].Services {
		if r.owner[s.ID] == id {
			ids = append(ids, s.ID)
		}
	}
	oldOwned := map[string]bool{}
	for _, sid := range ids {
		oldOwned[sid] = true
		delete(r.owner, sid)
		delete(r.desired, sid)
	}
	for sid, set := range r.contested {
		delete(set, id)
		if len(set) == 0 {
			delete(r.contested, sid)
		}
	}
	for sid, own := range r.conflicts {
		if own == id {
			delete(r.conflicts, sid)
		}
	}
	c, ok := r.containers[id]
	if !ok {
		delete(r.results, id)
	} else {
		res := r.translateLocked(c, o)
		kept := res.Services[:0]
		for _, s := range res.Services {
			if h, taken := r.taken[s.ID]; taken && !r.mayTakeOverLocked(h, id) {
				res.Skipped = append(res.Skipped, r.conflictLocked(s, id, h))
				continue
			}
			if other, taken := r.owner[s.ID]; taken && other != id {
				name := other
				if oc, ok := r.containers[other]; ok {
					name = oc.Name
				}
				res.Skipped = append(res.Skipped, translate.Skip{
					Port: strconv.Itoa(s.ContainerPort) + "/" + s.Proto, ServiceID: s.ID,
					Reason: "service ID already registered for container " + name,
				})
				if r.contested[s.ID] == nil {
					r.contested[s.ID] = map[string]bool{}
				}
				r.contested[s.ID][id] = true
				continue
			}
			kept = append(kept, s)
			r.owner[s.ID] = id
			r.desired[s.ID] = s
			ids = append(ids, s.ID)
		}
		res.Services = kept
		r.results[id] = res
	}
	for sid := range oldOwned {
		if _, still := r.owner[sid]; !still {
			for other := range r.contested[sid] {
				retry = append(retry, other)
			}
		}
	}
	for sid, a := range r.actual {
		if a.container == id {
			ids = append(ids, sid)
		}
	}
	return ids, retry
}

// sharersLocked returns the containers that use the network namespace of
// container id (network mode container:<id or name>): their address is
// that container's, so they are reconciled with it.
func (r *Registrar) sharersLocked(id string) []string {
	c, ok := r.containers[id]
	var out []string
	for oid, o := range r.containers {
		ref, shared := strings.CutPrefix(o.NetworkMode, "container:")
		if !shared || oid == id || ref == "" {
			continue
		}
		if ref == id || (ok && ref == c.Name) || (len(ref) >= 12 && strings.HasPrefix(id, ref)) {
			out = append(out, oid)
		}
	}
	return out
}

// orderLocked lists the containers oldest first, so that on a service ID
// conflict the older container keeps the ID.
func (r *Registrar) orderLocked() []string {
	ids := make([]string, 0, len(r.containers))
	for id := range r.containers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := r.containers[ids[i]], r.containers[ids[j]]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.ID < b.ID
	})
	return ids
}

func (r *Registrar) updateGaugesLocked() {
	r.m.desired.Set(float64(len(r.desired)))
	skipped := 0
	for id, res := range r.results {
		if c, ok := r.containers[id]; ok && c.State.Running {
			skipped += len(res.Skipped)
		}
	}
	r.m.skipped.Set(float64(skipped))
	scripts := 0
	for _, s := range r.desired {
		scripts += s.ScriptChecksDropped
	}
	r.m.scriptsDropped.Set(float64(scripts))
	r.m.conflicts.Set(float64(len(r.conflicts)))
}
