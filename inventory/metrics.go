package inventory

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	events       *prometheus.CounterVec
	changes      *prometheus.CounterVec
	errors       *prometheus.CounterVec
	syncs        prometheus.Counter
	disconnects  prometheus.Counter
	syncDuration prometheus.Histogram
}

func newMetrics(inv *Inventory, reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_inventory_docker_events_total",
			Help: "Docker container events received, by action.",
		}, []string{"action"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_inventory_changes_total",
			Help: "Changes published to subscribers, by kind.",
		}, []string{"kind"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "heartwood_inventory_docker_errors_total",
			Help: "Failed Docker API calls, by operation.",
		}, []string{"op"}),
		syncs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "heartwood_inventory_syncs_total",
			Help: "Full container list syncs with Docker (one at start, one after each reconnect).",
		}),
		disconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "heartwood_inventory_docker_disconnects_total",
			Help: "Times the Docker event stream was lost.",
		}),
		syncDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "heartwood_inventory_sync_duration_seconds",
			Help:    "Duration of full container syncs with Docker.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.events, m.changes, m.errors, m.syncs, m.disconnects, m.syncDuration,
		&stateCollector{inv: inv})
	return m
}

// stateCollector reports the inventory's current contents at scrape time.
type stateCollector struct{ inv *Inventory }

var (
	containersDesc = prometheus.NewDesc("heartwood_inventory_containers",
		"Containers known to the inventory, by Docker status.", []string{"status"}, nil)
	connectedDesc = prometheus.NewDesc("heartwood_inventory_docker_connected",
		"1 while the inventory follows Docker's event stream.", nil, nil)
	subscribersDesc = prometheus.NewDesc("heartwood_inventory_subscribers",
		"Open inventory subscriptions.", nil, nil)
	queueDesc = prometheus.NewDesc("heartwood_inventory_subscriber_queue_max",
		"Longest queue of undelivered changes among the subscribers.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- containersDesc
	ch <- connectedDesc
	ch <- subscribersDesc
	ch <- queueDesc
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	inv := c.inv
	inv.mu.Lock()
	counts := map[string]int{"created": 0, "running": 0, "paused": 0, "restarting": 0, "removing": 0, "exited": 0, "dead": 0}
	for _, ct := range inv.containers {
		counts[ct.State.Status]++
	}
	connected := inv.connected
	inv.mu.Unlock()
	subs, maxDepth := inv.feed.Stats()

	for status, n := range counts {
		ch <- prometheus.MustNewConstMetric(containersDesc, prometheus.GaugeValue, float64(n), status)
	}
	ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, boolFloat(connected))
	ch <- prometheus.MustNewConstMetric(subscribersDesc, prometheus.GaugeValue, float64(subs))
	ch <- prometheus.MustNewConstMetric(queueDesc, prometheus.GaugeValue, float64(maxDepth))
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
