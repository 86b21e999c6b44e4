package watchman

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files")

// TestCollectorGolden pins every per-container series (names, labels and
// values) the collector exports for containers with all kinds of figures:
// network interfaces, block devices, PSI, a memory limit, Swarm labels, an
// idle opted-in container and one the watchman paused.
func TestCollectorGolden(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.Window = 30 * time.Minute })
	h.add("plain", nil)
	h.add("idle", optIn)
	h.add("paused", optIn)
	h.update(&inventory.Container{ID: "swarm", Name: "web.1.abc", Image: "web:1",
		Labels: map[string]string{inventory.LabelSwarmServiceName: "web", inventory.LabelSwarmNodeID: "node1",
			inventory.LabelSwarmTaskName: "web.1.abc", inventory.LabelStackNamespace: "shop"},
		State: inventory.State{Status: "running", Running: true, Pid: 101, StartedAt: t0.Add(-2 * time.Hour)}}, "start")
	h.tick(nil)
	h.tick(nil)
	h.w.mu.Lock()
	i := uint64(0)
	for _, id := range []string{"plain", "idle", "paused", "swarm"} {
		i++
		tr := h.w.ctrs[id]
		tr.cur.Cgroup = cgroup.Stats{CPUUsage: 1e9 * i, CPUUser: 6e8 * i, CPUSystem: 4e8 * i,
			CFSPeriods: 10 * i, CFSThrottled: i, CFSThrottledTime: 5e6 * i,
			MemoryUsage: 1 << 20 * i, MemoryLimit: cgroup.Unlimited, MemoryWorkingSet: 1 << 19 * i,
			MemoryRSS: 1 << 18 * i, MemoryCache: 1 << 17 * i, Pids: i, PidsMax: cgroup.Unlimited,
			BlkIO: []cgroup.BlkDev{{Major: 8, Minor: 0, ReadBytes: 4096 * i, WriteBytes: 8192 * i, Reads: i, Writes: 2 * i},
				{Major: 259, Minor: 1, ReadBytes: 1}},
			HasPSI: true, CPUPressure: cgroup.PSI{Some: cgroup.PSILine{Total: 100 * i}, Full: cgroup.PSILine{Total: 50 * i}},
			MemoryPressure: cgroup.PSI{Some: cgroup.PSILine{Total: 10 * i}}, IOPressure: cgroup.PSI{Full: cgroup.PSILine{Total: 7 * i}}}
		if id == "swarm" {
			tr.cur.Cgroup.MemoryLimit, tr.cur.Cgroup.PidsMax = 1<<30, 512
		}
		tr.cur.HasNet = true
		tr.cur.Net = []procfs.Iface{{Name: "lo", RxBytes: 9}, {Name: "eth0", RxBytes: 100 * i, RxPackets: i, RxErrors: 1, RxDrops: 2,
			TxBytes: 200 * i, TxPackets: 2 * i, TxErrors: 3, TxDrops: 4}, {Name: "eth1", RxBytes: 1}}
	}
	h.w.ctrs["paused"].pausedByWatchman(false, t0, false)
	h.w.mu.Unlock()

	mfs, err := h.w.deps.Registerer.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range mfs {
		if n := mf.GetName(); strings.HasPrefix(n, "container_") || strings.HasPrefix(n, "heartwood_watchman_container_") && !strings.Contains(n, "sample_duration") {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	golden := filepath.Join("testdata", "collector.golden.txt")
	if *updateGolden {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, buf.Bytes()) {
		t.Errorf("series differ from %s:\n%s", golden, buf.Bytes())
	}
}

// BenchmarkGather is one scrape's Gather of 200 containers with two
// interfaces, a block device and PSI each (the text encoding is not
// included).
func BenchmarkGather(b *testing.B) {
	t := &testing.T{}
	h := newHarness(t, nil)
	for i := range 200 {
		h.add(fmt.Sprintf("%064d", i), nil)
	}
	h.tick(nil)
	h.tick(nil)
	h.w.mu.Lock()
	for _, tr := range h.w.ctrs {
		tr.cur.Cgroup = cgroup.Stats{CPUUsage: 1e9, MemoryUsage: 1 << 20, MemoryLimit: cgroup.Unlimited, PidsMax: cgroup.Unlimited,
			BlkIO: []cgroup.BlkDev{{Major: 8, ReadBytes: 4096}}, HasPSI: true}
		tr.cur.HasNet = true
		tr.cur.Net = []procfs.Iface{{Name: "lo"}, {Name: "eth0", RxBytes: 100}}
	}
	h.w.mu.Unlock()
	reg := h.w.deps.Registerer.(*prometheus.Registry)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
