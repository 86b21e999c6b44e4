// Command watchman-bench measures what sampling N running containers every
// second costs the agent, and, in the same run and for the same containers,
// what Docker's stats API costs.
//
//	go run ./bench/watchman -n 200 -duration 60s
//
// It starts N busybox `sleep` containers (label heartwood.test=<run id>,
// removed at the end), runs the inventory and the watchman in this process
// with a 1 s interval, and reports:
//   - the agent's CPU share: this process's user+system time during the
//     measurement window divided by the window (the inventory is idle then,
//     so this is the watchman's sampling, decisions and Go runtime);
//   - the watchman's own per-tick and per-container timings from its
//     histograms;
//   - Docker's stats API for every container (one-shot and stream=false):
//     wall time per call, and the CPU time dockerd, containerd and the
//     containerd shims of the shared engine used during the sweep.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman"
)

const image = "heartwood-test/busybox:latest"

func main() {
	n := flag.Int("n", 100, "containers to run")
	dur := flag.Duration("duration", 60*time.Second, "measurement window for the watchman")
	interval := flag.Duration("interval", time.Second, "watchman sample interval")
	statsN := flag.Int("stats", 0, "containers to query through the Docker stats API (0: all)")
	flag.Parse()
	if err := run(*n, *dur, *interval, *statsN); err != nil {
		log.Fatal(err)
	}
}

func run(n int, dur, interval time.Duration, statsN int) error {
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %s missing (any testenv.Busybox test builds it): %w", image, err)
	}
	runID := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	defer cleanup(cli, runID)

	start := time.Now()
	ids, err := startContainers(ctx, cli, runID, n)
	if err != nil {
		return err
	}
	fmt.Printf("started %d containers in %s\n", len(ids), time.Since(start).Round(time.Second))

	reg := prometheus.NewRegistry()
	inv := inventory.New(cli, inventory.Options{Logger: slog.New(slog.DiscardHandler)})
	cfg := watchman.DefaultConfig()
	cfg.Interval = interval
	cfg.KVPrefix = ""
	w, err := watchman.New(cfg, watchman.Deps{Source: inv, Docker: cli, Registerer: reg, NodeName: "bench"})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = inv.Run(rctx) }()
	<-inv.Synced()
	go func() { defer wg.Done(); _ = w.Run(rctx) }()
	for w.Ready() != nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(3 * interval) // let the first samples and rates settle
	sampled := 0
	for _, id := range ids {
		if v, ok := w.DescribeContainer(id).(*watchman.ContainerView); ok && v.LastSample != nil && v.LastSample.Source == "cgroup" {
			sampled++
		}
	}
	tcpu0 := counter(reg, "heartwood_watchman_tick_cpu_seconds_total")
	tick0 := histo(reg, "heartwood_watchman_tick_duration_seconds")
	smp0 := histo(reg, "heartwood_watchman_container_sample_duration_seconds")
	eng0 := engineCPU()
	cpu0, wall0 := selfCPU(), time.Now()
	time.Sleep(dur)
	cpu1, wall1 := selfCPU(), time.Now()
	eng1 := engineCPU()
	tcpu1 := counter(reg, "heartwood_watchman_tick_cpu_seconds_total")
	tick1 := histo(reg, "heartwood_watchman_tick_duration_seconds")
	smp1 := histo(reg, "heartwood_watchman_container_sample_duration_seconds")
	cancel()
	wg.Wait()

	window := wall1.Sub(wall0).Seconds()
	share := (cpu1 - cpu0).Seconds() / window
	ticks := tick1.count - tick0.count
	samples := smp1.count - smp0.count
	fmt.Printf("\n== watchman: %d running containers (%d sampled from cgroups), interval %s, window %.1fs\n", len(ids), sampled, interval, window)
	fmt.Printf("agent process CPU: %.3f CPU-s = %.2f%% of one core (everything: sampling, the inventory following the shared engine's events, GC)\n", (cpu1 - cpu0).Seconds(), 100*share)
	if ticks > 0 && samples > 0 {
		tcpu := tcpu1 - tcpu0
		fmt.Printf("ticks: %d, container samples: %d (%.0f containers per tick)\n", ticks, samples, float64(samples)/float64(ticks))
		fmt.Printf("sampling+decision CPU (thread CPU of the ticks): %.3f CPU-s = %.2f%% of one core; %.1f µs CPU per container sample\n",
			tcpu, 100*tcpu/window, 1e6*tcpu/float64(samples))
		fmt.Printf("=> at 500 containers every %s: %.2f%% of one core for sampling (scaled linearly from the per-sample CPU)\n", interval, 100*500*tcpu/float64(samples)/interval.Seconds())
		fmt.Printf("wall time: mean tick %.2f ms, mean container sample %.1f µs (includes waiting for the CPU on a loaded machine)\n",
			1e3*(tick1.sum-tick0.sum)/float64(ticks), 1e6*(smp1.sum-smp0.sum)/float64(samples))
	}
	fmt.Printf("engine (dockerd+containerd+shims) CPU meanwhile: %.3f CPU-s (includes other users of the shared engine)\n", engineDelta(eng0, eng1).Seconds())

	// Docker's stats API for the same containers.
	q := ids
	if statsN > 0 && statsN < len(q) {
		q = q[:statsN]
	}
	for _, mode := range []string{"one-shot", "stream=false"} {
		eng0 := engineCPU()
		self0 := selfCPU()
		t0 := time.Now()
		var lat []time.Duration
		var mu sync.Mutex
		sem := make(chan struct{}, 8) // like a scraper with some concurrency
		var swg sync.WaitGroup
		for _, id := range q {
			swg.Add(1)
			sem <- struct{}{}
			go func() {
				defer swg.Done()
				defer func() { <-sem }()
				s := time.Now()
				var r container.StatsResponseReader
				var err error
				if mode == "one-shot" {
					r, err = cli.ContainerStatsOneShot(ctx, id)
				} else {
					r, err = cli.ContainerStats(ctx, id, false)
				}
				if err == nil {
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
				mu.Lock()
				lat = append(lat, time.Since(s))
				mu.Unlock()
			}()
		}
		swg.Wait()
		wall := time.Since(t0)
		eng := engineDelta(eng0, engineCPU())
		slices.Sort(lat)
		fmt.Printf("\n== Docker stats API (%s), %d containers, 8 concurrent requests\n", mode, len(q))
		fmt.Printf("sweep wall time %.2fs; per call median %s, p90 %s, max %s\n", wall.Seconds(),
			lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*9/10].Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
		fmt.Printf("engine CPU for one sweep: %.3f CPU-s (%.2f ms per container); client CPU %.3f CPU-s\n",
			eng.Seconds(), 1e3*eng.Seconds()/float64(len(q)), (selfCPU() - self0).Seconds())
		fmt.Printf("=> sampling every container each second this way would need %.1f%% of a core in the engine alone, and one sweep takes %.1fs\n",
			100*eng.Seconds(), wall.Seconds())
	}
	return nil
}

func startContainers(ctx context.Context, cli *client.Client, runID string, n int) ([]string, error) {
	ids := make([]string, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Cmd: []string{"sleep", "3600"},
				Labels: map[string]string{"heartwood.test": runID}},
				&container.HostConfig{NetworkMode: "none"}, nil, nil, fmt.Sprintf("%s-%d", runID, i))
			if err == nil {
				err = cli.ContainerStart(ctx, c.ID, container.StartOptions{})
			}
			ids[i], errs[i] = c.ID, err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("start container: %w", err)
		}
	}
	return ids, nil
}

func cleanup(cli *client.Client, runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "heartwood.test="+runID))})
	if err != nil {
		log.Printf("cleanup: %v", err)
		return
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, c := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}()
	}
	wg.Wait()
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// engineCPU returns user+system time per process of the shared engine's
// dockerd, containerd and containerd shims (recognised by the default socket
// paths, so a private test dockerd is not counted).
func engineCPU() map[int]time.Duration {
	out := map[int]time.Duration{}
	tick := 100.0 // USER_HZ
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		c := strings.ReplaceAll(string(cmd), "\x00", " ")
		isEngine := (strings.HasPrefix(c, "dockerd ") && strings.Contains(c, "unix:///var/run/docker.sock")) ||
			strings.Contains(c, "/var/run/docker/containerd/containerd.toml") ||
			(strings.Contains(c, "containerd-shim") && strings.Contains(c, "/var/run/docker/containerd/containerd.sock"))
		if !isEngine {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil {
			continue
		}
		s := string(st)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseFloat(f[11], 64)
		sy, _ := strconv.ParseFloat(f[12], 64)
		out[pid] = time.Duration((u + sy) / tick * float64(time.Second))
	}
	return out
}

// engineDelta is the CPU the engine used between two snapshots, counting
// only processes alive at both ends (shims of containers that other tests
// remove in between would otherwise make it negative).
func engineDelta(a, b map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, v := range b {
		if u, ok := a[pid]; ok && v >= u {
			d += v - u
		}
	}
	return d
}

func counter(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

type hist struct {
	count uint64
	sum   float64
}

func histo(reg *prometheus.Registry, name string) hist {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			var h *dto.Histogram = mf.GetMetric()[0].GetHistogram()
			return hist{h.GetSampleCount(), h.GetSampleSum()}
		}
	}
	return hist{}
}
