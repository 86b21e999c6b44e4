//go:build integration

package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestIntegrationDoctor runs every check against the real Docker engine,
// Consul (ACLs off) and Elasticsearch (security off), then against
// unreachable addresses and a missing socket, where each must fail.
func TestIntegrationDoctor(t *testing.T) {
	cli := testenv.Docker(t)
	consul := Endpoint{URL: "http://" + testenv.RequireConsul(t)}
	es := Endpoint{URL: testenv.RequireES(t)}
	streams := []string{"logs-docker.container-default", "metrics-heartwood.container-default"}

	good := []struct {
		check  Check
		detail string
	}{
		{Docker(testenv.DockerHost(), cli), "API 1."},
		{LogDirectory("/var/lib/docker/containers"), "/var/lib/docker/containers"},
		{ProcAndCgroups("/proc", "/sys/fs/cgroup"), "cgroup v"},
		{Consul(consul, "", "node1"), "ACLs disabled"},
		{Elasticsearch(es, streams), "security off"},
		{Clock(time.Now, DateHeader("consul", consul, "/v1/status/leader"), ESNodeTime(es)), "consul"},
	}
	for _, g := range good {
		r := g.check.Run(context.Background())
		if r.Status != OK || !strings.Contains(r.Detail, g.detail) {
			t.Errorf("%s: %s %q (fix %q), want OK with %q", g.check.Name, r.Status, r.Detail, r.Fix, g.detail)
		}
	}
	// The clock check must see both servers.
	if r := good[5].check.Run(context.Background()); !strings.Contains(r.Detail, "elasticsearch") {
		t.Errorf("clock: %q lacks elasticsearch", r.Detail)
	}

	noDocker, err := client.NewClientWithOpts(client.WithHost("unix://"+t.TempDir()+"/docker.sock"), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	down := Endpoint{URL: "http://" + closedAddr(t), Client: nil}
	bad := []Check{
		Docker(noDocker.DaemonHost(), noDocker),
		LogDirectory(t.TempDir() + "/missing"),
		ProcAndCgroups(t.TempDir(), "/sys/fs/cgroup"),
		Consul(down, "", "node1"),
		Elasticsearch(down, streams),
		// Elasticsearch's URL on Consul's port: not Elasticsearch.
		Elasticsearch(consul, streams),
	}
	var out bytes.Buffer
	if n := Run(context.Background(), bad, 10*time.Second, &out); n != len(bad) {
		t.Errorf("%d of %d checks failed, want all:\n%s", n, len(bad), out.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(line, "FAIL") || !strings.Contains(line, "— fix: ") {
			t.Errorf("want a FAIL line with a fix, got %q", line)
		}
	}
	t.Logf("report:\n%s", out.String())
}

// TestIntegrationDoctorConsulACLs runs a private Consul with ACLs on
// (default deny) and checks a token that may do what the agent does, one
// that may not write services, and an unknown one.
func TestIntegrationDoctorConsulACLs(t *testing.T) {
	bin := testenv.ConsulBinary(t)
	var ports [4]int
	for i := range ports {
		ports[i] = testenv.FreePort(t)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	cmd := exec.Command(bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1", "-node", "doctor-node",
		"-log-level", "warn", "-http-port", strconv.Itoa(ports[0]), "-server-port", strconv.Itoa(ports[1]),
		"-serf-lan-port", strconv.Itoa(ports[2]), "-serf-wan-port", strconv.Itoa(ports[3]),
		"-dns-port", "-1", "-grpc-port", "-1", "-hcl", "ports { grpc_tls = -1 }",
		"-hcl", `acl { enabled = true, default_policy = "deny", tokens { initial_management = "root-secret" } }`)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	root := Endpoint{URL: "http://" + addr, Header: func(h http.Header) { h.Set("X-Consul-Token", "root-secret") }}
	call := func(method, path string, body any) reply {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r, err := do(ctx, root, method, path, body)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		if r.Status != http.StatusOK {
			t.Fatalf("%s %s: %d %s", method, path, r.Status, r.Body)
		}
		return r
	}
	poll.Until(t, 60*time.Second, "private Consul with ACLs up", func() (bool, string) {
		r, err := do(context.Background(), root, http.MethodGet, "/v1/acl/token/self", nil)
		if err != nil {
			return false, err.Error()
		}
		return r.Status == http.StatusOK, fmt.Sprintf("%d %s", r.Status, r.Body)
	})
	token := func(rules string) string {
		p := call("PUT", "/v1/acl/policy", map[string]any{"Name": "p" + strconv.Itoa(len(rules)), "Rules": rules})
		var pol struct{ ID string }
		_ = json.Unmarshal(p.Body, &pol)
		tk := call("PUT", "/v1/acl/token", map[string]any{"Policies": []any{map[string]string{"ID": pol.ID}}})
		var tok struct{ SecretID string }
		_ = json.Unmarshal(tk.Body, &tok)
		return tok.SecretID
	}
	full := token(`agent "doctor-node" { policy = "read" } node "doctor-node" { policy = "read" } service_prefix "" { policy = "write" }`)
	readOnly := token(`agent "doctor-node" { policy = "read" } node "doctor-node" { policy = "read" } service_prefix "" { policy = "read" }`)
	e := Endpoint{URL: "http://" + addr}
	for _, tc := range []struct {
		token, node string
		want        Status
		detail      string
	}{
		{full, "doctor-node", OK, "may read the agent"},
		{readOnly, "doctor-node", Fail, "lacks service:write"},
		{full, "other-node", Fail, "agent:read on node other-node"},
		{"00000000-0000-0000-0000-00000000beef", "doctor-node", Fail, "token rejected"},
	} {
		r := Consul(e, tc.token, tc.node).Run(context.Background())
		if r.Status != tc.want || !strings.Contains(r.Detail, tc.detail) {
			t.Errorf("token for %s: %s %q (fix %q), want %s with %q", tc.node, r.Status, r.Detail, r.Fix, tc.want, tc.detail)
		}
	}
}
