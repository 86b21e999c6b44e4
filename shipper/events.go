package shipper

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/ecs"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// gapEvent is log data of a container lost before it could be shipped.
type gapEvent struct {
	bytes  int64 // -1 if unknown
	reason string
}

// sendGap writes a gap event to the container's data stream (best effort:
// not tracked by checkpoints).
func (s *Shipper) sendGap(ctx context.Context, id string, set settings, g gapEvent) {
	doc := gapDoc(time.Now().UTC(), id, set, g, s.deps.NodeName, s.deps.AgentVersion)
	body, err := json.Marshal(doc)
	if err != nil {
		return
	}
	sum := sha256.Sum256(append([]byte(id), body...))
	d := esout.Doc{Index: set.index(), ID: base64.RawURLEncoding.EncodeToString(sum[:15]), Body: body}
	if err := s.out.Write(ctx, []esout.Doc{d}, func([]esout.Result) {}); err != nil {
		s.log.Warn("send gap event", "err", err)
	}
}

// gapDoc is the document of a gap event.
func gapDoc(now time.Time, id string, set settings, g gapEvent, node, version string) map[string]any {
	doc := map[string]any{
		"@timestamp":  now.Format(time.RFC3339Nano),
		"message":     fmt.Sprintf("heartwood: container log data lost before it could be shipped: %s", g.reason),
		"event":       map[string]any{"kind": "event", "action": "log-gap", "reason": g.reason, "dataset": set.dataset},
		"tags":        []string{"gap"},
		"container":   map[string]any{"id": id},
		"host":        map[string]any{"name": node},
		"agent":       map[string]any{"type": ecs.AgentType, "version": version},
		"data_stream": map[string]any{"type": "logs", "dataset": set.dataset, "namespace": set.namespace},
	}
	if g.bytes >= 0 {
		doc["heartwood"] = map[string]any{"gap": map[string]any{"bytes": g.bytes}}
	}
	return doc
}

// SendEvent ships one document to logs-<dataset>-<namespace> (the
// configured namespace) and waits until Elasticsearch acknowledged it or ctx
// ends. It fills @timestamp (now, if absent), data_stream.*, event.dataset,
// host.name and agent.*. The _id is a hash of the document, so a retried
// call with the same document (and timestamp) is not indexed twice. If ctx
// ends first the document may still be delivered later.
func (s *Shipper) SendEvent(ctx context.Context, dataset string, doc map[string]any) error {
	if err := validDataStreamPart(dataset); err != nil {
		return fmt.Errorf("shipper: send event: dataset: %w", err)
	}
	select {
	case <-s.tplReady:
	case <-ctx.Done():
		return fmt.Errorf("shipper: send event: %w", ctx.Err())
	}
	d := maps.Clone(doc)
	if _, ok := d["@timestamp"]; !ok {
		d["@timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	d["data_stream"] = map[string]any{"type": "logs", "dataset": dataset, "namespace": s.cfg.Namespace}
	ev, _ := d["event"].(map[string]any)
	ev = maps.Clone(ev)
	if ev == nil {
		ev = map[string]any{}
	}
	ev["dataset"] = dataset
	d["event"] = ev
	if _, ok := d["host"]; !ok {
		d["host"] = map[string]any{"name": s.deps.NodeName}
	}
	d["agent"] = map[string]any{"type": ecs.AgentType, "version": s.deps.AgentVersion, "name": s.deps.NodeName}
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("shipper: send event: encode: %w", err)
	}
	sum := sha256.Sum256(body)
	done := make(chan esout.Outcome, 1)
	doc1 := esout.Doc{Index: "logs-" + dataset + "-" + s.cfg.Namespace,
		ID: base64.RawURLEncoding.EncodeToString(sum[:15]), Body: body, Raw: body}
	if err := s.out.Write(ctx, []esout.Doc{doc1}, func(rs []esout.Result) { done <- rs[0].Outcome }); err != nil {
		return fmt.Errorf("shipper: send event: %w", err)
	}
	select {
	case o := <-done:
		if o == esout.DeadLettered {
			return errors.New("shipper: send event: rejected by elasticsearch (dead-lettered)")
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shipper: send event: %w", ctx.Err())
	}
}
