package watchman

import (
	"context"
	"time"
)

// eventLocked records a decision: a log line, a counter and a document
// for the EventSink. sig, when non-nil, contributes the signal values and
// thresholds behind the decision.
func (w *Watchman) eventLocked(t *tracked, action, trigger, reason string, sig *tracked) {
	w.eventLockedOutcome(t, action, trigger, reason, sig, "success")
}

func (w *Watchman) eventLockedOutcome(t *tracked, action, trigger, reason string, sig *tracked, outcome string) {
	now := w.now()
	attrs := []any{"action", action, "trigger", trigger, "container", t.c.Name, "id", t.c.ShortID(), "reason", reason, "outcome", outcome}
	wm := map[string]any{
		"trigger": trigger,
		"group":   groupKey(t),
		"state":   t.state,
		"dry_run": w.dryRunLocked(t),
	}
	if sig != nil && sig.hasRates {
		r := sig.rates
		wm["signals"] = map[string]any{
			"cpu_cores": r.CPU, "net_bytes_per_second": r.NetBps, "disk_bytes_per_second": r.DiskBps,
			"throttled_periods": r.ThrottledPeriods, "pressure": r.Pressure, "gpu_percent": r.GPU,
		}
		p := sig.pol
		wm["thresholds"] = map[string]any{
			"cpu_cores": p.CPU, "net_bytes_per_second": p.Net, "disk_bytes_per_second": p.Disk,
			"gpu_percent": p.GPU, "pressure": w.cfg.Pressure, "window_seconds": p.Window.Seconds(),
			"min_age_seconds": p.MinAge.Seconds(),
		}
		wm["idle_seconds"] = sig.verdict.IdleFor.Seconds()
		attrs = append(attrs, "cpu", r.CPU, "net_bps", r.NetBps, "disk_bps", r.DiskBps,
			"idle", sig.verdict.IdleFor.Round(time.Millisecond), "window", p.Window)
	}
	w.log.Info("watchman decision", attrs...)
	w.m.events.WithLabelValues(action).Inc()
	if w.deps.Events == nil {
		return
	}
	doc := map[string]any{
		"@timestamp": now.UTC().Format(time.RFC3339Nano),
		"message":    action + " " + t.c.Name + ": " + reason,
		"event": map[string]any{
			"kind": "event", "category": []string{"process"}, "type": []string{"change"},
			"action": action, "reason": reason, "outcome": outcome, "dataset": EventDataset,
		},
		"container": map[string]any{"id": t.c.ID, "name": t.c.Name, "image": map[string]any{"name": t.c.Image}},
		"heartwood": map[string]any{"watchman": wm},
	}
	if w.deps.NodeName != "" {
		doc["host"] = map[string]any{"name": w.deps.NodeName}
	}
	select {
	case w.events <- doc:
	default:
		w.m.eventsDropped.Inc()
	}
}

// shipEvents hands queued events to the EventSink until ctx ends.
func (w *Watchman) shipEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			// Flush what is queued, briefly.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			for {
				select {
				case doc := <-w.events:
					w.send(fctx, doc)
				default:
					return
				}
			}
		case doc := <-w.events:
			w.send(ctx, doc)
		}
	}
}

func (w *Watchman) send(ctx context.Context, doc map[string]any) {
	if w.deps.Events == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.deps.Events.SendEvent(ctx, EventDataset, doc); err != nil {
		w.m.eventsDropped.Inc()
		w.log.Warn("shipping watchman event failed", "err", err)
	}
}
