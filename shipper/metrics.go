package shipper

import (
	"fmt"
	"sync/atomic"

	"github.com/heartwood-ops/heartwood/internal/promvalue"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/metricset"
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
	set := metricset.New("heartwood_shipper_")
	m := &metrics{
		linesRead:              set.Counter("records_read_total", "json-file records (log lines or 16 KiB parts) read."),
		bytesRead:              set.Counter("bytes_read_total", "Bytes of json-file log read."),
		events:                 set.Counter("events_total", "Events (lines after reassembly and multiline grouping) handed to the output."),
		eventsAcked:            set.CounterVec("events_acked_total", "Events acknowledged by the output, by outcome (delivered, duplicate, dead_lettered).", "outcome"),
		bytesAcked:             set.CounterVec("bytes_acked_total", "Document bytes acknowledged by the output, by outcome.", "outcome"),
		malformed:              set.Counter("malformed_records_total", "json-file records that could not be decoded and were skipped."),
		truncated:              set.Counter("events_truncated_total", "Events cut at the maximum event size or line count."),
		gaps:                   set.CounterVec("gaps_total", "Gaps: log data lost before it could be read, per container.", "container"),
		lostBytes:              set.CounterVec("lost_bytes_total", "Log bytes known lost before they could be read (rotated away), per container.", "container"),
		headroomWarns:          set.CounterVec("rotation_headroom_warnings_total", "Times unread log data came close to being rotated away, per container.", "container"),
		lag:                    set.GaugeVec("lag_seconds", "Now minus the Docker timestamp of the newest acknowledged line, per container.", "container"),
		readers:                set.Gauge("readers", "Container log readers running."),
		inflightBytes:          set.Gauge("inflight_bytes", "Bytes of documents read and not yet acknowledged."),
		checkpointFails:        set.Counter("checkpoint_write_errors_total", "Failed checkpoint file writes."),
		panics:                 set.CounterVec("panics_recovered_total", "Panics recovered in log readers, by where (record: one record skipped; reader: the container's reader stopped).", "where"),
		checkpointsQuarantined: set.Counter("checkpoint_files_quarantined_total", "Checkpoint files that could not be read and were moved aside (their containers start from the beginning of their logs)."),
	}
	if err := set.Register(reg); err != nil {
		return nil, fmt.Errorf("register shipper metrics: %w", err)
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
