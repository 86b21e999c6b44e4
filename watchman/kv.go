package watchman

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// KV keys under Config.KVPrefix. The default keys take the same values as
// the labels of the same name.
var kvDefaultKeys = []string{"window", "min-age", "cpu", "net", "disk", "gpu", "action"}

// watchKV follows the KV prefix and applies changes until ctx ends.
func (w *Watchman) watchKV(ctx context.Context) {
	var index uint64
	retry := backoff.New(time.Second, 30*time.Second)
	for {
		pairs, next, err := w.deps.KV.List(ctx, w.cfg.KVPrefix, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			w.m.kvErrors.Inc()
			d := retry.Next()
			w.log.Warn("reading watchman settings from KV failed; keeping current ones", "prefix", w.cfg.KVPrefix, "err", err, "retry_in", d.Round(time.Millisecond))
			if backoff.Sleep(ctx, d) != nil {
				return
			}
			continue
		}
		retry.Reset()
		if next < index || next == 0 {
			next = 0 // index went backwards: start over
		}
		if next == index && index != 0 {
			continue // blocking query timed out without change
		}
		index = next
		w.applyKV(pairs)
	}
}

// applyKV overlays the KV settings on the local configuration. Invalid
// values are reported and the previous settings kept.
func (w *Watchman) applyKV(pairs map[string]string) {
	labels := map[string]string{}
	for _, k := range kvDefaultKeys {
		if v, ok := pairs[k]; ok {
			labels[policy.LabelPrefix+k] = v
		}
	}
	p, err := policy.Parse(labels, w.cfg.defaults())
	dry := false
	var errs []string
	if err != nil {
		errs = append(errs, err.Error())
	}
	for _, k := range []string{"dry-run", "nodes/" + w.deps.NodeName + "/dry-run"} {
		if v, ok := pairs[k]; ok && (k == "dry-run" || w.deps.NodeName != "") {
			b, perr := strconv.ParseBool(strings.TrimSpace(v))
			if perr != nil {
				errs = append(errs, k+"="+strconv.Quote(v)+": not a bool")
				continue
			}
			dry = dry || b
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(errs) > 0 {
		w.m.kvErrors.Inc()
		w.log.Warn("invalid watchman settings in KV; keeping current ones", "prefix", w.cfg.KVPrefix, "err", strings.Join(errs, "; "))
		return
	}
	d := p.Defaults
	d.DryRun = w.cfg.DryRun
	changed := d != w.defaults || dry != w.kvDryRun
	w.defaults, w.kvDryRun = d, dry
	if !changed {
		return
	}
	w.log.Info("watchman settings from KV applied", "window", d.Window, "min_age", d.MinAge, "cpu", d.CPU,
		"net", d.Net, "disk", d.Disk, "gpu", d.GPU, "action", d.Action, "kv_dry_run", dry)
	for _, t := range w.ctrs {
		w.policyLocked(t)
	}
}

// Defaults returns the policy defaults in force (local configuration
// overlaid with KV) and whether KV switched dry-run on.
func (w *Watchman) Defaults() (policy.Defaults, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.defaults, w.kvDryRun
}
