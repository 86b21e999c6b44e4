package shipper

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	"github.com/heartwood-ops/heartwood/shipper/ecs"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// SendMetrics ships metric documents to metrics-<dataset>-<namespace> (the
// configured namespace) in one write and waits until Elasticsearch
// acknowledged them or ctx ends. It fills data_stream.*, event.dataset and
// agent.*. The documents get no _id: in a time-series data stream
// Elasticsearch derives it from the dimensions and @timestamp (a replay is
// a duplicate), elsewhere a replay after a lost answer duplicates a sample.
func (s *Shipper) SendMetrics(ctx context.Context, dataset string, docs []map[string]any) error {
	if err := validDataStreamPart(dataset); err != nil {
		return fmt.Errorf("send metrics: dataset: %w", err)
	}
	if len(docs) == 0 {
		return nil
	}
	select {
	case <-s.tplReady:
	case <-ctx.Done():
		return fmt.Errorf("send metrics: %w", ctx.Err())
	}
	index := "metrics-" + dataset + "-" + s.cfg.Namespace
	out := make([]esout.Doc, 0, len(docs))
	for _, doc := range docs {
		d := maps.Clone(doc)
		d["data_stream"] = map[string]any{"type": "metrics", "dataset": dataset, "namespace": s.cfg.Namespace}
		ev, _ := d["event"].(map[string]any)
		ev = maps.Clone(ev)
		if ev == nil {
			ev = map[string]any{}
		}
		ev["dataset"] = dataset
		ev["kind"] = "metric"
		d["event"] = ev
		d["agent"] = map[string]any{"type": ecs.AgentType, "version": s.deps.AgentVersion, "name": s.deps.NodeName}
		body, err := json.Marshal(d)
		if err != nil {
			return fmt.Errorf("send metrics: encode: %w", err)
		}
		out = append(out, esout.Doc{Index: index, Body: body, Raw: body})
	}
	// Acknowledgements may come over several calls.
	var mu sync.Mutex
	remaining, rejected := len(out), 0
	done := make(chan struct{})
	ack := func(rs []esout.Result) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			if r.Outcome == esout.DeadLettered {
				rejected++
			}
		}
		remaining -= len(rs)
		if remaining == 0 {
			close(done)
		}
	}
	if err := s.out.Write(ctx, out, ack); err != nil {
		return fmt.Errorf("send metrics: %w", err)
	}
	select {
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		if rejected > 0 {
			return fmt.Errorf("send metrics: %d of %d rejected by elasticsearch (dead-lettered)", rejected, len(out))
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("send metrics: %w", ctx.Err())
	}
}
