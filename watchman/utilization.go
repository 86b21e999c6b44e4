package watchman

import (
	"context"
	"maps"
	"runtime"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// UtilizationDataset is the dataset of the per-container utilization
// samples (data stream metrics-heartwood.container-<namespace>).
const UtilizationDataset = "heartwood.container"

// SampleSink ships utilization samples (the shipper implements it, writing
// them to the metrics data stream of dataset in one request).
type SampleSink interface {
	SendMetrics(ctx context.Context, dataset string, docs []map[string]any) error
}

// utilInput is what the utilization writer needs of one container at one
// moment: its latest sample and the watchman's view of it.
type utilInput struct {
	c       *inventory.Container
	sample  Sample
	has     bool
	managed bool
	state   string
	idle    bool
	reason  string
}

// utilPrev is a container's counters at the previous utilization sample.
type utilPrev struct {
	at                 time.Time
	cpu, thr           uint64
	rx, tx, rd, wr     uint64
	coresBeforePause   float64
	wasPaused, hasRate bool
}

// utilization turns the watchman's samples into utilization documents,
// computing rates over its own interval.
type utilization struct {
	node     string
	hostCPUs int
	prev     map[string]utilPrev
}

func newUtilization(node string, hostCPUs int) *utilization {
	return &utilization{node: node, hostCPUs: max(hostCPUs, 1), prev: map[string]utilPrev{}}
}

func counters(s Sample) (rx, tx, rd, wr uint64) {
	for _, n := range s.Net {
		if n.Name == "lo" {
			continue
		}
		rx += n.RxBytes
		tx += n.TxBytes
	}
	for _, d := range s.Cgroup.BlkIO {
		rd += d.ReadBytes
		wr += d.WriteBytes
	}
	return rx, tx, rd, wr
}

// docs returns one document per container that has a sample and was seen
// at the previous call too (the first sample only sets the baseline), and
// forgets containers that are gone.
func (u *utilization) docs(in []utilInput) []map[string]any {
	seen := make(map[string]bool, len(in))
	var out []map[string]any
	for _, x := range in {
		if !x.has {
			continue
		}
		id := x.c.ID
		seen[id] = true
		s := x.sample
		rx, tx, rd, wr := counters(s)
		cur := utilPrev{at: s.At, cpu: s.Cgroup.CPUUsage, thr: s.Cgroup.CFSThrottled, rx: rx, tx: tx, rd: rd, wr: wr}
		p, ok := u.prev[id]
		paused := x.state == StatePaused || x.state == StatePausedExternal
		cur.wasPaused = paused
		cur.coresBeforePause = p.coresBeforePause
		u.prev[id] = cur
		dt := s.At.Sub(p.at).Seconds()
		if !ok || dt <= 0 {
			continue
		}
		cores := float64(delta(p.cpu, cur.cpu)) / 1e9 / dt
		if !paused {
			cur.coresBeforePause = cores
			u.prev[id] = cur
		}
		drx, dtx, drd, dwr := delta(p.rx, rx), delta(p.tx, tx), delta(p.rd, rd), delta(p.wr, wr)
		mem := s.Cgroup.MemoryWorkingSet
		hc := map[string]any{
			"cpu":     map[string]any{"cores": cores, "throttled": map[string]any{"periods": delta(p.thr, cur.thr)}},
			"memory":  map[string]any{"working_set": map[string]any{"bytes": mem}},
			"network": map[string]any{"rx_bytes_per_second": float64(drx) / dt, "tx_bytes_per_second": float64(dtx) / dt},
			"disk":    map[string]any{"read_bytes_per_second": float64(drd) / dt, "write_bytes_per_second": float64(dwr) / dt},
		}
		ctr := map[string]any{
			"id": id, "name": x.c.Name, "runtime": "docker", "image": map[string]any{"name": x.c.Image},
			"cpu":     map[string]any{"usage": cores / float64(u.hostCPUs)},
			"network": map[string]any{"ingress": map[string]any{"bytes": drx}, "egress": map[string]any{"bytes": dtx}},
			"disk":    map[string]any{"read": map[string]any{"bytes": drd}, "write": map[string]any{"bytes": dwr}},
		}
		if lim := s.Cgroup.MemoryLimit; lim > 0 && lim < 1<<62 {
			hc["memory"].(map[string]any)["limit"] = map[string]any{"bytes": lim}
			ctr["memory"] = map[string]any{"usage": float64(mem) / float64(lim)}
		}
		if s.HasGPU {
			hc["gpu"] = map[string]any{"utilization_pct": s.GPUUtil, "memory": map[string]any{"bytes": s.GPUMemBytes}}
		}
		wm := map[string]any{"state": x.state}
		if x.managed {
			wm["idle"] = x.idle
			if x.reason != "" {
				wm["reason"] = x.reason
			}
		}
		if paused {
			// While paused the container holds no CPU: what it used while
			// last active is reclaimed.
			wm["paused_seconds"] = dt
			wm["reclaimed_cpu_hours"] = cur.coresBeforePause * dt / 3600
		}
		doc := map[string]any{
			"@timestamp": s.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			"container":  ctr,
			"host":       map[string]any{"name": u.node},
			"heartwood":  map[string]any{"container": hc, "watchman": wm},
		}
		maps.Copy(doc, x.c.Workload().ECS())
		out = append(out, doc)
	}
	for id := range u.prev {
		if !seen[id] {
			delete(u.prev, id)
		}
	}
	return out
}

// utilizationInputs copies what the utilization writer needs, under the
// lock.
func (w *Watchman) utilizationInputs() []utilInput {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]utilInput, 0, len(w.ctrs))
	for _, t := range w.ctrs {
		if !t.hasCur {
			continue
		}
		x := utilInput{c: t.c, sample: t.cur, has: true, managed: t.managed, state: t.state}
		x.sample.Net = append([]procfs.Iface(nil), t.cur.Net...)
		x.sample.Cgroup.BlkIO = append([]cgroup.BlkDev(nil), t.cur.Cgroup.BlkIO...)
		if x.state == "" {
			x.state = StateUnmanaged
		}
		if t.managed && t.hasRates {
			x.idle, x.reason = t.verdict.Idle, t.verdict.Blocker
		}
		out = append(out, x)
	}
	return out
}

// shipUtilization writes a utilization sample of every container every
// ESInterval until ctx ends. A failed write is counted and logged once per
// streak; the next interval writes fresh samples.
func (w *Watchman) shipUtilization(ctx context.Context) {
	u := newUtilization(w.deps.NodeName, runtime.NumCPU())
	t := time.NewTicker(w.cfg.ESInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		docs := u.docs(w.utilizationInputs())
		if len(docs) == 0 {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, w.cfg.ESInterval)
		err := w.deps.Samples.SendMetrics(sctx, UtilizationDataset, docs)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			w.m.samplesDropped.Add(float64(len(docs)))
			if !failing {
				w.log.Warn("writing utilization samples to Elasticsearch failed; retrying with fresh ones every interval", "err", err)
			}
			failing = true
		case err == nil:
			w.m.samplesShipped.Add(float64(len(docs)))
			if failing {
				w.log.Info("writing utilization samples works again")
			}
			failing = false
		}
	}
}
