//go:build integration

package watchman

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// BenchmarkIntegrationSampleContainer is the cost of one sample of a real
// container on this host (cgroup v1 + hybrid PSI, a bridge network with
// eth0), with PSI every 5th sample and the other slow figures every 15th,
// as with a 1 s interval. "quiet" is the idle container as it is (its CPU
// counter does not move between samples: only that counter is read);
// "active" makes every sample see the counter move, so block I/O and
// net/dev are read too:
//
//	go test -tags integration -run XXX -bench IntegrationSample ./watchman/
func BenchmarkIntegrationSampleContainer(b *testing.B) {
	cli := testenv.Docker(b)
	testenv.Busybox(b, cli)
	runID := testenv.RunID()
	ctx := context.Background()
	netName := "wm-bench-" + runID
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Labels: map[string]string{testenv.LabelTest: runID}}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cli.NetworkRemove(context.Background(), netName) })
	id := testenv.Run(b, cli, runID, testenv.Spec{Name: netName,
		Config:     &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "3600"}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(netName)}})
	in, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	sm, err := openSampler("/proc", "/sys/fs/cgroup", in.State.Pid, newNetnsSet("/proc"), cadence{pressure: 5, detail: 15})
	if err != nil {
		b.Fatal(err)
	}
	defer sm.close()
	for _, active := range []bool{false, true} {
		b.Run(map[bool]string{false: "quiet", true: "active"}[active], func(b *testing.B) {
			var s [2]Sample
			now := time.Now()
			if _, err := sm.read(&s[0], now); err != nil {
				b.Fatal(err)
			}
			if !s[0].HasNet || len(s[0].Net) != 2 {
				b.Fatalf("net %+v", s[0].Net)
			}
			b.ReportAllocs()
			i, quiet := 0, 0
			for b.Loop() {
				i++
				now = now.Add(time.Second)
				sm.nets.nextTick()
				if active {
					sm.lastCPU = ^s[(i-1)&1].Cgroup.CPUUsage
				}
				q, err := sm.read(&s[i&1], now)
				if err != nil {
					b.Fatal(err)
				}
				if q {
					quiet++
				}
				_ = computeRates(&s[(i-1)&1], &s[i&1])
			}
			b.ReportMetric(float64(quiet)/float64(i), "quiet/op")
		})
	}
}
