package esout

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/metricset"
)

// metrics are the writer's Prometheus metrics.
type metrics struct {
	delivered      prometheus.Counter
	deliveredBytes prometheus.Counter
	duplicates     prometheus.Counter
	retried        prometheus.Counter
	deadLettered   prometheus.Counter
	deadLetterFail prometheus.Counter
	workerPanics   prometheus.Counter
	requests       *prometheus.CounterVec
	requestBytes   prometheus.Counter
	latency        prometheus.Histogram
	inflightBytes  prometheus.Gauge
	queueDocs      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	set := metricset.New("heartwood_shipper_es_")
	m := &metrics{
		delivered:      set.Counter("docs_delivered_total", "Documents indexed by Elasticsearch (bulk item status 2xx)."),
		deliveredBytes: set.Counter("bytes_delivered_total", "Source bytes of documents indexed by Elasticsearch."),
		duplicates:     set.Counter("docs_duplicate_total", "Documents already present (bulk item status 409), counted as delivered."),
		retried:        set.Counter("docs_retried_total", "Document send attempts that failed retryably (429, 5xx, transport error) and were retried."),
		deadLettered:   set.Counter("docs_dead_lettered_total", "Documents rejected permanently and acknowledged as dead-lettered."),
		workerPanics:   set.Counter("worker_panics_total", "Panics recovered in bulk workers; the batch's documents are counted as dead-letter failures."),
		deadLetterFail: set.Counter("dead_letter_failures_total", "Dead-letter documents that Elasticsearch rejected permanently too (the document is lost; logged)."),
		requests:       set.CounterVec("bulk_requests_total", "Bulk requests by HTTP status (\"error\" for transport errors).", "status"),
		requestBytes:   set.Counter("bulk_request_bytes_total", "Bytes sent in bulk request bodies, after compression."),
		latency:        set.Histogram("bulk_request_duration_seconds", "Bulk request latency, response body included.", prometheus.ExponentialBuckets(0.005, 2, 14)),
		inflightBytes:  set.Gauge("inflight_bytes", "Bytes of accepted, not yet acknowledged documents."),
		queueDocs:      set.Gauge("queue_docs", "Accepted, not yet acknowledged documents (queued, in flight or awaiting retry)."),
	}
	if err := set.Register(reg); err != nil {
		return nil, fmt.Errorf("register esout metrics: %w", err)
	}
	return m, nil
}
