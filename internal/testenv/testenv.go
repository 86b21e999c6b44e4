// Package testenv gives integration tests the real services Heartwood talks
// to: the Docker engine, a Consul agent and Elasticsearch, as started by
// stack/dev/services.sh (`make services`), plus test images built locally
// FROM scratch and containers that clean up after themselves.
//
// Integration tests live behind the `integration` build tag. A service that
// cannot be reached fails the test: it is never skipped.
//
// The services are found through these variables, with local defaults:
//
//	HEARTWOOD_TEST_DOCKER_HOST  unix:///var/run/docker.sock
//	HEARTWOOD_TEST_CONSUL_ADDR  127.0.0.1:8500
//	HEARTWOOD_TEST_ES_URL       http://127.0.0.1:9200
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// LabelTest is put on every container a test creates, with the test run's
// unique value, so that leftovers can be found and removed.
const LabelTest = "heartwood.test"

// DockerHost returns the Docker endpoint for tests.
func DockerHost() string { return envOr("HEARTWOOD_TEST_DOCKER_HOST", "unix:///var/run/docker.sock") }

// ConsulAddr returns the host:port of the Consul agent's HTTP API for tests.
func ConsulAddr() string { return envOr("HEARTWOOD_TEST_CONSUL_ADDR", "127.0.0.1:8500") }

// ESURL returns the Elasticsearch URL for tests.
func ESURL() string { return envOr("HEARTWOOD_TEST_ES_URL", "http://127.0.0.1:9200") }

// ServicesScript is the path of stack/dev/services.sh, which integration
// tests use to stop and start the real services (restart dockerd, restart
// Consul, stop Elasticsearch).
func ServicesScript(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("HEARTWOOD_SERVICES_SCRIPT"); p != "" {
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: getwd: %v", err)
	}
	for {
		p := dir + "/stack/dev/services.sh"
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := dir[:max(strings.LastIndex(dir, "/"), 0)]
		if parent == "" || parent == dir {
			t.Fatalf("testenv: stack/dev/services.sh not found above the test's directory; set HEARTWOOD_SERVICES_SCRIPT")
		}
		dir = parent
	}
}

// Docker returns a client for the test Docker engine, failing the test if
// the engine does not answer.
func Docker(t testing.TB) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(DockerHost()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("testenv: docker client for %s: %v", DockerHost(), err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx); err != nil {
		t.Fatalf("testenv: docker at %s does not answer (start it with `make services`): %v", DockerHost(), err)
	}
	return cli
}

// RequireConsul fails the test unless the Consul agent answers, and returns
// its address.
func RequireConsul(t testing.TB) string {
	t.Helper()
	addr := ConsulAddr()
	requireHTTP(t, "consul", "http://"+addr+"/v1/status/leader")
	return addr
}

// RequireES fails the test unless Elasticsearch answers, and returns its URL.
func RequireES(t testing.TB) string {
	t.Helper()
	u := ESURL()
	requireHTTP(t, "elasticsearch", strings.TrimRight(u, "/")+"/_cluster/health")
	return u
}

func requireHTTP(t testing.TB, name, url string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("testenv: %s at %s does not answer (start it with `make services`): %v", name, url, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("testenv: %s at %s answered %s", name, url, resp.Status)
	}
}

// RunID returns a random identifier, unique to this call, for labels and
// names.
func RunID() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // cannot happen on Linux
	}
	return hex.EncodeToString(b[:])
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
