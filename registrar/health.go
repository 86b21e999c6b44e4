package registrar

import "github.com/heartwood-ops/heartwood/internal/promvalue"

// Health is the registrar's part of the agent's health document.
type Health struct {
	// Desired is the services this node's containers should have in
	// Consul; Registered those of them the local Consul agent has, and
	// InSync those it has as desired.
	Desired, Registered, InSync int
	// Drift is the differences the last full reconcile found (0 in steady
	// state).
	Drift int
	// ConsulErrors counts failed reads and writes of the local Consul
	// agent since the registrar started.
	ConsulErrors uint64
}

// consulErrorKinds are the error kinds of heartwood_registrar_errors_total
// that are Consul's: not a container's bad labels (translate) or a panic.
var consulErrorKinds = []string{opRegister, opDeregister, opMaintenance, opHealth, "read", "rejected"}

// Health returns the registrar's current figures.
func (r *Registrar) Health() Health {
	var h Health
	for _, kind := range consulErrorKinds {
		if c, err := r.m.errors.GetMetricWithLabelValues(kind); err == nil {
			h.ConsulErrors += uint64(promvalue.Sum(c))
		}
	}
	h.Drift = int(promvalue.Sum(r.m.lastDrift))
	r.mu.Lock()
	defer r.mu.Unlock()
	h.Desired = len(r.desired)
	for id, want := range r.desired {
		if have := r.actual[id]; have != nil {
			h.Registered++
			if have.hash == want.Hash {
				h.InSync++
			}
		}
	}
	return h
}
