package dashboards

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type ruleFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// TestEveryAlertHasATestAndARunbook: each alert has a runbook annotation, a
// section in alerts/RUNBOOK.md and a promtool unit test in which it fires.
func TestEveryAlertHasATestAndARunbook(t *testing.T) {
	var rules ruleFile
	if err := yaml.Unmarshal(AlertRules(), &rules); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("alerts", "heartwood.rules.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	runbook, err := os.ReadFile(filepath.Join("alerts", "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("%s: no promtool test expects it to fire", r.Alert)
			}
			if strings.TrimSpace(r.Annotations["runbook"]) == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: want summary and runbook annotations, have %v", r.Alert, r.Annotations)
			}
			if !strings.Contains(string(runbook), "## "+r.Alert+"\n") {
				t.Errorf("%s: no section in alerts/RUNBOOK.md", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Fatalf("found %d alerts; the rules file did not parse as expected", n)
	}
}

func TestAlertMetricsReadsExpressionsOnly(t *testing.T) {
	ms, err := AlertMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ms, "heartwood_shipper_lag_seconds") || !slices.Contains(ms, "container_spec_memory_limit_bytes") {
		t.Errorf("AlertMetrics() = %v lacks metrics the rules use", ms)
	}
	// Annotations mention the service heartwood_agent: not a metric.
	if slices.Contains(ms, "heartwood_agent") {
		t.Errorf("AlertMetrics() = %v took a name from an annotation", ms)
	}
}
