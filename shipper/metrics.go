package shipper

import (
	"fmt"
	"sync/atomic"

	"github.com/heartwood-ops/heartwood/internal/promvalue"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	linesRead       prometheus.Counter
	bytesRead       prometheus.Counter
	events          prometheus.Counter
	eventsAcked     *prometheus.CounterVec
	bytesAcked      *prometheus.CounterVec
	malformed       prometheus.Counter
	truncated       prometheus.Counter
	gaps            *prometheus.CounterVec
	lostBytes       *prometheus.CounterVec
	headroomWarns   *prometheus.CounterVec
	lag             *prometheus.GaugeVec
	readers         prometheus.Gauge
	inflightBytes   prometheus.Gauge
	checkpointFails prometheus.Counter
	panics          *prometheus.CounterVec
	// checkpointsQuarantined counts unreadable checkpoint files moved aside.
	checkpointsQuarantined prometheus.Counter
	// retiredGaps and retiredLostBytes keep the totals of forgotten
	// containers' series, for the health documents' running totals.
	retiredGaps, retiredLostBytes atomic.Uint64
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns = "heartwood_shipper_"
	m := &metrics{
		linesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "records_read_total",
			Help: "json-file records (log lines or 16 KiB parts) read."}),
		bytesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "bytes_read_total",
			Help: "Bytes of json-file log read."}),
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_total",
			Help: "Events (lines after reassembly and multiline grouping) handed to the output."}),
		eventsAcked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "events_acked_total",
			Help: "Events acknowledged by the output, by outcome (delivered, duplicate, dead_lettered)."}, []string{"outcome"}),
		bytesAcked: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "bytes_acked_total",
			Help: "Document bytes acknowledged by the output, by outcome."}, []string{"outcome"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "malformed_records_total",
			Help: "json-file records that could not be decoded and were skipped."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "events_truncated_total",
			Help: "Events cut at the maximum event size or line count."}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "gaps_total",
			Help: "Gaps: log data lost before it could be read, per container."}, []string{"container"}),
		lostBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "lost_bytes_total",
			Help: "Log bytes known lost before they could be read (rotated away), per container."}, []string{"container"}),
		headroomWarns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "rotation_headroom_warnings_total",
			Help: "Times unread log data came close to being rotated away, per container."}, []string{"container"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "lag_seconds",
			Help: "Now minus the Docker timestamp of the newest acknowledged line, per container."}, []string{"container"}),
		readers: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "readers",
			Help: "Container log readers running."}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + "inflight_bytes",
			Help: "Bytes of documents read and not yet acknowledged."}),
		checkpointFails: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "checkpoint_write_errors_total",
			Help: "Failed checkpoint file writes."}),
		panics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "panics_recovered_total",
			Help: "Panics recovered in log readers, by where (record: one record skipped; reader: the container's reader stopped)."}, []string{"where"}),
		checkpointsQuarantined: prometheus.NewCounter(prometheus.CounterOpts{Name: ns + "checkpoint_files_quarantined_total",
			Help: "Checkpoint files that could not be read and were moved aside (their containers start from the beginning of their logs)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.linesRead, m.bytesRead, m.events, m.eventsAcked, m.bytesAcked,
		m.malformed, m.truncated, m.gaps, m.lostBytes, m.headroomWarns, m.lag, m.readers, m.inflightBytes, m.checkpointFails, m.panics, m.checkpointsQuarantined} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register shipper metrics: %w", err)
		}
	}
	return m, nil
}

// forget deletes a removed container's series.
func (m *metrics) forget(container string) {
	if c, err := m.gaps.GetMetricWithLabelValues(container); err == nil {
		m.retiredGaps.Add(uint64(promvalue.Sum(c)))
	}
	if c, err := m.lostBytes.GetMetricWithLabelValues(container); err == nil {
		m.retiredLostBytes.Add(uint64(promvalue.Sum(c)))
	}
	m.lag.DeleteLabelValues(container)
	m.gaps.DeleteLabelValues(container)
	m.lostBytes.DeleteLabelValues(container)
	m.headroomWarns.DeleteLabelValues(container)
}
