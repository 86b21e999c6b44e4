package registrar

import "github.com/prometheus/client_golang/prometheus"

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
	m := &metrics{
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_registrar_consul_writes_total",
			Help: "Writes to the local Consul agent, by operation (register, deregister, maintenance, health).",
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_registrar_errors_total",
			Help: "Registrar errors, by kind (register, deregister, maintenance, health, read, rejected, panic, translate).",
		}, []string{"kind"}),
		drift: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_registrar_drift_total",
			Help: "Differences between desired and actual Consul state found by reconciles, by kind (missing, changed, stale, maintenance, health).",
		}, []string{"kind"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_registrar_reconciles_total",
			Help: "Reconciles run, by mode (full, incremental) and result (ok, error).",
		}, []string{"mode", "result"}),
		reconcileDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "heartwood_registrar_reconcile_duration_seconds",
			Help:    "Duration of reconciles, by mode (full, incremental).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}, []string{"mode"}),
		eventLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "heartwood_registrar_event_to_registered_seconds",
			Help:    "Time from an inventory change to its Consul write completing.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		desired: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "heartwood_registrar_services_desired",
			Help: "Services this node's containers should have in Consul.",
		}),
		skipped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "heartwood_registrar_ports_skipped",
			Help: "Containers or ports of running containers that yield no service (see GET /v1/containers for why).",
		}),
		lastDrift: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "heartwood_registrar_last_full_reconcile_drift",
			Help: "Differences found by the last full reconcile (0 in steady state).",
		}),
		registrations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "heartwood_registrar_registrations_total",
			Help: "Services registered or re-registered with the local Consul agent.",
		}),
		deregistration: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "heartwood_registrar_deregistrations_total",
			Help: "Services deregistered from the local Consul agent.",
		}),
		scriptsDropped: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "heartwood_registrar_script_checks_dropped",
			Help: "Script checks that containers' SERVICE_CHECK_SCRIPT or SERVICE_CHECKS ask for and that are not registered because registrar.allow-script-checks is off.",
		}),
		conflicts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "heartwood_registrar_service_id_conflicts",
			Help: "Service IDs that containers ask for but that another service (not registered by this node's Heartwood) holds on the local Consul agent; they are not taken over.",
		}),
	}
	// Known label values start at zero, so that rate() and alerts see the
	// series before the first error.
	for _, kind := range []string{opRegister, opDeregister, opMaintenance, opHealth, "read", "rejected", "panic", "translate"} {
		m.errors.WithLabelValues(kind)
	}
	for _, kind := range []string{"missing", "changed", "stale", "maintenance", "health"} {
		m.drift.WithLabelValues(kind)
	}
	if reg != nil {
		reg.MustRegister(m.writes, m.errors, m.drift, m.reconciles, m.reconcileDur, m.eventLatency,
			m.desired, m.skipped, m.lastDrift, m.registrations, m.deregistration, m.scriptsDropped, m.conflicts)
	}
	return m
}
