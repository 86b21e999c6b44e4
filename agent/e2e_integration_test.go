//go:build integration

package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/agent/api"
	"github.com/heartwood-ops/heartwood/dashboards"
	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationAgentEndToEnd runs the whole agent against the real Docker,
// Consul and Elasticsearch: a container is registered in Consul, its logs
// reach Elasticsearch, the watchman pauses it when idle after the registrar
// put its service into maintenance, and a wake through the API brings both
// back.
func TestIntegrationAgentEndToEnd(t *testing.T) {
	// A private engine: the agent under test sees only this test's
	// containers, never those of tests running beside it.
	d := testenv.StartPrivateDockerd(t)
	cli := d.Client()
	consulAddr := testenv.RequireConsul(t)
	esURL := testenv.RequireES(t)
	img := testenv.Busybox(t, cli)
	run := testenv.RunID()
	service := "hw-e2e-" + run
	namespace := "e2e" + run

	base := startAgent(t, d.Host, func(c *agent.Config) {
		c.Registrar.Enabled = true
		c.Registrar.IP = "127.0.0.1"
		c.Registrar.DeregisterOnShutdown = true
		c.Shipper.Enabled = true
		c.Shipper.ContainersRoot = d.ContainersRoot()
		c.Shipper.Namespace = namespace
		c.Watchman.Enabled = true
		c.Watchman.Interval = 500 * time.Millisecond
		c.Watchman.KVPrefix = "heartwood-test/" + run + "/"
	})

	id := testenv.Run(t, cli, run, testenv.Spec{
		Name: "e2e-" + run,
		Config: &container.Config{
			Image:        img,
			Cmd:          []string{"sh", "-c", "echo hello-" + run + "; echo second-line-" + run + "; exec httpd -f -p 80 -h /"},
			ExposedPorts: nat.PortSet{"80/tcp": {}},
			Labels: map[string]string{
				"SERVICE_NAME":               service,
				"heartwood.watchman.enable":  "true",
				"heartwood.watchman.window":  "3s",
				"heartwood.watchman.min-age": "0s",
				"heartwood.watchman.dry-run": "false",
				"heartwood.watchman.action":  "pause",
				"heartwood.watchman.cpu":     "0.5",
				"heartwood.watchman.net":     "1000000",
				"heartwood.watchman.disk":    "100000000",
			},
		},
		HostConfig: &container.HostConfig{PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1", HostPort: ""}}}},
	})

	consul, err := consulapi.NewClient(&consulapi.Config{Address: consulAddr})
	if err != nil {
		t.Fatal(err)
	}
	var serviceID string
	poll.Until(t, 15*time.Second, "service registered in Consul", func() (bool, string) {
		svcs, err := consul.Agent().ServicesWithFilter(fmt.Sprintf("Service == %q", service))
		if err != nil {
			return false, err.Error()
		}
		for sid := range svcs {
			serviceID = sid
		}
		return len(svcs) == 1, fmt.Sprint(svcs)
	})

	poll.Until(t, 30*time.Second, "both log lines searchable in Elasticsearch", func() (bool, string) {
		n, body := esCount(esURL, "logs-*-"+namespace, "message:hello-"+run+" OR message:second-line-"+run)
		return n == 2, body
	})

	maintenanceID := "_service_maintenance:" + serviceID
	poll.Until(t, 30*time.Second, "idle container paused with its service in maintenance", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			return false, err.Error()
		}
		checks, err := consul.Agent().Checks()
		if err != nil {
			return false, err.Error()
		}
		_, inMaint := checks[maintenanceID]
		return in.State.Paused && inMaint, fmt.Sprintf("paused=%v maintenance=%v", in.State.Paused, inMaint)
	})

	req, _ := http.NewRequest(http.MethodPost, base+"/v1/containers/"+id+"/wake?reason=e2e", nil)
	req.Header.Set(api.RequestHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("wake: %s", resp.Status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in, err := cli.ContainerInspect(ctx, id)
	if err != nil || in.State.Paused {
		t.Fatalf("after wake: paused=%v err=%v", in.State.Paused, err)
	}
	poll.Until(t, 10*time.Second, "maintenance ended after wake", func() (bool, string) {
		checks, err := consul.Agent().Checks()
		if err != nil {
			return false, err.Error()
		}
		_, inMaint := checks[maintenanceID]
		return !inMaint, "still in maintenance"
	})

	poll.Until(t, 30*time.Second, "watchman decisions shipped to Elasticsearch", func() (bool, string) {
		n, body := esCount(esURL, "logs-*-"+namespace, "container.id:"+id+" AND NOT message:*-"+run)
		return n >= 2, body // at least the pause and the wake
	})

	checkDashboardFields(t, esURL, "logs-*-"+namespace)
	checkAlertMetrics(t, base)

	code, body := get(base + "/v1/containers/" + id)
	if code != 200 {
		t.Fatalf("GET container: %d", code)
	}
	for _, sub := range []string{`"registrar"`, `"shipper"`, `"watchman"`} {
		if !strings.Contains(body, sub) {
			t.Errorf("/v1/containers/%s lacks the %s view:\n%s", id, sub, body)
		}
	}
}

// esCount counts documents matching a query-string query.
func esCount(esURL, index, q string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(esURL + "/" + index + "/_count?q=" + strings.ReplaceAll(q, " ", "%20"))
	if err != nil {
		return -1, err.Error()
	}
	defer resp.Body.Close()
	var out struct {
		Count int `json:"count"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return -1, err.Error()
	}
	return out.Count, fmt.Sprintf("%s count=%d", resp.Status, out.Count)
}

// checkDashboardFields fails if a field that the Kibana saved searches show or
// query is not in the mappings of the documents this agent wrote. The
// dead-letter search is left out: nothing was rejected here (the shipper's
// tests cover that stream).
func checkDashboardFields(t *testing.T, esURL, index string) {
	t.Helper()
	objs, err := dashboards.ParseObjects(dashboards.KibanaObjects())
	if err != nil {
		t.Fatal(err)
	}
	var kept []dashboards.SavedObject
	for _, o := range objs {
		if o.ID != "heartwood-dead-letters" {
			kept = append(kept, o)
		}
	}
	fields := dashboards.Fields(kept)
	resp, err := http.Get(esURL + "/" + index + "/_field_caps?fields=" + strings.Join(fields, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var caps struct {
		Fields map[string]json.RawMessage `json:"fields"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&caps); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if _, ok := caps.Fields[f]; !ok {
			t.Errorf("Kibana saved searches use %s, which the shipped documents' mappings lack", f)
		}
	}
}

// checkAlertMetrics fails if an alert rule uses a metric the running agent
// does not export: a rule over a misspelt metric never fires.
func checkAlertMetrics(t *testing.T, base string) {
	t.Helper()
	code, body := get(base + "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	// Exported per container from a container's first lost byte on; the
	// shipper's gap tests check the series itself.
	perContainerOnly := map[string]bool{"heartwood_shipper_lost_bytes_total": true}
	names, err := dashboards.AlertMetrics() // the rules' expressions, not their annotations
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if !strings.Contains(body, "# TYPE "+name+" ") && !perContainerOnly[name] {
			t.Errorf("alert rules use %s, which the agent's /metrics does not export", name)
		}
	}
}
