package inventory

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/metricset"
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
	set := metricset.New("heartwood_inventory_")
	m := &metrics{
		events:       set.CounterVec("docker_events_total", "Docker container events received, by action.", "action"),
		changes:      set.CounterVec("changes_total", "Changes published to subscribers, by kind.", "kind"),
		errors:       set.CounterVec("docker_errors_total", "Failed Docker API calls, by operation.", "op"),
		syncs:        set.Counter("syncs_total", "Full container list syncs with Docker (one at start, one after each reconnect)."),
		disconnects:  set.Counter("docker_disconnects_total", "Times the Docker event stream was lost."),
		syncDuration: set.Histogram("sync_duration_seconds", "Duration of full container syncs with Docker.", prometheus.ExponentialBuckets(0.005, 2.5, 10)),
	}
	set.Add(&stateCollector{inv: inv})
	set.MustRegister(reg)
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
