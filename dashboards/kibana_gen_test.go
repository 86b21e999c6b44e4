package dashboards

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The Kibana objects are written by this file, not by hand: Lens states are
// large and repetitive, and one description per panel keeps field names,
// layout and references consistent. Change a description below, then run
//
//	go test ./dashboards -run TestKibanaObjectsAreGenerated -update
//
// and commit kibana/heartwood.ndjson.
var update = flag.Bool("update", false, "rewrite kibana/heartwood.ndjson from the descriptions")

// Saved-object migration versions the objects are written at. Kibana
// imports objects of its own or an older version, so these set the minimum
// Kibana version (8.11, see the README).
const (
	coreMigrationVersion = "8.8.0"
	lensMigration        = "8.9.0"
	dashboardMigration   = "8.9.0"
	searchMigration      = "10.2.0"
	dataViewMigration    = "8.0.0"
	panelVersion         = "8.11.0"
)

const (
	logsView    = "heartwood-logs"
	metricsView = "heartwood-metrics"
	agentView   = "heartwood-agent"
)

// Queries shared by several objects.
const (
	qContainerLogs = "data_stream.type : \"logs\" and not data_stream.dataset : heartwood.*"
	qErrors        = "log.level : (error or err or fatal or critical or crit or panic or emerg or alert)"
	qWarnings      = "log.level : (warn or warning)"
	qStderrNoLevel = "log.iostream : \"stderr\" and not log.level : *"
	qDecisions     = "data_stream.dataset : \"heartwood.watchman\""
	qDeadLetters   = "data_stream.dataset : \"heartwood.deadletter\""
	qGaps          = "event.action : \"log-gap\""
)

// column is one Lens column.
type column struct {
	id     string
	op     string // date_histogram, terms, count, sum, average, max, unique_count, last_value, counter_rate
	field  string
	label  string
	filter string // KQL applied to this metric only
	size   int    // terms: number of values
	order  string // terms: the metric column ordering the values
	format string // number, bytes, percent
}

// lens describes one Lens visualization.
type lens struct {
	id, title, desc string
	view            string
	vis             string // bar_stacked, line, area_stacked, metric, table, donut
	query           string
	cols            []column
	x, split        string   // XY: x axis and breakdown column ids
	metrics         []string // XY: y columns; metric: the first; donut: the first
	groups          []string // donut: slices
}

// search describes one saved search.
type search struct {
	id, title, desc string
	query           string
	columns         []string
}

// panel places an object on a dashboard (48 columns wide).
type panel struct {
	ref        string // object id
	typ        string // lens or search
	x, y, w, h int
}

// control is an options-list control above a dashboard.
type control struct {
	field, title, view string
}

// dashboard describes one dashboard.
type dashboard struct {
	id, title, desc string
	controls        []control
	panels          []panel
}

var dataViews = []struct{ id, title, name string }{
	{logsView, "logs-*", "Container logs and Heartwood events"},
	{metricsView, "metrics-heartwood.container-*", "Container utilization (Heartwood)"},
	{agentView, "metrics-heartwood.agent-*", "Heartwood agents' health"},
}

var searches = []search{
	{"heartwood-all-logs", "All container logs", "Every container's log lines, newest first.",
		qContainerLogs, []string{"host.name", "container.name", "service.name", "log.level", "message"}},
	{"heartwood-container-tail", "Container tail",
		"One container's lines in order: add a filter on container.name (or service.name) and open it.",
		qContainerLogs, []string{"container.name", "log.iostream", "log.level", "message"}},
	{"heartwood-errors", "Container errors",
		"Lines logged at error level or above, and stderr lines that carry no level.",
		qErrors + " or (" + qStderrNoLevel + ")", []string{"host.name", "container.name", "service.name", "log.level", "message"}},
	{"heartwood-stack-traces", "Stack traces",
		"Multi-line events (joined stack traces and similar) from containers.",
		"tags : \"multiline\"", []string{"host.name", "container.name", "service.name", "log.level", "message"}},
	{"heartwood-watchman-decisions", "Watchman decisions",
		"Pauses, wakes and would-pause decisions with their reasons.",
		qDecisions, []string{"host.name", "container.name", "event.action", "event.reason", "event.outcome", "message"}},
	{"heartwood-dead-letters", "Dead letters",
		"Log lines Elasticsearch rejected: the stream they were meant for, the rejection and the raw line.",
		qDeadLetters, []string{"heartwood.dead_letter.index", "error.type", "error.message", "event.original"}},
	{"heartwood-gaps", "Log gaps",
		"Log data lost before it could be shipped (Docker rotated or truncated unread files).",
		qGaps, []string{"host.name", "container.id", "event.reason", "heartwood.gap.bytes", "message"}},
}

func timeCol() column {
	return column{id: "time", op: "date_histogram", field: "@timestamp", label: "@timestamp"}
}

var visualizations = []lens{
	// Logs.
	{id: "heartwood-log-rate", title: "Log lines by service", view: logsView, vis: "bar_stacked",
		desc: "Container log lines per interval, top services.", query: qContainerLogs,
		cols: []column{timeCol(), {id: "svc", op: "terms", field: "service.name", label: "Service", size: 10, order: "n"},
			{id: "n", op: "count", label: "Lines"}},
		x: "time", split: "svc", metrics: []string{"n"}},
	{id: "heartwood-errors-over-time", title: "Errors and warnings over time", view: logsView, vis: "bar_stacked",
		desc: "Lines at error level or above, at warning level, and stderr lines without a level.", query: qContainerLogs,
		cols: []column{timeCol(),
			{id: "err", op: "count", label: "Errors", filter: qErrors},
			{id: "warn", op: "count", label: "Warnings", filter: qWarnings},
			{id: "stderr", op: "count", label: "stderr without level", filter: qStderrNoLevel}},
		x: "time", metrics: []string{"err", "warn", "stderr"}},
	{id: "heartwood-errors-by-service", title: "Errors and warnings by service", view: logsView, vis: "table",
		desc: "Services ranked by error lines.", query: qContainerLogs,
		cols: []column{{id: "svc", op: "terms", field: "service.name", label: "Service", size: 20, order: "err"},
			{id: "err", op: "count", label: "Errors", filter: qErrors},
			{id: "warn", op: "count", label: "Warnings", filter: qWarnings},
			{id: "stderr", op: "count", label: "stderr without level", filter: qStderrNoLevel},
			{id: "all", op: "count", label: "All lines"}}},
	{id: "heartwood-noisy-containers", title: "Noisiest containers", view: logsView, vis: "table",
		desc: "Containers ranked by log lines, with their node and service.", query: qContainerLogs,
		cols: []column{{id: "c", op: "terms", field: "container.name", label: "Container", size: 15, order: "n"},
			{id: "n", op: "count", label: "Lines"},
			{id: "host", op: "last_value", field: "host.name", label: "Node"},
			{id: "svc", op: "last_value", field: "service.name", label: "Service"}}},

	// Utilization and idle pausing.
	{id: "heartwood-cpu-by-service", title: "CPU cores by service", view: metricsView, vis: "line",
		desc: "CPU cores used, averaged over each service's containers.",
		cols: []column{timeCol(), {id: "svc", op: "terms", field: "service.name", label: "Service", size: 10, order: "cpu"},
			{id: "cpu", op: "average", field: "heartwood.container.cpu.cores", label: "CPU cores", format: "number"}},
		x: "time", split: "svc", metrics: []string{"cpu"}},
	{id: "heartwood-memory-by-service", title: "Memory working set by service", view: metricsView, vis: "line",
		desc: "Memory working set, averaged over each service's containers.",
		cols: []column{timeCol(), {id: "svc", op: "terms", field: "service.name", label: "Service", size: 10, order: "mem"},
			{id: "mem", op: "average", field: "heartwood.container.memory.working_set.bytes", label: "Working set", format: "bytes"}},
		x: "time", split: "svc", metrics: []string{"mem"}},
	{id: "heartwood-utilization-by-node", title: "Utilization by node", view: metricsView, vis: "table",
		desc: "Per node: containers, CPU cores and memory (averages over the time range), throttling.",
		cols: []column{{id: "node", op: "terms", field: "host.name", label: "Node", size: 50, order: "cpu"},
			{id: "n", op: "unique_count", field: "container.id", label: "Containers"},
			{id: "cpu", op: "average", field: "heartwood.container.cpu.cores", label: "Avg CPU cores per container", format: "number"},
			{id: "mem", op: "average", field: "heartwood.container.memory.working_set.bytes", label: "Avg working set", format: "bytes"},
			{id: "thr", op: "sum", field: "heartwood.container.cpu.throttled.periods", label: "Throttled periods", format: "number"}}},
	{id: "heartwood-idle-vs-active", title: "Idle and active containers", view: metricsView, vis: "area_stacked",
		desc: "Containers per watchman state (active, idle, paused, ...).",
		cols: []column{timeCol(), {id: "state", op: "terms", field: "heartwood.watchman.state", label: "State", size: 6, order: "n"},
			{id: "n", op: "unique_count", field: "container.id", label: "Containers"}},
		x: "time", split: "state", metrics: []string{"n"}},
	{id: "heartwood-pauses-wakes", title: "Pauses and wakes", view: logsView, vis: "bar_stacked",
		desc: "Watchman decisions per interval by action.", query: qDecisions,
		cols: []column{timeCol(), {id: "act", op: "terms", field: "event.action", label: "Action", size: 8, order: "n"},
			{id: "n", op: "count", label: "Decisions"}},
		x: "time", split: "act", metrics: []string{"n"}},
	{id: "heartwood-cpu-hours-reclaimed", title: "CPU-hours reclaimed", view: metricsView, vis: "metric",
		desc:    "CPU-hours paused containers did not hold (their CPU limit, or the cores they used before the pause, while paused).",
		cols:    []column{{id: "h", op: "sum", field: "heartwood.watchman.reclaimed_cpu_hours", label: "CPU-hours reclaimed", format: "number"}},
		metrics: []string{"h"}},
	{id: "heartwood-paused-containers", title: "Paused containers", view: metricsView, vis: "table",
		desc:  "Containers whose samples in the time range say paused, with the latest one.",
		query: "heartwood.watchman.state : \"paused\"",
		cols: []column{{id: "c", op: "terms", field: "container.name", label: "Container", size: 50, order: "last"},
			{id: "last", op: "max", field: "@timestamp", label: "Last seen paused"},
			{id: "host", op: "last_value", field: "host.name", label: "Node"},
			{id: "svc", op: "last_value", field: "service.name", label: "Service"}}},

	// Heartwood health: the agents' own documents, and the log streams'
	// dead letters and gaps.
	{id: "heartwood-shipping-lag", title: "Shipping lag by node", view: agentView, vis: "line",
		desc: "Seconds between the newest line Elasticsearch acknowledged and now, for the node's most delayed container.",
		cols: []column{timeCol(), {id: "node", op: "terms", field: "host.name", label: "Node", size: 10, order: "lag"},
			{id: "lag", op: "max", field: "heartwood.agent.shipper.lag_seconds", label: "Lag (s)", format: "number"}},
		x: "time", split: "node", metrics: []string{"lag"}},
	{id: "heartwood-shipping-behind", title: "Log data not yet shipped by node", view: agentView, vis: "line",
		desc: "Bytes read and in flight, or still unread in the containers' log files.",
		cols: []column{timeCol(), {id: "node", op: "terms", field: "host.name", label: "Node", size: 10, order: "b"},
			{id: "b", op: "max", field: "heartwood.agent.shipper.behind_bytes", label: "Behind", format: "bytes"}},
		x: "time", split: "node", metrics: []string{"b"}},
	{id: "heartwood-bulk-retries", title: "Bulk retries by node", view: agentView, vis: "bar_stacked",
		desc: "Document sends to Elasticsearch that failed retryably (429, 5xx, connection) and were retried, per second.",
		cols: []column{timeCol(), {id: "node", op: "terms", field: "host.name", label: "Node", size: 10, order: "r"},
			{id: "r", op: "counter_rate", field: "heartwood.agent.shipper.retries", label: "Retries per second"}},
		x: "time", split: "node", metrics: []string{"r"}},
	{id: "heartwood-consul-errors", title: "Consul errors by node", view: agentView, vis: "bar_stacked",
		desc: "Failed reads and writes of the local Consul agent by the registrar, per second.",
		cols: []column{timeCol(), {id: "node", op: "terms", field: "host.name", label: "Node", size: 10, order: "e"},
			{id: "e", op: "counter_rate", field: "heartwood.agent.registrar.consul_errors", label: "Consul errors per second"}},
		x: "time", split: "node", metrics: []string{"e"}},
	{id: "heartwood-registration-drift", title: "Registrations by node", view: agentView, vis: "table",
		desc: "Services the node's containers should have in Consul, those the local Consul agent has and has as desired, and the differences the last full reconcile found.",
		cols: []column{{id: "node", op: "terms", field: "host.name", label: "Node", size: 100, order: "drift"},
			{id: "drift", op: "max", field: "heartwood.agent.registrar.drift", label: "Most drift", format: "number"},
			{id: "want", op: "last_value", field: "heartwood.agent.registrar.desired", label: "Desired", format: "number"},
			{id: "have", op: "last_value", field: "heartwood.agent.registrar.registered", label: "In Consul", format: "number"},
			{id: "sync", op: "last_value", field: "heartwood.agent.registrar.in_sync", label: "In sync", format: "number"}}},
	{id: "heartwood-agents", title: "Agents", view: agentView, vis: "table",
		desc: "Per node: uptime, restarts of the agent's parts, and running totals since the agent started.",
		cols: []column{{id: "node", op: "terms", field: "host.name", label: "Node", size: 100, order: "restarts"},
			{id: "restarts", op: "max", field: "heartwood.agent.restarts.total", label: "Restarts", format: "number"},
			{id: "up", op: "last_value", field: "heartwood.agent.uptime_seconds", label: "Uptime (s)", format: "number"},
			{id: "docker", op: "last_value", field: "heartwood.agent.docker.connected", label: "Docker connected"},
			{id: "dl", op: "max", field: "heartwood.agent.shipper.dead_letters", label: "Dead letters", format: "number"},
			{id: "lost", op: "max", field: "heartwood.agent.shipper.lost_bytes", label: "Log bytes lost", format: "bytes"},
			{id: "kv", op: "max", field: "heartwood.agent.watchman.kv_errors", label: "Watchman KV errors", format: "number"}}},
	{id: "heartwood-restarts", title: "Agent restarts", view: agentView, vis: "bar_stacked",
		desc: "Restarts of the agent's parts after a failure (inventory, registrar, shipper, watchman, health), per second, by node.",
		cols: []column{timeCol(), {id: "node", op: "terms", field: "host.name", label: "Node", size: 10, order: "r"},
			{id: "r", op: "counter_rate", field: "heartwood.agent.restarts.total", label: "Restarts per second"}},
		x: "time", split: "node", metrics: []string{"r"}},
	{id: "heartwood-dead-letters-over-time", title: "Dead letters", view: logsView, vis: "bar_stacked",
		desc: "Lines Elasticsearch rejected, by rejection type.", query: qDeadLetters,
		cols: []column{timeCol(), {id: "t", op: "terms", field: "error.type", label: "Rejection", size: 8, order: "n"},
			{id: "n", op: "count", label: "Dead letters"}},
		x: "time", split: "t", metrics: []string{"n"}},
	{id: "heartwood-lost-bytes", title: "Log bytes lost", view: logsView, vis: "metric",
		desc: "Bytes Docker rotated away before they were shipped (gap events with a known size).", query: qGaps,
		cols:    []column{{id: "b", op: "sum", field: "heartwood.gap.bytes", label: "Bytes lost", format: "bytes"}},
		metrics: []string{"b"}},
	{id: "heartwood-gaps-by-node", title: "Log gaps by node", view: logsView, vis: "bar_stacked",
		desc: "Gap events per interval by node.", query: qGaps,
		cols: []column{timeCol(), {id: "node", op: "terms", field: "host.name", label: "Node", size: 10, order: "n"},
			{id: "n", op: "count", label: "Gaps"}},
		x: "time", split: "node", metrics: []string{"n"}},
	{id: "heartwood-decision-failures", title: "Watchman actions that failed", view: logsView, vis: "table",
		desc:  "Pause or wake attempts that did not succeed, per node and action.",
		query: qDecisions + " and event.outcome : \"failure\"",
		cols: []column{{id: "node", op: "terms", field: "host.name", label: "Node", size: 20, order: "n"},
			{id: "act", op: "terms", field: "event.action", label: "Action", size: 5, order: "n"},
			{id: "n", op: "count", label: "Failures"}}},
}

var dashboardsList = []dashboard{
	{id: "heartwood-logs-dashboard", title: "Heartwood: Logs",
		desc:     "Container log rate, errors and warnings, noisy containers and recent errors.",
		controls: []control{{"host.name", "Node", logsView}, {"orchestrator.namespace", "Stack", logsView}, {"service.name", "Service", logsView}},
		panels: []panel{
			{"heartwood-log-rate", "lens", 0, 0, 48, 12},
			{"heartwood-errors-over-time", "lens", 0, 12, 24, 12},
			{"heartwood-errors-by-service", "lens", 24, 12, 24, 12},
			{"heartwood-noisy-containers", "lens", 0, 24, 20, 16},
			{"heartwood-errors", "search", 20, 24, 28, 16},
		}},
	{id: "heartwood-utilization-dashboard", title: "Heartwood: Utilization and idle pausing",
		desc:     "CPU and memory by service and node, idle and active containers, pauses and wakes, reclaimed CPU.",
		controls: []control{{"host.name", "Node", metricsView}, {"orchestrator.namespace", "Stack", metricsView}, {"service.name", "Service", metricsView}},
		panels: []panel{
			{"heartwood-cpu-by-service", "lens", 0, 0, 24, 12},
			{"heartwood-memory-by-service", "lens", 24, 0, 24, 12},
			{"heartwood-idle-vs-active", "lens", 0, 12, 18, 12},
			{"heartwood-pauses-wakes", "lens", 18, 12, 18, 12},
			{"heartwood-cpu-hours-reclaimed", "lens", 36, 12, 12, 12},
			{"heartwood-utilization-by-node", "lens", 0, 24, 24, 12},
			{"heartwood-paused-containers", "lens", 24, 24, 24, 12},
			{"heartwood-watchman-decisions", "search", 0, 36, 48, 14},
		}},
	{id: "heartwood-health-dashboard", title: "Heartwood: Health",
		desc:     "Shipping lag and retries, registration drift, Consul errors and restarts per node (the agents' health documents), dead letters, lost log data and gaps, watchman failures.",
		controls: []control{{"host.name", "Node", agentView}},
		panels: []panel{
			{"heartwood-shipping-lag", "lens", 0, 0, 24, 12},
			{"heartwood-shipping-behind", "lens", 24, 0, 24, 12},
			{"heartwood-bulk-retries", "lens", 0, 12, 24, 12},
			{"heartwood-consul-errors", "lens", 24, 12, 24, 12},
			{"heartwood-registration-drift", "lens", 0, 24, 24, 12},
			{"heartwood-restarts", "lens", 24, 24, 24, 12},
			{"heartwood-agents", "lens", 0, 36, 48, 12},
			{"heartwood-dead-letters-over-time", "lens", 0, 48, 24, 12},
			{"heartwood-lost-bytes", "lens", 24, 48, 8, 12},
			{"heartwood-gaps-by-node", "lens", 32, 48, 16, 12},
			{"heartwood-decision-failures", "lens", 0, 60, 24, 12},
			{"heartwood-gaps", "search", 24, 60, 24, 12},
			{"heartwood-dead-letters", "search", 0, 72, 48, 14},
		}},
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func kql(q string) map[string]any { return map[string]any{"query": q, "language": "kuery"} }

func (c column) state(cols map[string]column) map[string]any {
	label := c.label
	s := map[string]any{"label": label, "customLabel": true, "operationType": c.op, "isBucketed": false, "scale": "ratio", "dataType": "number"}
	switch c.op {
	case "date_histogram":
		s["sourceField"], s["isBucketed"], s["scale"], s["dataType"] = c.field, true, "interval", "date"
		s["params"] = map[string]any{"interval": "auto", "includeEmptyRows": true, "dropPartials": false}
		delete(s, "customLabel")
	case "terms":
		s["sourceField"], s["isBucketed"], s["scale"], s["dataType"] = c.field, true, "ordinal", "string"
		s["params"] = map[string]any{"size": c.size, "orderBy": map[string]any{"type": "column", "columnId": c.order},
			"orderDirection": "desc", "otherBucket": true, "missingBucket": false, "parentFormat": map[string]any{"id": "terms"}}
	case "count":
		s["sourceField"] = "___records___"
		s["params"] = map[string]any{"emptyAsNull": true}
	case "sum", "average", "max", "min", "unique_count":
		s["sourceField"] = c.field
		s["params"] = map[string]any{"emptyAsNull": true}
		if c.field == "@timestamp" || c.field == "event.ingested" {
			s["dataType"] = "date"
		}
	case "last_value":
		s["sourceField"], s["scale"], s["dataType"] = c.field, "ordinal", "string"
		if c.format != "" { // a figure, not a name
			s["scale"], s["dataType"] = "ratio", "number"
		}
		s["params"] = map[string]any{"sortField": "@timestamp", "showArrayValues": true}
		s["filter"] = kql(c.field + " : *")
	case "counter_rate":
		// The per-second rate of a running total (resets, such as an
		// agent restart, are not counted as negative): Lens computes it
		// from the maximum per interval, a hidden column of its own.
		s["references"] = []string{c.id + "X0"}
		s["timeScale"] = "s"
	default:
		panic("unknown Lens operation " + c.op)
	}
	if c.filter != "" {
		s["filter"] = kql(c.filter)
	}
	if c.format != "" {
		p, _ := s["params"].(map[string]any)
		p["format"] = map[string]any{"id": c.format, "params": map[string]any{"decimals": 2}}
	}
	return s
}

const layer = "layer1"

func (l lens) object() map[string]any {
	cols := map[string]any{}
	byID := map[string]column{}
	var order []string
	for _, c := range l.cols {
		byID[c.id] = c
	}
	for _, c := range l.cols {
		cols[c.id] = c.state(byID)
		if c.op == "counter_rate" {
			part := column{id: c.id + "X0", op: "max", field: c.field, label: "Part of " + c.label}
			cols[part.id] = part.state(byID)
			order = append(order, part.id)
		}
		order = append(order, c.id)
	}
	var visType string
	var vis map[string]any
	switch l.vis {
	case "bar_stacked", "line", "area_stacked":
		visType = "lnsXY"
		ly := map[string]any{"layerId": layer, "layerType": "data", "seriesType": l.vis, "xAccessor": l.x, "accessors": l.metrics}
		if l.split != "" {
			ly["splitAccessor"] = l.split
		}
		vis = map[string]any{"legend": map[string]any{"isVisible": true, "position": "right"}, "valueLabels": "hide",
			"preferredSeriesType": l.vis, "layers": []any{ly}}
	case "metric":
		visType = "lnsMetric"
		vis = map[string]any{"layerId": layer, "layerType": "data", "metricAccessor": l.metrics[0]}
	case "table":
		visType = "lnsDatatable"
		var cs []any
		for _, id := range order {
			cs = append(cs, map[string]any{"columnId": id})
		}
		vis = map[string]any{"layerId": layer, "layerType": "data", "columns": cs}
	default:
		panic("unknown visualization " + l.vis)
	}
	return map[string]any{
		"type": "lens", "id": l.id,
		"attributes": map[string]any{
			"title": l.title, "description": l.desc, "visualizationType": visType,
			"state": map[string]any{
				"datasourceStates": map[string]any{"formBased": map[string]any{"layers": map[string]any{
					layer: map[string]any{"columns": cols, "columnOrder": order, "incompleteColumns": map[string]any{}}}}},
				"visualization": vis,
				"query":         kql(l.query),
				"filters":       []any{},
			},
		},
		"references":           []any{map[string]any{"type": "index-pattern", "id": l.view, "name": "indexpattern-datasource-layer-" + layer}},
		"coreMigrationVersion": coreMigrationVersion,
		"typeMigrationVersion": lensMigration,
	}
}

func (s search) object() map[string]any {
	return map[string]any{
		"type": "search", "id": s.id,
		"attributes": map[string]any{
			"title": s.title, "description": s.desc, "columns": s.columns,
			"sort": [][]string{{"@timestamp", "desc"}},
			"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": mustJSON(map[string]any{
				"query": kql(s.query), "filter": []any{}, "indexRefName": "kibanaSavedObjectMeta.searchSourceJSON.index"})},
		},
		"references":           []any{map[string]any{"name": "kibanaSavedObjectMeta.searchSourceJSON.index", "type": "index-pattern", "id": logsView}},
		"coreMigrationVersion": coreMigrationVersion,
		"typeMigrationVersion": searchMigration,
	}
}

func (d dashboard) object() map[string]any {
	var panels, refs []any
	for i, p := range d.panels {
		idx := fmt.Sprintf("p%d", i+1)
		panels = append(panels, map[string]any{
			"version": panelVersion, "type": p.typ, "panelIndex": idx,
			"gridData":         map[string]any{"x": p.x, "y": p.y, "w": p.w, "h": p.h, "i": idx},
			"embeddableConfig": map[string]any{"enhancements": map[string]any{}},
			"panelRefName":     "panel_" + idx,
		})
		refs = append(refs, map[string]any{"name": idx + ":panel_" + idx, "type": p.typ, "id": p.ref})
	}
	controls := map[string]any{}
	for i, c := range d.controls {
		id := fmt.Sprintf("c%d", i+1)
		controls[id] = map[string]any{"order": i, "width": "medium", "grow": true, "type": "optionsListControl",
			"explicitInput": map[string]any{"id": id, "fieldName": c.field, "title": c.title, "singleSelect": false, "enhancements": map[string]any{}}}
		refs = append(refs, map[string]any{"name": "controlGroup_" + id + ":optionsListDataView", "type": "index-pattern", "id": c.view})
	}
	return map[string]any{
		"type": "dashboard", "id": d.id,
		"attributes": map[string]any{
			"title": d.title, "description": d.desc,
			"panelsJSON":  mustJSON(panels),
			"optionsJSON": mustJSON(map[string]any{"useMargins": true, "syncColors": false, "syncCursor": true, "syncTooltips": false, "hidePanelTitles": false}),
			"timeRestore": true, "timeFrom": "now-24h", "timeTo": "now",
			"refreshInterval": map[string]any{"pause": false, "value": 60000},
			"controlGroupInput": map[string]any{
				"controlStyle": "oneLine", "chainingSystem": "HIERARCHICAL",
				"panelsJSON":               mustJSON(controls),
				"ignoreParentSettingsJSON": mustJSON(map[string]any{"ignoreFilters": false, "ignoreQuery": false, "ignoreTimerange": false, "ignoreValidations": false}),
			},
			"kibanaSavedObjectMeta": map[string]any{"searchSourceJSON": mustJSON(map[string]any{"query": kql(""), "filter": []any{}})},
		},
		"references":           refs,
		"coreMigrationVersion": coreMigrationVersion,
		"typeMigrationVersion": dashboardMigration,
	}
}

// generate renders every object as NDJSON: data views first, then searches
// and visualizations, then the dashboards that reference them.
func generate() []byte {
	var objs []map[string]any
	for _, v := range dataViews {
		objs = append(objs, map[string]any{"type": "index-pattern", "id": v.id,
			"attributes": map[string]any{"title": v.title, "name": v.name, "timeFieldName": "@timestamp"},
			"references": []any{}, "coreMigrationVersion": coreMigrationVersion, "typeMigrationVersion": dataViewMigration})
	}
	for _, s := range searches {
		objs = append(objs, s.object())
	}
	for _, l := range visualizations {
		objs = append(objs, l.object())
	}
	for _, d := range dashboardsList {
		objs = append(objs, d.object())
	}
	var b bytes.Buffer
	for _, o := range objs {
		b.WriteString(mustJSON(o))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// golden compares a generated file with the committed one (rewriting it
// with -update) and with the embedded copy, and returns the file.
func golden(t *testing.T, path string, want, embedded []byte) []byte {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date: run go test ./dashboards -run %s -update", path, t.Name())
	}
	if !*update && !bytes.Equal(got, embedded) {
		t.Fatalf("the embedded copy of %s differs from the file", path)
	}
	return got
}

// TestKibanaObjectsAreGenerated keeps kibana/heartwood.ndjson equal to the
// descriptions above (run with -update to rewrite it).
func TestKibanaObjectsAreGenerated(t *testing.T) {
	golden(t, filepath.Join("kibana", "heartwood.ndjson"), generate(), KibanaObjects())
}
