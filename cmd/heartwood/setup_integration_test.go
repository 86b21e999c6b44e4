//go:build integration

package main

import (
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/dashboards/kibanatest"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationSetupElasticsearch runs setup against the real
// Elasticsearch twice: the second run changes nothing and says so.
func TestIntegrationSetupElasticsearch(t *testing.T) {
	esURL := testenv.RequireES(t)
	args := []string{"setup", "--es-url", esURL, "--wait", "1m"}
	code, out, errOut := runCmd(t, nil, args...)
	if code != 0 || !strings.Contains(out, "[1/2] Elasticsearch "+esURL+": ready") || !strings.Contains(out, "[2/2] Elasticsearch templates and retention: ") {
		t.Fatalf("first run: code %d\n%s%s", code, out, errOut)
	}
	t.Logf("first run:\n%s", out)
	code, out, errOut = runCmd(t, nil, args...)
	if code != 0 || !strings.Contains(out, "templates and retention: up to date") || !strings.Contains(out, "nothing to change") {
		t.Fatalf("second run: code %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, nil, append(args, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "nothing to change") {
		t.Fatalf("dry run: code %d\n%s%s", code, out, errOut)
	}
	// A server that is not Elasticsearch, with the flag to fix named.
	code, _, errOut = runCmd(t, nil, "setup", "--es-url", "http://"+testenv.RequireConsul(t), "--wait", "3s")
	if code != 1 || !strings.Contains(errOut, "check --es-url") {
		t.Fatalf("setup against Consul's port: code %d\n%s", code, errOut)
	}
}

// TestIntegrationDoctorCommand runs `heartwood doctor` against the real
// Docker, Consul and Elasticsearch and a stand-in Kibana: all pass; with
// Consul's address wrong, the Consul check fails and the exit code is 1.
func TestIntegrationDoctorCommand(t *testing.T) {
	kb := kibanatest.New(t)
	kb.APIKey = "k"
	base := []string{"doctor", "--docker-host", testenv.DockerHost(), "--consul-addr", testenv.RequireConsul(t),
		"--es-url", testenv.RequireES(t), "--kibana-url", kb.URL, "--kibana-api-key", "k"}
	code, out, errOut := runCmd(t, nil, base...)
	if code != 0 || strings.Count(out, "\n") != 7 || !strings.Contains(out, "OK    kibana") || strings.Contains(out, "FAIL") {
		t.Fatalf("doctor: code %d\n%s%s", code, out, errOut)
	}
	t.Logf("doctor:\n%s", out)
	code, out, _ = runCmd(t, nil, append(base, "--consul-addr", "127.0.0.1:1", "--kibana-api-key", "wrong")...)
	if code != 1 || !strings.Contains(out, "FAIL  consul") || !strings.Contains(out, "FAIL  kibana") || !strings.Contains(out, "--kibana-api-key") {
		t.Fatalf("doctor with a wrong Consul address and Kibana key: code %d\n%s", code, out)
	}
}
