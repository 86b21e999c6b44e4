// Command watchman-bench measures what the real agent binary costs while its
// watchman samples N idle containers every second, the way users run it,
// and compares binaries in one run on the same containers.
//
//	make build
//	go run ./bench/watchman -n 200,500,1000 -duration 60s -ref main -bin bin/heartwood
//
// For each scale N (ascending) it makes sure N idle containers of a tiny
// local image (registrar/testdata/sleeper, static, FROM scratch) run on the default bridge
// network, labelled heartwood.test=watchman-bench. They are not opted in
// to pausing: on a shared engine every other watchman running there (tests
// included) would pause them; the agent samples and exports every running
// container all the same. Then, for each round, it runs every binary in turn
// (A B A B ...) as `heartwood run` with the registrar and the shipper off,
// the watchman sampling every second and its KV settings off, scrapes
// /metrics every 15 s as Prometheus does (same Accept header, gzip), and
// over a window of whole scrape periods reports:
//
//   - process CPU: utime+stime of the agent process (/proc/<pid>/stat) over
//     the window, as a share of one core — everything the agent does,
//     scrapes included;
//   - the watchman's own CPU per container sample:
//     heartwood_watchman_tick_cpu_seconds_total over
//     heartwood_watchman_container_sample_duration_seconds_count, from the
//     scrapes;
//   - read syscalls per container per second (syscr of /proc/<pid>/io);
//   - RSS (VmRSS at the end, VmHWM) and the load average at start and end.
//
// Every running container of the engine is sampled, so containers of other
// users of a shared engine count too (the "ctrs" column is what the agent
// sampled per tick). Starting 1,000 containers takes minutes: -keep leaves
// them running for the next run, which reuses them (and removes extras when
// a smaller N comes first).
package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
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
	"golang.org/x/sync/errgroup"

	"github.com/heartwood-ops/heartwood/bench/internal/hoststat"
)

const (
	image      = "heartwood-bench/sleeper:latest"
	labelTest  = "heartwood.test"
	benchLabel = "watchman-bench"
)

// promAccept is the Accept header Prometheus sends when it scrapes.
const promAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

type binList []string

func (b *binList) String() string     { return strings.Join(*b, ",") }
func (b *binList) Set(s string) error { *b = append(*b, s); return nil }

type options struct {
	scales   []int
	bins     []string
	duration time.Duration
	warmup   time.Duration
	interval time.Duration
	scrape   time.Duration
	rounds   int
	keep     bool
	network  string
}

func main() {
	var bins binList
	var refs binList
	scales := flag.String("n", "200", "comma-separated numbers of idle containers, measured in ascending order")
	o := options{}
	flag.Var(&bins, "bin", "agent binary to measure (repeat to compare; default bin/heartwood)")
	flag.Var(&refs, "ref", "git ref to build into bin/heartwood-<ref> and measure first (repeatable)")
	flag.DurationVar(&o.duration, "duration", 60*time.Second, "measurement window per binary and round (rounded up to whole scrape periods)")
	flag.DurationVar(&o.warmup, "warmup", 10*time.Second, "time after the agent is ready before the window opens")
	flag.DurationVar(&o.interval, "interval", time.Second, "watchman sample interval")
	flag.DurationVar(&o.scrape, "scrape", 15*time.Second, "period of the /metrics scrape")
	flag.IntVar(&o.rounds, "rounds", 1, "rounds per scale; each round runs every binary once, alternating")
	flag.BoolVar(&o.keep, "keep", false, "leave the containers running for the next run")
	flag.StringVar(&o.network, "network", "bridge", "network of the containers")
	flag.Parse()
	for _, s := range strings.Split(*scales, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 0 {
			log.Fatalf("-n: bad scale %q", s)
		}
		o.scales = append(o.scales, n)
	}
	slices.Sort(o.scales)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, r := range refs {
		p, err := buildRef(ctx, r)
		if err != nil {
			log.Fatal(err)
		}
		o.bins = append(o.bins, p)
	}
	o.bins = append(o.bins, bins...)
	if len(o.bins) == 0 {
		o.bins = []string{"bin/heartwood"}
	}
	if err := run(ctx, o); err != nil {
		log.Fatal(err)
	}
}

// result is one measurement of one binary.
type result struct {
	bin              string
	n                int
	round            int
	window           time.Duration
	perTick          float64 // containers sampled per tick
	procCPU          float64 // share of one core
	tickCPUPerSample float64 // seconds
	samples          float64
	readsPerCtrSec   float64
	rssKiB, hwmKiB   int64
	load0, load1     string
	fallbacks        float64
}

func run(ctx context.Context, o options) error {
	for _, b := range o.bins {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("binary %s: %w (make build builds bin/heartwood)", b, err)
		}
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := buildImage(ctx); err != nil {
		return err
	}
	if !o.keep {
		defer func() {
			if err := ensure(context.Background(), cli, 0, o.network); err != nil {
				log.Printf("cleanup: %v", err)
			}
		}()
	}
	host, _ := os.Hostname()
	fmt.Printf("machine: %s, %d CPUs, kernel %s; binaries: %s\n", host, nproc(), kernel(), strings.Join(o.bins, " "))
	var all []result
	for _, n := range o.scales {
		t0 := time.Now()
		if err := ensure(ctx, cli, n, o.network); err != nil {
			return err
		}
		fmt.Printf("\n%d idle containers on network %s ready (%s)\n", n, o.network, time.Since(t0).Round(time.Second))
		for round := 1; round <= o.rounds; round++ {
			for _, b := range o.bins {
				r, err := measure(ctx, o, b)
				if err != nil {
					return fmt.Errorf("%s at %d containers: %w", b, n, err)
				}
				r.n, r.round = n, round
				all = append(all, r)
				printRow(r)
			}
		}
	}
	fmt.Println("\nsummary")
	printHeader()
	for _, r := range all {
		printRow(r)
	}
	return ctx.Err()
}

func printHeader() {
	fmt.Printf("%-28s %5s %5s %6s %7s %9s %10s %8s %8s %8s  %s\n", "binary", "N", "round", "ctrs", "window", "proc CPU", "µs/sample", "samples", "reads/c/s", "RSS MiB", "load start → end")
}

var headerOnce sync.Once

func printRow(r result) {
	headerOnce.Do(printHeader)
	fb := ""
	if r.fallbacks > 0 {
		fb = fmt.Sprintf("  (%.0f Docker stats fallbacks)", r.fallbacks)
	}
	fmt.Printf("%-28s %5d %5d %6.0f %7s %8.2f%% %10.1f %8.0f %8.2f %8.1f  %s → %s%s\n", r.bin, r.n, r.round, r.perTick,
		r.window.Round(time.Second), 100*r.procCPU, 1e6*r.tickCPUPerSample, r.samples, r.readsPerCtrSec,
		float64(r.rssKiB)/1024, r.load0, r.load1, fb)
}

// measure runs one binary and measures it over whole scrape periods.
func measure(ctx context.Context, o options, bin string) (result, error) {
	res := result{bin: bin}
	dir, err := os.MkdirTemp("", "watchman-bench-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	port, err := freePort()
	if err != nil {
		return res, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return res, err
	}
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "run", "--listen", addr, "--data-dir", filepath.Join(dir, "data"),
		"--node-name", "watchman-bench", "--log-level", "warn",
		"--registrar.enabled=false", "--shipper.enabled=false",
		"--watchman.interval", o.interval.String(), "--watchman.dry-run", "--watchman.kv-prefix=")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	if err := waitReady(ctx, addr, 2*time.Minute); err != nil {
		b, _ := os.ReadFile(logf.Name())
		return res, fmt.Errorf("%w\n%s", err, b)
	}
	select {
	case <-time.After(o.warmup):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	periods := max(1, int((o.duration+o.scrape-1)/o.scrape))
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	var m0, m1 map[string]float64
	var p0, p1 procStat
	var w0, w1 time.Time
	tk := time.NewTicker(o.scrape)
	defer tk.Stop()
	for i := 0; i <= periods; i++ {
		if i > 0 {
			select {
			case <-tk.C:
			case <-ctx.Done():
				return res, ctx.Err()
			}
		}
		m, err := scrape(ctx, hc, addr)
		if err != nil {
			return res, err
		}
		p, err := readProc(pid)
		if err != nil {
			return res, err
		}
		now := time.Now()
		if i == 0 {
			m0, p0, w0 = m, p, now
			res.load0 = hoststat.LoadAvg()
		}
		m1, p1, w1 = m, p, now
		res.hwmKiB = max(res.hwmKiB, p.hwmKiB)
	}
	res.load1 = hoststat.LoadAvg()
	res.window = w1.Sub(w0)
	sec := res.window.Seconds()
	res.procCPU = (p1.cpu - p0.cpu).Seconds() / sec
	res.rssKiB = p1.rssKiB
	d := func(k string) float64 { return m1[k] - m0[k] }
	res.samples = d("heartwood_watchman_container_sample_duration_seconds_count")
	if ticks := d("heartwood_watchman_tick_duration_seconds_count"); ticks > 0 {
		res.perTick = res.samples / ticks
	}
	if res.samples > 0 {
		res.tickCPUPerSample = d("heartwood_watchman_tick_cpu_seconds_total") / res.samples
	}
	if res.perTick > 0 {
		res.readsPerCtrSec = float64(p1.syscr-p0.syscr) / sec / res.perTick
	}
	res.fallbacks = d("heartwood_watchman_docker_stats_fallback_total")
	return res, nil
}

// wanted are the series read from each scrape.
var wanted = []string{
	"heartwood_watchman_tick_cpu_seconds_total",
	"heartwood_watchman_container_sample_duration_seconds_count",
	"heartwood_watchman_tick_duration_seconds_count",
	"heartwood_watchman_docker_stats_fallback_total",
}

// scrape GETs /metrics as Prometheus does and returns the wanted series.
// The whole body is read and decompressed, like a scraper would.
func scrape(ctx context.Context, hc *http.Client, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", promAccept)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape: %s", resp.Status)
	}
	var body io.Reader = resp.Body
	if resp.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("scrape: %w", err)
		}
		body = zr
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if !ok || !slices.Contains(wanted, name) {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			out[name] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape: %w", err)
	}
	for _, k := range wanted[:3] {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("scrape: %s missing", k)
		}
	}
	return out, nil
}

func waitReady(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return fmt.Errorf("agent not ready on %s after %s", addr, timeout)
}

type procStat struct {
	cpu            time.Duration
	syscr          int64
	rssKiB, hwmKiB int64
}

func readProc(pid int) (procStat, error) {
	var p procStat
	cpu, err := hoststat.ProcessCPU(pid)
	if err != nil {
		return p, err
	}
	p.cpu = cpu
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return p, err
	}
	p.syscr = field(string(b), "syscr:")
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return p, err
	}
	p.rssKiB, p.hwmKiB = field(string(b), "VmRSS:"), field(string(b), "VmHWM:")
	return p, nil
}

// field returns the number after key in a "key value" file.
func field(s, key string) int64 {
	for _, l := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(l, key); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func nproc() int {
	n := 0
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "processor") {
			n++
		}
	}
	return n
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// buildRef builds the agent at git ref into bin/heartwood-<ref>, from a
// temporary worktree.
func buildRef(ctx context.Context, ref string) (string, error) {
	dir, err := os.MkdirTemp("", "watchman-bench-ref-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	wt := filepath.Join(dir, "src")
	if out, err := exec.CommandContext(ctx, "git", "worktree", "add", "--detach", wt, ref).CombinedOutput(); err != nil {
		return "", fmt.Errorf("git worktree add %s: %w\n%s", ref, err, out)
	}
	defer exec.Command("git", "worktree", "remove", "--force", wt).Run()
	out, err := filepath.Abs(filepath.Join("bin", "heartwood-"+strings.NewReplacer("/", "-", ":", "-").Replace(ref)))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, "./cmd/heartwood")
	cmd.Dir = wt
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", ref, err, b)
	}
	rel, _ := filepath.Rel(".", out)
	return rel, nil
}

// buildImage builds the sleeper image (the idle program the registrar's
// Swarm test runs too), unless it exists.
func buildImage(ctx context.Context) error {
	if exec.CommandContext(ctx, "docker", "image", "inspect", image).Run() == nil {
		return nil
	}
	dir, err := os.MkdirTemp("", "watchman-bench-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "sleeper"), "./registrar/testdata/sleeper")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build sleeper: %w\n%s", err, out)
	}
	df := "FROM scratch\nCOPY sleeper /sleeper\nENTRYPOINT [\"/sleeper\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "docker", "build", "-q", "-t", image, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("docker build: %w\n%s", err, out)
	}
	return nil
}

// ensure makes exactly n benchmark containers run on network, starting
// missing ones in parallel and removing extras and stopped ones.
func ensure(ctx context.Context, cli *client.Client, n int, network string) error {
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelTest+"="+benchLabel))})
	if err != nil {
		return err
	}
	var remove []string
	running := 0
	for _, c := range list {
		if c.State == "running" && c.HostConfig.NetworkMode == network && running < n {
			running++
			continue
		}
		remove = append(remove, c.ID)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i := range len(remove) + n - running {
		g.Go(func() error {
			if i < len(remove) {
				return cli.ContainerRemove(ctx, remove[i], container.RemoveOptions{Force: true})
			}
			c, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: map[string]string{labelTest: benchLabel}},
				&container.HostConfig{NetworkMode: container.NetworkMode(network)}, nil, nil, "")
			if err != nil {
				return err
			}
			return cli.ContainerStart(ctx, c.ID, container.StartOptions{})
		})
	}
	return g.Wait()
}
