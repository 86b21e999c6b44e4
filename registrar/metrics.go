package registrar

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/metricset"
)

// Consul write operations, the "op" label of heartwood_registrar_consul_writes_total.
const (
	opRegister    = "register"
	opDeregister  = "deregister"
	opMaintenance = "maintenance"
	opHealth      = "health"
)

type metrics struct {
	writes         *prometheus.CounterVec
	errors         *prometheus.CounterVec
	drift          *prometheus.CounterVec
	reconciles     *prometheus.CounterVec
	reconcileDur   *prometheus.HistogramVec
	eventLatency   prometheus.Histogram
	desired        prometheus.Gauge
	skipped        prometheus.Gauge
	lastDrift      prometheus.Gauge
	registrations  prometheus.Counter
	deregistration prometheus.Counter
	scriptsDropped prometheus.Gauge
	conflicts      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	set := metricset.New("heartwood_registrar_")
	m := &metrics{
		writes:         set.CounterVec("consul_writes_total", "Writes to the local Consul agent, by operation (register, deregister, maintenance, health).", "op"),
		errors:         set.CounterVec("errors_total", "Registrar errors, by kind (register, deregister, maintenance, health, read, rejected, panic, translate).", "kind"),
		drift:          set.CounterVec("drift_total", "Differences between desired and actual Consul state found by reconciles, by kind (missing, changed, stale, maintenance, health).", "kind"),
		reconciles:     set.CounterVec("reconciles_total", "Reconciles run, by mode (full, incremental) and result (ok, error).", "mode", "result"),
		reconcileDur:   set.HistogramVec("reconcile_duration_seconds", "Duration of reconciles, by mode (full, incremental).", prometheus.ExponentialBuckets(0.0005, 2.5, 12), "mode"),
		eventLatency:   set.Histogram("event_to_registered_seconds", "Time from an inventory change to its Consul write completing.", prometheus.ExponentialBuckets(0.0005, 2, 14)),
		desired:        set.Gauge("services_desired", "Services this node's containers should have in Consul."),
		skipped:        set.Gauge("ports_skipped", "Containers or ports of running containers that yield no service (see GET /v1/containers for why)."),
		lastDrift:      set.Gauge("last_full_reconcile_drift", "Differences found by the last full reconcile (0 in steady state)."),
		registrations:  set.Counter("registrations_total", "Services registered or re-registered with the local Consul agent."),
		deregistration: set.Counter("deregistrations_total", "Services deregistered from the local Consul agent."),
		scriptsDropped: set.Gauge("script_checks_dropped", "Script checks that containers' SERVICE_CHECK_SCRIPT or SERVICE_CHECKS ask for and that are not registered because registrar.allow-script-checks is off."),
		conflicts:      set.Gauge("service_id_conflicts", "Service IDs that containers ask for but that another service (not registered by this node's Heartwood) holds on the local Consul agent; they are not taken over."),
	}
	// Known label values start at zero, so that rate() and alerts see the
	// series before the first error.
	for _, kind := range []string{opRegister, opDeregister, opMaintenance, opHealth, "read", "rejected", "panic", "translate"} {
		m.errors.WithLabelValues(kind)
	}
	for _, kind := range []string{"missing", "changed", "stale", "maintenance", "health"} {
		m.drift.WithLabelValues(kind)
	}
	set.MustRegister(reg)
	return m
}
