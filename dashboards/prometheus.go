package dashboards

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed prometheus/grafana-heartwood.json
var grafanaDashboard []byte

//go:embed prometheus/prometheus.yml
var scrapeConfig []byte

//go:embed alerts/heartwood.rules.test.yml
var alertRuleTests []byte

// GrafanaDashboard returns the Grafana dashboard JSON for the agent's
// metrics and the cAdvisor-compatible container metrics it exports.
func GrafanaDashboard() []byte { return bytes.Clone(grafanaDashboard) }

// ScrapeConfig returns the example Prometheus configuration that discovers
// the agents of a host-network global Swarm service.
func ScrapeConfig() []byte { return bytes.Clone(scrapeConfig) }

// metricName matches the metric names Heartwood exports in PromQL.
var metricName = regexp.MustCompile(`\b((?:heartwood|container)_[a-z0-9_]+)\b`)

// AlertRuleTests returns the promtool unit tests of the alert rules (run
// them with promtool test rules next to heartwood.rules.yml).
func AlertRuleTests() []byte { return bytes.Clone(alertRuleTests) }

// MetricNames returns the Heartwood and container metric names a PromQL
// text uses, sorted and without duplicates.
func MetricNames(promql string) []string {
	set := map[string]bool{}
	for _, m := range metricName.FindAllString(promql, -1) {
		// Label names such as container_label_com_docker_swarm_service_name
		// match the pattern too; they are followed by a matcher.
		set[m] = true
	}
	delete(set, "container_label_com_docker_swarm_service_name")
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// AlertMetrics returns the metric names the alert rules' expressions use.
func AlertMetrics() ([]string, error) {
	var f struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(alertRules, &f); err != nil {
		return nil, fmt.Errorf("alert rules: %w", err)
	}
	var all strings.Builder
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			all.WriteString(r.Expr + "\n")
		}
	}
	return MetricNames(all.String()), nil
}

// GrafanaMetrics returns the metric names the dashboard's queries use.
func GrafanaMetrics(dashboard []byte) ([]string, error) {
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Query any `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, fmt.Errorf("grafana dashboard: %w", err)
	}
	var all bytes.Buffer
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			all.WriteString(t.Expr + "\n")
		}
	}
	for _, v := range d.Templating.List {
		if q, ok := v.Query.(string); ok {
			all.WriteString(q + "\n")
		}
	}
	return MetricNames(all.String()), nil
}
