package esout

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
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
	const ns, sub = "heartwood", "shipper_es"
	m := &metrics{
		delivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "docs_delivered_total", Help: "Documents indexed by Elasticsearch (bulk item status 2xx)."}),
		deliveredBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bytes_delivered_total", Help: "Source bytes of documents indexed by Elasticsearch."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "docs_duplicate_total", Help: "Documents already present (bulk item status 409), counted as delivered."}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "docs_retried_total", Help: "Document send attempts that failed retryably (429, 5xx, transport error) and were retried."}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "docs_dead_lettered_total", Help: "Documents rejected permanently and acknowledged as dead-lettered."}),
		workerPanics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "worker_panics_total", Help: "Panics recovered in bulk workers; the batch's documents are counted as dead-letter failures."}),
		deadLetterFail: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "dead_letter_failures_total", Help: "Dead-letter documents that Elasticsearch rejected permanently too (the document is lost; logged)."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bulk_requests_total", Help: "Bulk requests by HTTP status (\"error\" for transport errors)."}, []string{"status"}),
		requestBytes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "bulk_request_bytes_total", Help: "Bytes sent in bulk request bodies, after compression."}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub,
			Name: "bulk_request_duration_seconds", Help: "Bulk request latency, response body included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		inflightBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "inflight_bytes", Help: "Bytes of accepted, not yet acknowledged documents."}),
		queueDocs: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "queue_docs", Help: "Accepted, not yet acknowledged documents (queued, in flight or awaiting retry)."}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.delivered, m.deliveredBytes, m.duplicates, m.retried,
		m.deadLettered, m.deadLetterFail, m.workerPanics, m.requests, m.requestBytes, m.latency, m.inflightBytes, m.queueDocs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register esout metrics: %w", err)
		}
	}
	return m, nil
}
