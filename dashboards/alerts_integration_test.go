//go:build integration

package dashboards

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestIntegrationPromtool runs Prometheus' own checks: the alert rules
// parse (`promtool check rules`), every alert fires in the unit tests of
// heartwood.rules.test.yml (`promtool test rules`), and the example scrape
// configuration is valid (`promtool check config`).
func TestIntegrationPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (stack/dev/services.sh up installs Debian's prometheus package): %v", err)
	}
	dir := t.TempDir()
	rules := filepath.Join(dir, "heartwood.rules.yml")
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("heartwood.rules.yml", AlertRules())
	tests, err := os.ReadFile(filepath.Join("alerts", "heartwood.rules.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	write("heartwood.rules.test.yml", tests)
	// The example points at the usual install path; check it with ours.
	write("prometheus.yml", bytes.ReplaceAll(ScrapeConfig(), []byte("/etc/prometheus/rules/heartwood.rules.yml"), []byte(rules)))
	for _, args := range [][]string{
		{"check", "rules", rules},
		{"test", "rules", "heartwood.rules.test.yml"},
		{"check", "config", "prometheus.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
