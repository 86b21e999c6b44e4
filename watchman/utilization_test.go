package watchman

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

func TestUtilizationDocs(t *testing.T) {
	c := &inventory.Container{ID: "c1", Name: "trainer", Image: "reg/trainer:v1",
		Swarm: &inventory.SwarmTask{ServiceName: "ml_trainer", TaskName: "ml_trainer.1.x", TaskID: "x", NodeID: "n1", Stack: "ml", Slot: 1}}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sample := func(at time.Time, cpuSec, rx, rd uint64) Sample {
		return Sample{At: at, HasNet: true,
			Cgroup: cgroup.Stats{CPUUsage: cpuSec * 1e9, CFSThrottled: cpuSec, MemoryWorkingSet: 512 << 20, MemoryLimit: 1 << 30,
				BlkIO: []cgroup.BlkDev{{ReadBytes: rd}}},
			Net: []procfs.Iface{{Name: "lo", RxBytes: 1 << 40}, {Name: "eth0", RxBytes: rx}}}
	}
	u := newUtilization("node1", 4)
	if d := u.docs([]utilInput{{c: c, sample: sample(t0, 0, 0, 0), has: true, managed: true, state: StateActive}}); len(d) != 0 {
		t.Fatalf("first sample wrote %d documents; it only sets the baseline", len(d))
	}
	// 10 s later: 20 CPU-seconds (2 cores), 10 KB received, 5 KB read.
	d := u.docs([]utilInput{{c: c, sample: sample(t0.Add(10*time.Second), 20, 10000, 5000), has: true, managed: true, state: StateActive}})
	if len(d) != 1 {
		t.Fatalf("got %d documents", len(d))
	}
	b, _ := json.Marshal(d[0])
	var doc map[string]any
	_ = json.Unmarshal(b, &doc)
	get := func(path ...string) any {
		var v any = doc
		for _, p := range path {
			v = v.(map[string]any)[p]
		}
		return v
	}
	for _, tc := range []struct {
		path []string
		want any
	}{
		{[]string{"heartwood", "container", "cpu", "cores"}, 2.0},
		{[]string{"container", "cpu", "usage"}, 0.5},
		{[]string{"container", "memory", "usage"}, 0.5},
		{[]string{"heartwood", "container", "network", "rx_bytes_per_second"}, 1000.0},
		{[]string{"heartwood", "container", "disk", "read_bytes_per_second"}, 500.0},
		{[]string{"container", "network", "ingress", "bytes"}, 10000.0},
		{[]string{"service", "name"}, "ml_trainer"},
		{[]string{"orchestrator", "namespace"}, "ml"},
		{[]string{"host", "name"}, "node1"},
		{[]string{"heartwood", "watchman", "state"}, "active"},
		{[]string{"@timestamp"}, "2026-01-01T00:00:10.000Z"},
	} {
		if got := get(tc.path...); got != tc.want {
			t.Errorf("%v = %v, want %v", tc.path, got, tc.want)
		}
	}
	// Every field is mapped as the template says, with and without a
	// time-series data stream.
	for _, f := range []esschema.Features{{}, {TimeSeries: true, MapperExtras: true}} {
		if bad := esschema.CheckDocument(esschema.Mappings(esschema.Metrics, f), doc); len(bad) > 0 {
			t.Errorf("document does not fit the metrics mapping (%+v): %v", f, bad)
		}
	}
	// Paused for 10 s after using 2 cores: 20 CPU-seconds reclaimed.
	d = u.docs([]utilInput{{c: c, sample: sample(t0.Add(20*time.Second), 20, 10000, 5000), has: true, managed: true, state: StatePaused}})
	wm := d[0]["heartwood"].(map[string]any)["watchman"].(map[string]any)
	if wm["paused_seconds"] != 10.0 || wm["reclaimed_cpu_hours"] != 20.0/3600 {
		t.Errorf("paused sample: %v", wm)
	}
	// A container that is gone is forgotten.
	u.docs(nil)
	if len(u.prev) != 0 {
		t.Errorf("prev keeps %d containers", len(u.prev))
	}
}
