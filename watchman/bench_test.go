package watchman

import (
	"os"
	"testing"
	"time"
)

// BenchmarkSampleContainer is the cost of one container sample on this
// host's real kernel files: the cgroup files of the benchmark's own process
// (its cgroup stands in for a container's: same files, same kernel code)
// plus /proc/<pid>/net/dev, re-read through open descriptors, and the rate
// computation.
func BenchmarkSampleContainer(b *testing.B) {
	sm, err := openSampler("/proc", "/sys/fs/cgroup", os.Getpid(), newNetnsSet("/proc"), cadence{pressure: 5, detail: 15})
	if err != nil {
		b.Fatal(err)
	}
	defer sm.close()
	var s [2]Sample
	now := time.Now()
	if _, err := sm.read(&s[0], now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		now = now.Add(time.Second)
		sm.nets.nextTick()
		sm.lastCPU = ^s[(i-1)&1].Cgroup.CPUUsage // the process ran: a full sample
		if _, err := sm.read(&s[i&1], now); err != nil {
			b.Fatal(err)
		}
		_ = computeRates(&s[(i-1)&1], &s[i&1])
	}
}

// BenchmarkOpenSampler is the one-off cost per container start: resolving
// the cgroup from /proc/<pid>/cgroup and opening the files.
func BenchmarkOpenSampler(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sm, err := openSampler("/proc", "/sys/fs/cgroup", os.Getpid(), newNetnsSet("/proc"), cadence{pressure: 5, detail: 15})
		if err != nil {
			b.Fatal(err)
		}
		sm.close()
	}
}
