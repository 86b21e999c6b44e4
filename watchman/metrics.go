package watchman

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics holds the watchman's own instruments; the per-container figures
// are produced at scrape time by collector.
type metrics struct {
	pauses, wakes, decisions, events *prometheus.CounterVec
	sampleErrors, panics             *prometheus.CounterVec
	stateFileErrors                  *prometheus.CounterVec
	seriesDropped                    prometheus.Counter
	wakeDuration                     *prometheus.HistogramVec
	wouldPause, eventsDropped        prometheus.Counter
	samplesShipped, samplesDropped   prometheus.Counter
	policyErrors, kvErrors, skipped  prometheus.Counter
	dockerSamples, tickCPU           prometheus.Counter
	sampleDuration, tickDuration     prometheus.Histogram
	connWatch                        *prometheus.GaugeVec
}

func newMetrics(w *Watchman, reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "heartwood", "watchman"
	cv := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help}, labels)
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: name, Help: help})
	}
	m := &metrics{
		pauses:          cv("pauses_total", "Containers paused or stopped by the watchman, by reason (idle, api).", "reason"),
		wakes:           cv("wakes_total", "Containers woken, by trigger (api, connect, manual, rollback, ...).", "trigger"),
		decisions:       cv("decisions_total", "Idle decisions by outcome (pause, stop, notify, deferred, refused, failed).", "action"),
		events:          cv("events_total", "Decision events recorded, by action.", "action"),
		sampleErrors:    cv("sample_errors_total", "Samples that failed for a reason other than the container going away, by source.", "source"),
		panics:          cv("panics_total", "Panics recovered in watchman actions (pause, wake, connection watch, sample, ...), by where.", "where"),
		stateFileErrors: cv("state_file_errors_total", "Problems with the record of paused containers in the data directory (read, write, quarantined).", "op"),
		seriesDropped:   c("series_dropped_total", "Container series left out of a scrape because they could not be built (duplicate after label sanitizing, invalid value)."),
		wakeDuration:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "wake_duration_seconds", Help: "Time from a wake trigger to the container running again.", Buckets: []float64{.01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10}}, []string{"trigger"}),
		wouldPause:      c("would_pause_total", "Pauses (or stops) not done because of dry-run."),
		eventsDropped:   c("events_dropped_total", "Decision events that could not be shipped."),
		samplesShipped:  c("es_samples_total", "Utilization samples written to Elasticsearch."),
		samplesDropped:  c("es_samples_dropped_total", "Utilization samples that could not be written to Elasticsearch."),
		policyErrors:    c("policy_errors_total", "Malformed heartwood.watchman.* label sets seen."),
		kvErrors:        c("kv_errors_total", "Failed or invalid reads of the KV settings."),
		skipped:         c("samples_skipped_total", "Samples skipped because the container went away."),
		dockerSamples:   c("docker_stats_fallback_total", "Samples taken through the Docker stats API because the cgroup could not be read."),
		tickCPU:         c("tick_cpu_seconds_total", "CPU time (user+system) the sampling and decision ticks used."),
		sampleDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "container_sample_duration_seconds",
			Help: "Time to read one container's cgroup and network files.", Buckets: prometheus.ExponentialBuckets(5e-6, 2, 14)}),
		tickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "tick_duration_seconds",
			Help: "Time to sample every container once and decide.", Buckets: prometheus.ExponentialBuckets(1e-4, 2, 16)}),
	}
	m.connWatch = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connection_watch",
		Help: "1 for each paused container watched for connections, by container name and mechanism (pidfd: socket events, poll: polling)."}, []string{"name", "mechanism"})
	// Known label values start at zero, so that rate() and alerts see the
	// series before the first error.
	for _, source := range []string{"cgroup", "docker"} {
		m.sampleErrors.WithLabelValues(source)
	}
	for _, op := range []string{"read", "write", "quarantined"} {
		m.stateFileErrors.WithLabelValues(op)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.pauses, m.wakes, m.decisions, m.events, m.sampleErrors, m.panics, m.stateFileErrors, m.seriesDropped, m.wakeDuration,
			m.wouldPause, m.eventsDropped, m.samplesShipped, m.samplesDropped, m.policyErrors, m.kvErrors, m.skipped, m.dockerSamples, m.tickCPU,
			m.sampleDuration, m.tickDuration, m.connWatch, newCollector(w)} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("watchman: register metrics: %w", err)
			}
		}
	}
	return m, nil
}
