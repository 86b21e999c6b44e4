//go:build bench

// Command wake-bench measures wake-on-connect as users run it: the real
// heartwood binary (registrar and shipper off) and a busybox httpd that
// opted in (heartwood.watchman.enable=true) on a bridge network of its own.
//
//	go run -tags bench ./bench/wake                       # 100 connections, socket events and polling
//	go run -tags bench ./bench/wake -n 10 -idle 5s -mechanisms auto
//
// For each mechanism (the agent's watchman.wake-mechanism: auto uses socket
// events where it can, poll forces polling) it starts the agent, then n
// times: pauses the container through the agent's API, waits -gap (a
// connection does not arrive the instant a container is paused), connects
// from the host and times connect → first byte of the reply. It prints
// p50/p99/max, the engine's own unpause time for comparison (docker
// pause/unpause of a second httpd, n times, without the agent), the
// mechanism the agent reported (heartwood_watchman_connection_watch), and
// the agent process's CPU over -idle with nothing paused and again while the
// container sits paused with nothing connecting (the difference is the
// watch's cost; the rest is the agent's background on a shared engine). Everything it creates carries the label
// heartwood.test=<run id> and is removed at the end.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/heartwood-ops/heartwood/bench/internal/hoststat"
)

const (
	image = "heartwood-test/busybox:latest"
	token = "wake-bench-token-0123456789"
)

func main() {
	n := flag.Int("n", 100, "connections per mechanism")
	mechs := flag.String("mechanisms", "auto,poll", "comma-separated watchman.wake-mechanism values to measure, in order")
	idle := flag.Duration("idle", 10*time.Second, "how long the agent's CPU is measured while the container is paused and nothing connects")
	gap := flag.Duration("gap", 300*time.Millisecond, "wait between a pause and the connection (plus 0-49 ms, varied)")
	bin := flag.String("bin", "", "heartwood binary (default: built from this tree into a temporary directory)")
	agentLog := flag.String("agent-log", "", "on a failed try, also write the agent's whole log to this file (HEARTWOOD_LOG_LEVEL=debug makes it detailed)")
	flag.Parse()
	if err := run(*n, strings.Split(*mechs, ","), *idle, *gap, *bin, *agentLog); err != nil {
		log.Fatal(err)
	}
}

func run(n int, mechs []string, idle, gap time.Duration, bin, agentLog string) error {
	ctx := context.Background()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %s missing (any testenv.Busybox test builds it): %w", image, err)
	}
	tmp, err := os.MkdirTemp("", "wake-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		bin = filepath.Join(tmp, "heartwood")
		out, err := exec.Command("go", "build", "-o", bin, "./cmd/heartwood").CombinedOutput()
		if err != nil {
			return fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	runID := fmt.Sprintf("wakebench-%d", time.Now().UnixNano())
	defer cleanup(cli, runID)
	labels := map[string]string{"heartwood.test": runID}
	if _, err := cli.NetworkCreate(ctx, runID, network.CreateOptions{Labels: labels}); err != nil {
		return fmt.Errorf("create network: %w", err)
	}
	// The engine's own pause/unpause, on a container of its own (Docker
	// 20.10 can keep reporting a container paused after a quick pause and
	// unpause), for comparison: the floor of any connect → reply through
	// Docker.
	engineID, _, err := httpd(ctx, cli, runID, "engine", false)
	if err != nil {
		return err
	}
	id, addr, err := httpd(ctx, cli, runID, "httpd", true)
	if err != nil {
		return err
	}
	var unpause []time.Duration
	for range n {
		// Docker 20.10 can report a container as paused for a moment
		// after an unpause that followed a pause closely: retry.
		if err := until(5*time.Second, func() bool { return cli.ContainerPause(ctx, engineID) == nil }); err != nil {
			return fmt.Errorf("pause: %w", err)
		}
		time.Sleep(gap)
		t0 := time.Now()
		if err := cli.ContainerUnpause(ctx, engineID); err != nil {
			return err
		}
		unpause = append(unpause, time.Since(t0))
		time.Sleep(gap)
	}
	fmt.Printf("container %.12s on bridge network %s, %d connections per mechanism, %s between pause and connect\n", id, runID, n, gap)
	fmt.Printf("%-22s %s\n", "engine unpause alone", summary(unpause))

	for _, mech := range mechs {
		port, err := freePort()
		if err != nil {
			return err
		}
		if err := measure(ctx, cli, bin, tmp, id, addr, mech, port, n, idle, gap, agentLog); err != nil {
			return fmt.Errorf("mechanism %s: %w", mech, err)
		}
	}
	fmt.Printf("load average: %s\n", hoststat.LoadAvg())
	return nil
}

// httpd starts a busybox httpd on the bench's network, opted in to the
// watchman if optIn, and returns its ID and address once it answers.
func httpd(ctx context.Context, cli *client.Client, runID, name string, optIn bool) (id, addr string, err error) {
	labels := map[string]string{"heartwood.test": runID}
	if optIn {
		labels["heartwood.watchman.enable"] = "true"
	}
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: image, Labels: labels,
		Cmd: []string{"sh", "-c", "mkdir -p /www && echo hello-wake > /www/index.html && exec httpd -f -p 8080 -h /www"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(runID)}, nil, nil, runID+"-"+name)
	if err != nil {
		return "", "", err
	}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return "", "", err
	}
	in, err := cli.ContainerInspect(ctx, resp.ID)
	if err != nil {
		return "", "", err
	}
	addr = net.JoinHostPort(in.NetworkSettings.Networks[runID].IPAddress, "8080")
	if err := until(10*time.Second, func() bool { _, err := get(addr); return err == nil }); err != nil {
		return "", "", fmt.Errorf("httpd never answered: %w", err)
	}
	return resp.ID, addr, nil
}

// measure runs the agent with wake-mechanism mech and makes n connections.
func measure(ctx context.Context, cli *client.Client, bin, tmp, id, addr, mech string, port, n int, idle, gap time.Duration, agentLog string) error {
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	dataDir := filepath.Join(tmp, "data-"+mech)
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "run", "--listen", listen, "--api-token", token, "--data-dir", dataDir, "--log-format", "json",
		"--registrar.enabled=false", "--shipper.enabled=false",
		"--watchman.kv-prefix=", "--watchman.es-interval=0", "--watchman.interval=10m",
		"--watchman.wake-mechanism="+mech)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return err
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		}
	}
	defer stop()
	// The log is read once the agent has stopped writing it.
	stopAndTail := func() []byte {
		stop()
		if agentLog != "" {
			if err := os.WriteFile(agentLog, logs.Bytes(), 0o644); err != nil {
				log.Printf("write the agent's log: %v", err)
			}
		}
		return tail(logs.Bytes(), 4096)
	}
	base := "http://" + listen
	if err := until(30*time.Second, func() bool { return state(base, id) == "active" || state(base, id) == "idle" }); err != nil {
		return fmt.Errorf("agent never tracked the container: %w\n%s", err, stopAndTail())
	}
	// The agent's own background (inventory events of the shared engine,
	// the API): CPU over the same window with nothing paused.
	used, err := hoststat.CPUDuring(cmd.Process.Pid, func() { time.Sleep(idle) })
	if err != nil {
		return fmt.Errorf("agent CPU: %w", err)
	}
	fmt.Printf("%-22s agent CPU, nothing paused:           %s\n", mech, cpuShare(used, idle))
	var lat []time.Duration
	var connects []time.Time
	mechSeen := ""
	for i := range n {
		if err := until(30*time.Second, func() bool { return apiPause(base, id) == nil }); err != nil {
			return fmt.Errorf("try %d: pause: %v", i, apiPause(base, id))
		}
		// The gap varies by up to 50 ms (deterministically), so that the
		// connections do not all land at the same phase of a polling
		// watch's 50 ms ticker.
		jitter := time.Duration(i*37%50) * time.Millisecond
		if i == 0 {
			time.Sleep(gap)
			mechSeen = mechanism(base)
			// Idle CPU: paused, nothing connects.
			used, err := hoststat.CPUDuring(cmd.Process.Pid, func() { time.Sleep(idle) })
			if err != nil {
				return fmt.Errorf("agent CPU: %w", err)
			}
			fmt.Printf("%-22s agent CPU, paused, nothing connects: %s\n", mech, cpuShare(used, idle))
		} else {
			time.Sleep(gap + jitter)
		}
		connects = append(connects, time.Now())
		d, err := get(addr)
		if err != nil {
			return fmt.Errorf("try %d: GET: %w\nthe agent's log, last lines:\n%s", i, err, stopAndTail())
		}
		lat = append(lat, d)
		if err := until(10*time.Second, func() bool { return state(base, id) == "active" }); err != nil {
			return fmt.Errorf("try %d: not active after the wake\nthe agent's log, last lines:\n%s", i, stopAndTail())
		}
	}
	stop() // the logs are complete
	fmt.Printf("%-22s connect → first reply byte %s (watch mechanism %s)\n", mech, summary(lat), mechSeen)
	detected := detections(logs.Bytes())
	if len(detected) != len(connects) {
		return fmt.Errorf("%d connections, %d detections in the agent's log", len(connects), len(detected))
	}
	var det []time.Duration
	for i := range connects {
		det = append(det, detected[i].Sub(connects[i]))
	}
	fmt.Printf("%-22s connect → agent notices %s (log time stamps, ms resolution)\n", mech, summary(det))
	return nil
}

// detections returns the times of the agent's "connection to paused
// container" log lines, in order.
func detections(logs []byte) []time.Time {
	var out []time.Time
	sc := bufio.NewScanner(bytes.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "connection to paused container; waking it" {
			out = append(out, l.Time)
		}
	}
	return out
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func cpuShare(cpu, over time.Duration) string {
	return fmt.Sprintf("%.2f%% of a core over %s (%d ms)", 100*cpu.Seconds()/over.Seconds(), over, cpu.Milliseconds())
}

// tail returns the last n bytes of b, from a line start.
func tail(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[len(b)-n:]
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

// get connects, sends a GET and returns the time to the reply's first byte.
func get(addr string) (time.Duration, error) {
	t0 := time.Now()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		return 0, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	_, _ = io.Copy(io.Discard, c)
	return d, nil
}

func apiPause(base, id string) error {
	req, _ := http.NewRequest("POST", base+"/v1/containers/"+id+"/pause?reason=bench", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("X-Heartwood-Request", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	return nil
}

// state is the watchman's state of the container, "" if unknown.
func state(base, id string) string {
	resp, err := http.Get(base + "/v1/containers/" + id)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var v struct {
		Subsystems struct {
			Watchman struct {
				State string `json:"state"`
			} `json:"watchman"`
		} `json:"subsystems"`
	}
	if json.NewDecoder(resp.Body).Decode(&v) != nil {
		return ""
	}
	return v.Subsystems.Watchman.State
}

// mechanism reads the mechanism label of the agent's connection_watch
// series.
func mechanism(base string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "heartwood_watchman_connection_watch{") {
			if i := strings.Index(l, `mechanism="`); i >= 0 {
				rest := l[i+len(`mechanism="`):]
				return rest[:strings.IndexByte(rest, '"')]
			}
		}
	}
	return "none"
}

func summary(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	q := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	r := func(x time.Duration) string { return x.Round(100 * time.Microsecond).String() }
	return fmt.Sprintf("n=%d p50 %s p99 %s max %s", len(s), r(q(0.50)), r(q(0.99)), r(s[len(s)-1]))
}

func until(timeout time.Duration, f func() bool) error {
	end := time.Now().Add(timeout)
	for !f() {
		if time.Now().After(end) {
			return fmt.Errorf("timed out after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

func cleanup(cli *client.Client, runID string) {
	ctx := context.Background()
	list, _ := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "heartwood.test="+runID))})
	for _, c := range list {
		_ = cli.ContainerUnpause(ctx, c.ID)
		_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
	_ = cli.NetworkRemove(ctx, runID)
}
