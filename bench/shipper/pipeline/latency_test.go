//go:build bench

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/bench/shipper/benchkit"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper"
)

// TestIntegrationLatencyP99 measures line-written-to-searchable latency at
// about 1,000 lines/s: a busybox container logs 100 lines every 100 ms
// through the real shipper into the shared Elasticsearch, and the test polls
// a search every 100 ms (no explicit refresh), taking for each document the
// first poll that returned it minus its Docker timestamp. The resolution is
// the poll period.
//
//	go test -tags integration -run TestIntegrationLatencyP99 -v ./bench/shipper/pipeline/
func TestIntegrationLatencyP99(t *testing.T) {
	cli := testenv.Docker(t)
	esURL := strings.TrimRight(testenv.RequireES(t), "/")
	runID := testenv.RunID()
	ns := "lat" + runID
	image := testenv.Busybox(t, cli)
	const seconds = 20
	script := `n=0; while true; do i=0; while [ $i -lt 100 ]; do echo "lat $n"; i=$((i+1)); n=$((n+1)); done; usleep 100000; done`

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inv := inventory.New(cli, inventory.Options{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { _ = inv.Run(ctx) })
	<-inv.Synced()
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{esURL}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := shipper.DefaultConfig()
	cfg.Selector = []string{testenv.LabelTest + "=" + runID}
	benchkit.Isolate(&cfg, ns, "heartwood-logs-"+runID, 160)
	s, err := shipper.New(cfg, shipper.Deps{Source: inv, ES: es, DataDir: t.TempDir(), NodeName: "lat", AgentVersion: "bench",
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { _ = s.Run(ctx) })
	for s.Ready() != nil {
		time.Sleep(50 * time.Millisecond)
	}
	testenv.Run(t, cli, runID, testenv.Spec{Name: "lat-" + runID,
		Config: &container.Config{Image: image, Cmd: []string{"sh", "-c", script}}})

	index := "logs-docker.container-" + ns
	seen := map[int64]bool{}
	var lat []time.Duration
	end := time.Now().Add(seconds * time.Second)
	for time.Now().Before(end) {
		time.Sleep(100 * time.Millisecond)
		now := time.Now()
		q, _ := json.Marshal(map[string]any{"size": 10000, "_source": []string{"@timestamp", "event.sequence"},
			"query": map[string]any{"range": map[string]any{"@timestamp": map[string]any{"gte": now.Add(-30 * time.Second).UTC().Format(time.RFC3339Nano)}}}})
		resp, err := http.Post(esURL+"/"+index+"/_search?ignore_unavailable=true", "application/json", bytes.NewReader(q))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Hits struct {
				Hits []struct {
					Source struct {
						Timestamp time.Time `json:"@timestamp"`
						Event     struct{ Sequence int64 }
					} `json:"_source"`
				} `json:"hits"`
			} `json:"hits"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&r)
		_ = resp.Body.Close()
		for _, h := range r.Hits.Hits {
			if !seen[h.Source.Event.Sequence] {
				seen[h.Source.Event.Sequence] = true
				lat = append(lat, now.Sub(h.Source.Timestamp))
			}
		}
	}
	if len(lat) < seconds*500 {
		t.Fatalf("only %d lines became searchable in %d s", len(lat), seconds)
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	msg := fmt.Sprintf("lines=%d rate=%.0f/s p50=%v p90=%v p99=%v max=%v (poll period 100ms)", len(lat),
		float64(len(lat))/seconds, p(0.5).Round(time.Millisecond), p(0.9).Round(time.Millisecond),
		p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
	t.Log(msg)
	if p(0.99) > 3*time.Second {
		t.Errorf("p99 written-to-searchable latency %v exceeds 3 s: %s", p(0.99), msg)
	}
}
