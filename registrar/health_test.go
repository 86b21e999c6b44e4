package registrar

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heartwood-ops/heartwood/inventory"
)

func TestHealthFigures(t *testing.T) {
	h := newHarness(t, nil)
	h.r.ingest([]inventory.Change{
		{Kind: inventory.Added, Action: "resync", Container: ctr("web")},
		{Kind: inventory.Added, Action: "resync", Container: ctr("api", "SERVICE_NAME=api")},
	}, map[string]time.Time{})
	if got := h.r.Health(); got != (Health{}) {
		t.Errorf("before the first reconcile: %+v", got)
	}
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if got := h.r.Health(); got != (Health{Desired: 2, Registered: 2, InSync: 2, Drift: 2}) {
		t.Errorf("after registering: %+v (drift is the last full reconcile's: 2 missing)", got)
	}
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if got := h.r.Health(); got.Drift != 0 || got.InSync != 2 {
		t.Errorf("steady: %+v", got)
	}
	// Consul down: reads fail and are counted; a container's bad labels
	// are not Consul errors.
	h.agent.mu.Lock()
	h.agent.down = true
	h.agent.mu.Unlock()
	if err := h.r.reconcile(context.Background(), true, nil); err == nil {
		t.Fatal("reconcile with Consul down succeeded")
	}
	h.r.m.errors.WithLabelValues("translate").Inc()
	if got := h.r.Health(); got.ConsulErrors == 0 {
		t.Errorf("Consul down: %+v", got)
	} else if n := got.ConsulErrors; n != uint64(h.sumConsulErrorMetrics()) {
		t.Errorf("ConsulErrors = %d, metrics say %v", n, h.sumConsulErrorMetrics())
	}
}

// sumConsulErrorMetrics sums heartwood_registrar_errors_total over the
// kinds that are Consul's, as a scrape would.
func (h *harness) sumConsulErrorMetrics() float64 {
	var n float64
	for _, k := range consulErrorKinds {
		n += testutil.ToFloat64(h.r.m.errors.WithLabelValues(k))
	}
	return n
}
