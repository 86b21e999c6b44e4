//go:build integration

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"

	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationHealthDocuments runs the agent with every subsystem
// against a private Docker engine and a private Consul, and the shared
// Elasticsearch: health documents appear in metrics-heartwood.agent-<ns>,
// mapped as the template says (a time-series data stream by node where the
// cluster has them), with registration figures that match the node, and
// Consul errors that rise while Consul is down.
func TestIntegrationHealthDocuments(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	cli := d.Client()
	consul := testenv.StartPrivateConsul(t)
	esURL := testenv.RequireES(t)
	img := testenv.Busybox(t, cli)
	run := testenv.RunID()
	ns := "health" + run
	node := "hwhealth-" + run

	startAgent(t, d.Host, func(c *agent.Config) {
		c.NodeName = node
		c.ConsulAddr = consul.Addr
		c.ESURL = []string{esURL}
		c.HealthInterval = time.Second
		c.Registrar.Enabled = true
		c.Registrar.IP = "127.0.0.1"
		c.Registrar.ReconcileInterval = time.Second
		c.Registrar.RetryInterval = 200 * time.Millisecond
		c.Registrar.RetryMaxInterval = time.Second
		c.Shipper.Enabled = true
		c.Shipper.ContainersRoot = d.ContainersRoot()
		c.Shipper.Namespace = ns
		c.Shipper.Output.DeadLetter.Namespace = ns
		// Templates of this test's own: other tests share the cluster.
		c.Shipper.Template.Name = "hwtest-health-" + run
		c.Shipper.Template.Patterns = []string{"logs-*-" + ns}
		c.Shipper.Template.Namespace = ns
		c.Shipper.Template.Priority = testenv.TemplatePriority(run)
		c.Watchman.Enabled = true
		c.Watchman.Interval = 500 * time.Millisecond
		c.Watchman.KVPrefix = "heartwood-test/" + run + "/"
	})
	testenv.Run(t, cli, run, testenv.Spec{Name: "health-" + run, Config: &container.Config{
		Image: img, Cmd: []string{"sh", "-c", "echo up; exec httpd -f -p 80 -h /"},
		ExposedPorts: nat.PortSet{"80/tcp": {}},
		Labels:       map[string]string{"SERVICE_NAME": "hw-health-" + run},
	}, HostConfig: &container.HostConfig{PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}}}})

	index := "metrics-" + esschema.AgentDataset + "-" + ns
	var steady healthFigures
	poll.Until(t, 90*time.Second, "a health document with the service registered", func() (bool, string) {
		docs, err := healthDocs(esURL, index)
		if err != nil || len(docs) == 0 {
			return false, fmt.Sprint(len(docs), err)
		}
		steady = docs[len(docs)-1].Heartwood.Agent
		r := steady.Registrar
		return r != nil && r.Desired == 1 && r.Registered == 1 && r.InSync == 1, fmt.Sprintf("%+v", r)
	})
	if steady.Shipper == nil || steady.Watchman == nil || !steady.Docker.Connected || steady.Docker.Containers < 1 {
		t.Errorf("steady document: %+v", steady)
	}
	for _, u := range esschema.AgentUnits {
		if _, ok := steady.Restarts[u]; !ok {
			t.Errorf("restarts.%s missing: %v", u, steady.Restarts)
		}
	}

	// Every field is mapped as the template says, and every document fits
	// the real mapping.
	f, _, err := esschema.Detect(context.Background(), esschema.HTTP{URL: esURL})
	if err != nil {
		t.Fatal(err)
	}
	real := testenv.ESMapping(t, esURL, index)
	want := testenv.JSON(t, esschema.Mappings(esschema.Agent, f))
	for _, d := range esschema.DiffMappings(want, real) {
		t.Errorf("%s: %s", index, d)
	}
	sources := testenv.ESSources(t, esURL, index)
	if len(sources) == 0 {
		t.Fatalf("no documents in %s", index)
	}
	for _, doc := range sources {
		for _, bad := range esschema.CheckDocument(real, doc) {
			t.Errorf("%s: %s", index, bad)
		}
	}
	if f.TimeSeries {
		body := testenv.ESDo(t, esURL, "GET", "/"+index+"/_settings/index.mode?flat_settings=true", "")
		if !bytes.Contains(body, []byte(`"index.mode":"time_series"`)) {
			t.Errorf("%s is not a time-series data stream although the cluster has them: %s", index, body)
		}
	}

	// Consul down: the registrar's reconciles fail and the next documents
	// say so.
	consul.Stop()
	poll.Until(t, 90*time.Second, "Consul errors rise in the health documents", func() (bool, string) {
		docs, err := healthDocs(esURL, index)
		if err != nil || len(docs) == 0 {
			return false, fmt.Sprint(err)
		}
		last := docs[len(docs)-1].Heartwood.Agent
		return last.Registrar != nil && last.Registrar.ConsulErrors > steady.Registrar.ConsulErrors &&
				last.UptimeSeconds > steady.UptimeSeconds,
			fmt.Sprintf("consul errors %d (steady %d)", last.Registrar.ConsulErrors, steady.Registrar.ConsulErrors)
	})
	consul.Start()
}

type healthFigures struct {
	UptimeSeconds float64        `json:"uptime_seconds"`
	Restarts      map[string]int `json:"restarts"`
	Docker        struct {
		Connected  bool `json:"connected"`
		Containers int  `json:"containers"`
	} `json:"docker"`
	Shipper *struct {
		LagSeconds float64 `json:"lag_seconds"`
	} `json:"shipper"`
	Registrar *struct {
		Desired      int `json:"desired"`
		Registered   int `json:"registered"`
		InSync       int `json:"in_sync"`
		ConsulErrors int `json:"consul_errors"`
	} `json:"registrar"`
	Watchman *struct {
		KVErrors int `json:"kv_errors"`
	} `json:"watchman"`
}

type healthDoc struct {
	Heartwood struct {
		Agent healthFigures `json:"agent"`
	} `json:"heartwood"`
}

// healthDocs returns the index's health documents, oldest first.
func healthDocs(esURL, index string) ([]healthDoc, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(esURL+"/"+index+"/_search?ignore_unavailable=true", "application/json",
		bytes.NewReader([]byte(`{"size":1000,"sort":[{"@timestamp":"asc"}],"query":{"match_all":{}}}`)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("search %s: %s", index, resp.Status)
	}
	var res struct {
		Hits struct {
			Hits []struct {
				Source healthDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, err
	}
	out := make([]healthDoc, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		out = append(out, h.Source)
	}
	return out, nil
}
