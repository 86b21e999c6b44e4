//go:build integration

package main

import (
	"strings"
	"testing"

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
