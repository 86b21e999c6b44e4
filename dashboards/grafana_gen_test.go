package dashboards

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// The Grafana dashboard is generated from the descriptions below, like the
// Kibana objects: go test ./dashboards -run TestGrafanaDashboardIsGenerated -update

// gpanel is one Grafana time-series or stat panel.
type gpanel struct {
	title, desc, unit, kind string // kind: timeseries (default), stat
	exprs                   []gtarget
	w, h                    int
}

type gtarget struct{ expr, legend string }

// grow is a row of panels.
type grow struct {
	title  string
	panels []gpanel
}

const sel = `instance=~"$instance"`
const csel = `instance=~"$instance", container_label_com_docker_swarm_service_name=~"$service"`

var grafanaRows = []grow{
	{"Agents", []gpanel{
		{title: "Agents up", unit: "none", kind: "stat", w: 4, h: 6,
			exprs: []gtarget{{`sum(up{job="heartwood", ` + sel + `})`, "up"}, {`count(up{job="heartwood", ` + sel + `})`, "scraped"}}},
		{title: "Subsystems down", unit: "none", kind: "stat", w: 4, h: 6,
			exprs: []gtarget{{`count(heartwood_subsystem_up{` + sel + `} == 0) or vector(0)`, "down"}}},
		{title: "Docker connected", unit: "none", w: 8, h: 6, desc: "1 while the agent's Docker connection is up.",
			exprs: []gtarget{{`heartwood_inventory_docker_connected{` + sel + `}`, "{{instance}}"}}},
		{title: "Subsystem restarts", unit: "none", w: 8, h: 6,
			exprs: []gtarget{{`sum by (instance, subsystem) (increase(heartwood_subsystem_restarts_total{` + sel + `}[$__rate_interval]))`, "{{instance}} {{subsystem}}"}}},
	}},
	{"Log shipping", []gpanel{
		{title: "Shipping lag", unit: "s", w: 8, h: 8, desc: "Age of the oldest unshipped log line, worst container per node.",
			exprs: []gtarget{{`max by (instance) (heartwood_shipper_lag_seconds{` + sel + `})`, "{{instance}}"}}},
		{title: "Documents to Elasticsearch", unit: "ops", w: 8, h: 8,
			exprs: []gtarget{
				{`sum by (instance) (rate(heartwood_shipper_es_docs_delivered_total{` + sel + `}[$__rate_interval]))`, "{{instance}} delivered"},
				{`sum by (instance) (rate(heartwood_shipper_es_docs_retried_total{` + sel + `}[$__rate_interval]))`, "{{instance}} retried"},
				{`sum by (instance) (rate(heartwood_shipper_es_docs_dead_lettered_total{` + sel + `}[$__rate_interval]))`, "{{instance}} dead-lettered"},
			}},
		{title: "Log bytes lost and gaps", unit: "bytes", w: 8, h: 8, desc: "Bytes Docker rotated away before they were shipped.",
			exprs: []gtarget{
				{`sum by (instance) (increase(heartwood_shipper_lost_bytes_total{` + sel + `}[$__rate_interval]))`, "{{instance}} bytes lost"},
				{`sum by (instance) (increase(heartwood_shipper_gaps_total{` + sel + `}[$__rate_interval]))`, "{{instance}} gaps"},
			}},
	}},
	{"Registrations", []gpanel{
		{title: "Consul errors", unit: "ops", w: 12, h: 8,
			exprs: []gtarget{{`sum by (instance, kind) (rate(heartwood_registrar_errors_total{` + sel + `}[$__rate_interval]))`, "{{instance}} {{kind}}"}}},
		{title: "Registration drift", unit: "none", w: 12, h: 8, desc: "Corrections of Consul to match the containers.",
			exprs: []gtarget{{`sum by (instance) (increase(heartwood_registrar_drift_total{` + sel + `}[$__rate_interval]))`, "{{instance}}"}}},
	}},
	{"Idle pausing", []gpanel{
		{title: "Containers by watchman state", unit: "none", w: 8, h: 8,
			exprs: []gtarget{{`sum by (state) (heartwood_watchman_container_state{` + sel + `})`, "{{state}}"}}},
		{title: "Pauses and wakes", unit: "none", w: 8, h: 8,
			exprs: []gtarget{
				{`sum by (reason) (increase(heartwood_watchman_pauses_total{` + sel + `}[$__rate_interval]))`, "pause {{reason}}"},
				{`sum by (trigger) (increase(heartwood_watchman_wakes_total{` + sel + `}[$__rate_interval]))`, "wake {{trigger}}"},
			}},
		{title: "Wake duration (p95)", unit: "s", w: 8, h: 8,
			exprs: []gtarget{{`histogram_quantile(0.95, sum by (le) (rate(heartwood_watchman_wake_duration_seconds_bucket{` + sel + `}[$__rate_interval])))`, "p95"}}},
	}},
	{"Containers", []gpanel{
		{title: "CPU cores by container", unit: "none", w: 12, h: 8,
			exprs: []gtarget{{`sum by (instance, name) (rate(container_cpu_usage_seconds_total{` + csel + `}[$__rate_interval]))`, "{{instance}} {{name}}"}}},
		{title: "CPU throttling", unit: "percentunit", w: 12, h: 8, desc: "Share of CFS periods in which the container was throttled.",
			exprs: []gtarget{{`sum by (instance, name) (rate(container_cpu_cfs_throttled_periods_total{` + csel + `}[$__rate_interval])) / sum by (instance, name) (rate(container_cpu_cfs_periods_total{` + csel + `}[$__rate_interval]))`, "{{instance}} {{name}}"}}},
		{title: "Memory working set", unit: "bytes", w: 12, h: 8,
			exprs: []gtarget{{`sum by (instance, name) (container_memory_working_set_bytes{` + csel + `})`, "{{instance}} {{name}}"}}},
		{title: "Memory used of limit", unit: "percentunit", w: 12, h: 8,
			exprs: []gtarget{{`container_memory_working_set_bytes{` + csel + `} / on (instance, id) group_left () (container_spec_memory_limit_bytes{` + csel + `} > 0)`, "{{instance}} {{name}}"}}},
		{title: "Network", unit: "Bps", w: 12, h: 8,
			exprs: []gtarget{
				{`sum by (instance, name) (rate(container_network_receive_bytes_total{` + csel + `}[$__rate_interval]))`, "{{instance}} {{name}} in"},
				{`sum by (instance, name) (rate(container_network_transmit_bytes_total{` + csel + `}[$__rate_interval]))`, "{{instance}} {{name}} out"},
			}},
		{title: "Block I/O", unit: "Bps", w: 12, h: 8,
			exprs: []gtarget{
				{`sum by (instance, name) (rate(container_fs_reads_bytes_total{` + csel + `}[$__rate_interval]))`, "{{instance}} {{name}} read"},
				{`sum by (instance, name) (rate(container_fs_writes_bytes_total{` + csel + `}[$__rate_interval]))`, "{{instance}} {{name}} write"},
			}},
		{title: "GPU utilization", unit: "percent", w: 12, h: 8, desc: "Nodes with GPUs only.",
			exprs: []gtarget{{`container_accelerator_duty_cycle{` + csel + `}`, "{{instance}} {{name}}"}}},
		{title: "GPU memory", unit: "bytes", w: 12, h: 8, desc: "Nodes with GPUs only.",
			exprs: []gtarget{{`container_accelerator_memory_used_bytes{` + csel + `}`, "{{instance}} {{name}}"}}},
	}},
}

func generateGrafana() []byte {
	ds := map[string]any{"type": "prometheus", "uid": "${datasource}"}
	var panels []any
	id, y := 1, 0
	for _, r := range grafanaRows {
		panels = append(panels, map[string]any{"type": "row", "id": id, "title": r.title, "collapsed": false,
			"gridPos": map[string]any{"x": 0, "y": y, "w": 24, "h": 1}, "panels": []any{}})
		id++
		y++
		x, rowH := 0, 0
		for _, p := range r.panels {
			if x+p.w > 24 {
				x, y, rowH = 0, y+rowH, 0
			}
			var targets []any
			for i, e := range p.exprs {
				targets = append(targets, map[string]any{"datasource": ds, "expr": e.expr, "legendFormat": e.legend, "refId": string(rune('A' + i))})
			}
			kind := p.kind
			if kind == "" {
				kind = "timeseries"
			}
			panels = append(panels, map[string]any{
				"type": kind, "id": id, "title": p.title, "description": p.desc, "datasource": ds,
				"gridPos":     map[string]any{"x": x, "y": y, "w": p.w, "h": p.h},
				"fieldConfig": map[string]any{"defaults": map[string]any{"unit": p.unit}, "overrides": []any{}},
				"options":     map[string]any{"legend": map[string]any{"displayMode": "list", "placement": "bottom", "showLegend": true}, "tooltip": map[string]any{"mode": "multi", "sort": "desc"}},
				"targets":     targets,
			})
			id++
			x += p.w
			rowH = max(rowH, p.h)
		}
		y += rowH
	}
	dash := map[string]any{
		"title": "Heartwood", "uid": "heartwood", "tags": []string{"heartwood", "docker", "swarm"},
		"description":   "Heartwood agents (shipping, registrations, idle pausing) and the cAdvisor-compatible container metrics they export.",
		"schemaVersion": 39, "version": 1, "editable": true, "graphTooltip": 1,
		"time": map[string]any{"from": "now-6h", "to": "now"}, "refresh": "1m",
		"templating": map[string]any{"list": []any{
			map[string]any{"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"},
			map[string]any{"name": "instance", "label": "Node", "type": "query", "datasource": ds,
				"query": `label_values(up{job="heartwood"}, instance)`, "multi": true, "includeAll": true, "allValue": ".*", "refresh": 2},
			map[string]any{"name": "service", "label": "Service", "type": "query", "datasource": ds,
				"query": `label_values(container_last_seen, container_label_com_docker_swarm_service_name)`, "multi": true, "includeAll": true, "allValue": ".*", "refresh": 2},
		}},
		"panels": panels,
	}
	b, err := json.MarshalIndent(dash, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

// TestGrafanaDashboardIsGenerated keeps prometheus/grafana-heartwood.json
// equal to the descriptions above and checks its layout.
func TestGrafanaDashboardIsGenerated(t *testing.T) {
	got := golden(t, filepath.Join("prometheus", "grafana-heartwood.json"), generateGrafana(), GrafanaDashboard())
	metrics, err := GrafanaMetrics(got)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"container_cpu_usage_seconds_total", "heartwood_shipper_lag_seconds", "heartwood_registrar_drift_total", "heartwood_watchman_wake_duration_seconds_bucket"} {
		if !slices.Contains(metrics, m) {
			t.Errorf("GrafanaMetrics() = %v lacks %s", metrics, m)
		}
	}
	// No two panels share grid cells.
	var d struct {
		Panels []struct {
			ID      int            `json:"id"`
			GridPos map[string]int `json:"gridPos"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(got, &d); err != nil {
		t.Fatal(err)
	}
	for i, p := range d.Panels {
		g := p.GridPos
		if g["x"]+g["w"] > 24 {
			t.Errorf("panel %d is wider than the grid", p.ID)
		}
		for _, q := range d.Panels[:i] {
			h := q.GridPos
			if g["x"] < h["x"]+h["w"] && h["x"] < g["x"]+g["w"] && g["y"] < h["y"]+h["h"] && h["y"] < g["y"]+g["h"] {
				t.Errorf("panels %d and %d overlap", q.ID, p.ID)
			}
		}
	}
	if !regexp.MustCompile(`"uid": "heartwood"`).Match(got) {
		t.Error("dashboard uid missing")
	}
}
