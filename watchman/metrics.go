package watchman

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/metricset"
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
	quietSamples                     prometheus.Counter
	sampleDuration, tickDuration     prometheus.Histogram
	connWatch                        *prometheus.GaugeVec
}

func newMetrics(w *Watchman, reg prometheus.Registerer) (*metrics, error) {
	set := metricset.New("heartwood_watchman_")
	m := &metrics{
		pauses:          set.CounterVec("pauses_total", "Containers paused or stopped by the watchman, by reason (idle, api).", "reason"),
		wakes:           set.CounterVec("wakes_total", "Containers woken, by trigger (api, connect, manual, rollback, ...).", "trigger"),
		decisions:       set.CounterVec("decisions_total", "Idle decisions by outcome (pause, stop, notify, deferred, refused, failed).", "action"),
		events:          set.CounterVec("events_total", "Decision events recorded, by action.", "action"),
		sampleErrors:    set.CounterVec("sample_errors_total", "Samples that failed for a reason other than the container going away, by source.", "source"),
		panics:          set.CounterVec("panics_total", "Panics recovered in watchman actions (pause, wake, connection watch, sample, ...), by where.", "where"),
		stateFileErrors: set.CounterVec("state_file_errors_total", "Problems with the record of paused containers in the data directory (read, write, quarantined).", "op"),
		seriesDropped:   set.Counter("series_dropped_total", "Container series left out of a scrape because they could not be built (duplicate after label sanitizing, invalid value)."),
		wakeDuration:    set.HistogramVec("wake_duration_seconds", "Time from a wake trigger to the container running again.", []float64{.01, .025, .05, .1, .15, .25, .5, 1, 2.5, 5, 10}, "trigger"),
		wouldPause:      set.Counter("would_pause_total", "Pauses (or stops) not done because of dry-run."),
		eventsDropped:   set.Counter("events_dropped_total", "Decision events that could not be shipped."),
		samplesShipped:  set.Counter("es_samples_total", "Utilization samples written to Elasticsearch."),
		samplesDropped:  set.Counter("es_samples_dropped_total", "Utilization samples that could not be written to Elasticsearch."),
		policyErrors:    set.Counter("policy_errors_total", "Malformed heartwood.watchman.* label sets seen."),
		kvErrors:        set.Counter("kv_errors_total", "Failed or invalid reads of the KV settings."),
		skipped:         set.Counter("samples_skipped_total", "Samples skipped because the container went away."),
		dockerSamples:   set.Counter("docker_stats_fallback_total", "Samples taken through the Docker stats API because the cgroup could not be read."),
		tickCPU:         set.Counter("tick_cpu_seconds_total", "CPU time (user+system) the sampling and decision ticks used."),
		quietSamples:    set.Counter("quiet_samples_total", "Samples that read only the CPU counter: it had not moved since the last sample, so block I/O and network were carried over."),
		sampleDuration:  set.Histogram("container_sample_duration_seconds", "Time to read one container's cgroup and network files.", prometheus.ExponentialBuckets(5e-6, 2, 14)),
		tickDuration:    set.Histogram("tick_duration_seconds", "Time to sample every container once and decide.", prometheus.ExponentialBuckets(1e-4, 2, 16)),
	}
	m.connWatch = set.GaugeVec("connection_watch", "1 for each paused container watched for connections, by container name and mechanism (pidfd: socket events, poll: polling).", "name", "mechanism")
	// Known label values start at zero, so that rate() and alerts see the
	// series before the first error.
	for _, source := range []string{"cgroup", "docker"} {
		m.sampleErrors.WithLabelValues(source)
	}
	for _, op := range []string{"read", "write", "quarantined"} {
		m.stateFileErrors.WithLabelValues(op)
	}
	set.Add(newCollector(w))
	if err := set.Register(reg); err != nil {
		return nil, fmt.Errorf("watchman: register metrics: %w", err)
	}
	return m, nil
}
