package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/heartwood-ops/heartwood/agent/supervisor"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/registrar"
	"github.com/heartwood-ops/heartwood/shipper"
	"github.com/heartwood-ops/heartwood/watchman"
)

// The subsystems' figures as the health writer reads them; each
// subsystem's Health method satisfies its interface.
type (
	shipperHealth   interface{ Health() shipper.Health }
	registrarHealth interface{ Health() registrar.Health }
	watchmanHealth  interface{ Health() watchman.Health }
	// metricsSink writes metric documents to metrics-<dataset>-<namespace>
	// (the shipper, through the writer it ships logs with).
	metricsSink interface {
		SendMetrics(ctx context.Context, dataset string, docs []map[string]any) error
	}
)

// healthWriter writes one health document per period to
// metrics-heartwood.agent-<namespace>: the node's shipping lag and losses,
// registration drift, Consul errors, uptime and restarts.
type healthWriter struct {
	interval time.Duration
	sink     metricsSink
	log      *slog.Logger
	// gather returns the figures now; the subsystems' parts are nil when
	// they are off.
	gather func() healthInput
}

// healthInput is everything one health document says.
type healthInput struct {
	at, started time.Time
	node, swarm string // host.name; the Swarm node ID when known
	units       []supervisor.State
	docker      bool
	containers  int
	shipper     *shipper.Health
	registrar   *registrar.Health
	watchman    *watchman.Health
}

// run writes a document at once and then every interval until ctx ends. A
// failed write is logged and the next period tries again: the documents
// are figures of a moment, not worth a backlog.
func (h *healthWriter) run(ctx context.Context) error {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		wctx, cancel := context.WithTimeout(ctx, h.interval)
		err := h.sink.SendMetrics(wctx, esschema.AgentDataset, []map[string]any{healthDoc(h.gather())})
		cancel()
		if err != nil && ctx.Err() == nil {
			h.log.Warn("health document not written", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// healthDoc builds the document; esschema's Agent mappings describe it
// (TestHealthDocFitsTheTemplate).
func healthDoc(in healthInput) map[string]any {
	restarts := map[string]any{}
	total := 0
	for _, u := range in.units {
		restarts[u.Name] = u.Restarts
		total += u.Restarts
	}
	restarts["total"] = total
	ag := map[string]any{
		"started":        in.started.UTC().Format(time.RFC3339Nano),
		"uptime_seconds": in.at.Sub(in.started).Seconds(),
		"restarts":       restarts,
		"docker":         map[string]any{"connected": in.docker, "containers": in.containers},
	}
	if s := in.shipper; s != nil {
		ag["shipper"] = map[string]any{
			"lag_seconds": s.LagSeconds, "behind_bytes": s.BehindBytes,
			"retries": s.Retries, "dead_letters": s.DeadLetters, "dead_letter_failures": s.DeadLetterFailures,
			"gaps": s.Gaps, "lost_bytes": s.LostBytes,
		}
	}
	if r := in.registrar; r != nil {
		ag["registrar"] = map[string]any{
			"desired": r.Desired, "registered": r.Registered, "in_sync": r.InSync,
			"drift": r.Drift, "consul_errors": r.ConsulErrors,
		}
	}
	if w := in.watchman; w != nil {
		ag["watchman"] = map[string]any{"kv_errors": w.KVErrors}
	}
	doc := map[string]any{
		"@timestamp": in.at.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"host":       map[string]any{"name": in.node},
		"heartwood":  map[string]any{"agent": ag},
	}
	if in.swarm != "" {
		doc["swarm"] = map[string]any{"node": map[string]any{"id": in.swarm}}
	}
	return doc
}

// newHealthWriter returns the health writer, or nil when the documents are
// off (health-interval 0) or nothing can write them (the shipper is off).
func (a *Agent) newHealthWriter(sink metricsSink, sh shipperHealth, rh registrarHealth, wh watchmanHealth) *healthWriter {
	if a.cfg.HealthInterval <= 0 {
		return nil
	}
	if sink == nil {
		a.log.Info("health documents are off: they are written through the shipper, which is off", "subsystem", "health")
		return nil
	}
	return &healthWriter{
		interval: a.cfg.HealthInterval,
		sink:     sink,
		log:      a.log.With("subsystem", "health"),
		gather: func() healthInput {
			in := healthInput{at: time.Now(), started: a.started, node: a.cfg.NodeName, units: a.sup.States()}
			in.docker, _ = a.inv.Connected()
			cs := a.inv.List()
			in.containers = len(cs)
			for _, c := range cs {
				if c.Swarm != nil && c.Swarm.NodeID != "" {
					in.swarm = c.Swarm.NodeID
					break
				}
			}
			if sh != nil {
				h := sh.Health()
				in.shipper = &h
			}
			if rh != nil {
				h := rh.Health()
				in.registrar = &h
			}
			if wh != nil {
				h := wh.Health()
				in.watchman = &h
			}
			return in
		},
	}
}
