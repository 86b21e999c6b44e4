// Command latency measures the registrar as users run it: the real
// bin/heartwood (shipper and watchman off) against the shared dockerd and
// Consul agent, from Docker's event time (the start/die event's timeNano) to
// the service appearing in / disappearing from Consul's catalog.
//
//	go run ./bench/registrar/latency -n 200
//	go run ./bench/registrar/latency -n 200 -bin bin/heartwood-old,bin/heartwood
//
// For each binary it runs n containers one at a time (a published port, so
// the registrar registers them by default): the container starts, the
// harness waits for its service in the catalog, kills it, waits for the
// service to leave the catalog and removes it. Catalog visibility is
// observed with a Consul blocking query on /v1/catalog/service/<name> that is
// parked before the container starts: Consul answers it the moment the
// write's index is committed, so the observer adds only the delivery of one
// HTTP response on loopback (and that same cost is in the Consul-only
// figure below, which bounds it).
//
// With -breakdown (the default) each binary is measured a second time
// through a timing proxy in front of Consul, which splits every
// registration into event → PUT sent (Docker event delivery, the
// inventory's inspect and the registrar's own work), the PUT's round trip
// (Consul's write), and PUT answered → in catalog (Consul's sync of the
// agent's service into its catalog). -consul-only n measures Consul alone:
// a PUT /v1/agent/service/register and a deregister of a plain service, with
// the same observer.
//
// Every container carries the label heartwood.test=<run id> and is removed
// at the end; the agent deregisters its services when it stops.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
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
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/bench/internal/hoststat"
	"github.com/heartwood-ops/heartwood/bench/registrar/catalogwatch"
)

const (
	image    = "heartwood-test/busybox:latest"
	labelKey = "heartwood.test"
)

func main() {
	n := flag.Int("n", 200, "containers started (and killed) one at a time per binary")
	bins := flag.String("bin", "bin/heartwood", "agent binaries to compare, comma-separated")
	consulAddr := flag.String("consul", "127.0.0.1:8500", "the local Consul agent")
	breakdown := flag.Bool("breakdown", true, "also run each binary through a timing proxy in front of Consul to split the latency")
	consulOnly := flag.Int("consul-only", 200, "Consul-only registrations measured (0 skips)")
	flag.Parse()
	if err := run(*n, strings.Split(*bins, ","), *consulAddr, *breakdown, *consulOnly); err != nil {
		log.Fatal(err)
	}
}

func run(n int, bins []string, consulAddr string, breakdown bool, consulOnly int) error {
	// Ctrl-C stops the run: the figures so far are printed and everything
	// created is removed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	docker, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	defer docker.Close()
	if _, err := docker.ImageInspect(ctx, image); err != nil {
		return fmt.Errorf("image %s missing (any testenv.Busybox test builds it): %w", image, err)
	}
	cc := consulapi.DefaultConfig()
	cc.Address = consulAddr
	consul, err := consulapi.NewClient(cc)
	if err != nil {
		return err
	}
	if _, err := consul.Agent().Self(); err != nil {
		return fmt.Errorf("consul at %s: %w", consulAddr, err)
	}
	runID := fmt.Sprintf("reglat-%d", time.Now().UnixNano())
	defer removeLabelled(docker, runID)
	h := &harness{docker: docker, consul: consul, consulAddr: consulAddr, runID: runID}
	fmt.Printf("run %s, %d starts per binary, load average %s\n", runID, n, hoststat.LoadAvg())

	if consulOnly > 0 {
		if err := h.consulAlone(ctx, consulOnly); err != nil {
			return err
		}
	}
	for i, bin := range bins {
		for _, split := range []bool{false, true} {
			if split && !breakdown {
				continue
			}
			if err := h.measure(ctx, fmt.Sprintf("b%d", i), bin, n, split); err != nil {
				return fmt.Errorf("%s: %w", bin, err)
			}
		}
	}
	fmt.Printf("load average at the end %s\n", hoststat.LoadAvg())
	return nil
}

type harness struct {
	docker     *client.Client
	consul     *consulapi.Client
	consulAddr string
	runID      string
}

// parked starts watch in a goroutine, waits until its query is parked and
// returns a channel that yields the time the state was seen.
func (h *harness) parked(ctx context.Context, name, node string, present bool) (<-chan time.Time, <-chan error) {
	ready := make(chan struct{})
	seen := make(chan time.Time, 1)
	errc := make(chan error, 1)
	go func() {
		t, err := catalogwatch.Watch(ctx, h.consul, name, node, present, ready)
		if err != nil {
			errc <- err
			return
		}
		seen <- t
	}()
	select {
	case <-ready:
	case err := <-errc:
		errc <- err
	}
	return seen, errc
}

func wait(seen <-chan time.Time, errc <-chan error) (time.Time, error) {
	select {
	case t := <-seen:
		return t, nil
	case err := <-errc:
		return time.Time{}, err
	case <-time.After(30 * time.Second):
		return time.Time{}, errors.New("not seen in the catalog within 30s")
	}
}

// consulAlone measures Consul's own part: the agent's register and
// deregister round trips, and from sending them to the catalog showing it.
func (h *harness) consulAlone(ctx context.Context, n int) error {
	node := "hwlat-consul-" + h.runID
	var put, putSeen, del, delSeen []time.Duration
	for i := range n {
		name := fmt.Sprintf("%s-consul-%d", h.runID, i)
		id := node + ":" + name
		seen, errc := h.parked(ctx, name, node, true)
		reg := &consulapi.AgentServiceRegistration{ID: id, Name: name, Address: "127.0.0.1", Port: 80,
			Meta: map[string]string{"heartwood_node": node}}
		t0 := time.Now()
		if err := h.consul.Agent().ServiceRegister(reg); err != nil {
			return err
		}
		put = append(put, time.Since(t0))
		at, err := wait(seen, errc)
		if err != nil {
			return fmt.Errorf("consul-only register %s: %w", name, err)
		}
		putSeen = append(putSeen, at.Sub(t0))

		seen, errc = h.parked(ctx, name, node, false)
		t0 = time.Now()
		if err := h.consul.Agent().ServiceDeregister(id); err != nil {
			return err
		}
		del = append(del, time.Since(t0))
		at, err = wait(seen, errc)
		if err != nil {
			return fmt.Errorf("consul-only deregister %s: %w", name, err)
		}
		delSeen = append(delSeen, at.Sub(t0))
	}
	fmt.Printf("\nConsul alone, n=%d (PUT /v1/agent/service/register and deregister of a plain service)\n", n)
	row("  register PUT round trip", put)
	row("  register PUT sent → in catalog", putSeen)
	row("  deregister PUT round trip", del)
	row("  deregister PUT sent → gone from catalog", delSeen)
	return nil
}

// measure runs one binary for n starts and prints its figures.
func (h *harness) measure(ctx context.Context, tag, bin string, n int, split bool) error {
	variant := "direct to Consul"
	consulAddr := h.consulAddr
	var tp *timingProxy
	if split {
		variant = "through the timing proxy"
		var err error
		if tp, err = newTimingProxy(h.consulAddr); err != nil {
			return err
		}
		defer tp.close()
		consulAddr = tp.addr
	}
	node := fmt.Sprintf("hwlat-%s-%s", tag, h.runID)
	if split {
		node += "-p"
	}
	label := labelKey + "=" + h.runID + "-" + tag
	ag, err := startAgent(ctx, bin, node, label, consulAddr)
	if err != nil {
		return err
	}
	defer ag.stop()

	evCtx, evCancel := context.WithCancel(ctx)
	defer evCancel()
	msgs, evErrs := h.docker.Events(evCtx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("event", "start"), filters.Arg("event", "die"),
		filters.Arg("label", label))})
	// Events are stamped when they reach this process, to show Docker's
	// own delivery delay (event time → a subscriber has it).
	type stamped struct {
		m  events.Message
		at time.Time
	}
	got := make(chan stamped, 1024)
	var evWG sync.WaitGroup
	evWG.Add(1)
	go func() {
		defer evWG.Done()
		for {
			select {
			case m := <-msgs:
				select {
				case got <- stamped{m, time.Now()}:
				case <-evCtx.Done():
					return
				}
			case <-evCtx.Done():
				return
			}
		}
	}()
	defer evWG.Wait()
	defer evCancel()
	nextEvent := func(id string, action events.Action) (events.Message, time.Time, error) {
		timeout := time.After(30 * time.Second)
		for {
			select {
			case e := <-got:
				if e.m.Actor.ID == id && e.m.Action == action {
					return e.m, e.at, nil
				}
			case err := <-evErrs:
				return events.Message{}, time.Time{}, err
			case <-timeout:
				return events.Message{}, time.Time{}, fmt.Errorf("no %s event for %.12s", action, id)
			}
		}
	}
	before, err := ag.histogram("heartwood_registrar_event_to_registered_seconds")
	if err != nil {
		return err
	}
	// The inventory handles every container's events one after the other
	// (with an inspect for most): other activity on the engine delays ours.
	const dockerEvents = "heartwood_inventory_docker_events_total"
	events0, err := ag.counterSum(dockerEvents)
	if err != nil {
		return err
	}
	var up, gone, toPut, putRT, putToSeen, toDel, toGet, getRT, getToPut, startDelivered, dieDelivered []time.Duration
	defer func() {
		// Also after a failure or Ctrl-C: the starts measured so far.
		fmt.Printf("\n%s (%s), %d of %d starts, load average %s\n", bin, variant, len(up), n, hoststat.LoadAvg())
		row("  start event → in catalog", up)
		row("  die event → gone from catalog", gone)
		row("  start event → delivered to a subscriber (Docker)", startDelivered)
		row("  die event → delivered to a subscriber (Docker)", dieDelivered)
		if events1, err := ag.counterSum(dockerEvents); err == nil {
			fmt.Printf("  Docker events the agent's inventory handled: %.0f (this run's containers: 5 per cycle, %d)\n", events1-events0, 5*len(up))
		}
		if after, err := ag.histogram("heartwood_registrar_event_to_registered_seconds"); err == nil {
			if c := after.count - before.count; c > 0 {
				fmt.Printf("  registrar's own inventory change → write answered (its metric): mean %s over %d writes\n",
					fmtDur(time.Duration((after.sum-before.sum)/float64(c)*float64(time.Second))), c)
			}
		}
		if tp != nil {
			row("  start event → register PUT sent (Docker, inventory, registrar)", toPut)
			row("    of which start event → ownership GET sent", toGet)
			row("    of which ownership GET round trip (Consul)", getRT)
			row("    of which GET answered → PUT sent (registrar)", getToPut)
			row("  register PUT round trip (Consul)", putRT)
			row("  register PUT answered → in catalog (Consul)", putToSeen)
			row("  die event → deregister PUT sent (Docker, inventory, registrar)", toDel)
			fmt.Printf("  Consul requests per start/kill cycle: %s\n", tp.summary(max(len(up), 1)))
		}
	}()
	for i := range n {
		name := fmt.Sprintf("%s-%s-%d", h.runID, tag, i)
		if split {
			name += "-p"
		}
		seen, errc := h.parked(ctx, name, node, true)
		id, err := h.create(ctx, name, label)
		if err != nil {
			return err
		}
		start, startAt, err := nextEvent(id, events.ActionStart)
		if err != nil {
			return err
		}
		startDelivered = append(startDelivered, startAt.Sub(time.Unix(0, start.TimeNano)))
		at, err := wait(seen, errc)
		if err != nil {
			return fmt.Errorf("%s registered: %w", name, err)
		}
		evAt := time.Unix(0, start.TimeNano)
		up = append(up, at.Sub(evAt))
		if tp != nil {
			if w, get, ok := tp.take(http.MethodPut, "/v1/agent/service/register", "/v1/agent/service/<id>"); ok {
				toPut = append(toPut, w.sent.Sub(evAt))
				putRT = append(putRT, w.answered.Sub(w.sent))
				putToSeen = append(putToSeen, at.Sub(w.answered))
				if !get.sent.IsZero() {
					toGet = append(toGet, get.sent.Sub(evAt))
					getRT = append(getRT, get.answered.Sub(get.sent))
					getToPut = append(getToPut, w.sent.Sub(get.answered))
				}
			}
		}

		seen, errc = h.parked(ctx, name, node, false)
		if err := h.docker.ContainerKill(ctx, id, "KILL"); err != nil {
			return err
		}
		die, dieAt, err := nextEvent(id, events.ActionDie)
		if err != nil {
			return err
		}
		dieDelivered = append(dieDelivered, dieAt.Sub(time.Unix(0, die.TimeNano)))
		at, err = wait(seen, errc)
		if err != nil {
			return fmt.Errorf("%s deregistered: %w", name, err)
		}
		gone = append(gone, at.Sub(time.Unix(0, die.TimeNano)))
		if tp != nil {
			if w, _, ok := tp.take(http.MethodPut, "/v1/agent/service/deregister/", ""); ok {
				toDel = append(toDel, w.sent.Sub(time.Unix(0, die.TimeNano)))
			}
			tp.reset()
		}
		_ = h.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})
	}
	return nil
}

// create makes and starts a container with a published port.
func (h *harness) create(ctx context.Context, name, label string) (string, error) {
	k, v, _ := strings.Cut(label, "=")
	cfg := &container.Config{Image: image, Cmd: []string{"sleep", "3600"}, Env: []string{"SERVICE_NAME=" + name},
		Labels: map[string]string{k: v}, ExposedPorts: nat.PortSet{"80/tcp": {}}}
	hc := &container.HostConfig{PortBindings: nat.PortMap{"80/tcp": {{HostIP: "127.0.0.1"}}}}
	created, err := h.docker.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", name, err)
	}
	if err := h.docker.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return created.ID, fmt.Errorf("start %s: %w", name, err)
	}
	return created.ID, nil
}

// agent is a running bin/heartwood.
type agent struct {
	cmd  *exec.Cmd
	api  string
	dir  string
	done chan error
}

func startAgent(ctx context.Context, bin, node, label, consulAddr string) (*agent, error) {
	dir, err := os.MkdirTemp("", "hwlat-")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	a := &agent{api: fmt.Sprintf("127.0.0.1:%d", port), dir: dir, done: make(chan error, 1)}
	// As users run it: info logs (one line per registration), here into
	// a file that is shown if the agent fails.
	logf, err := os.Create(filepath.Join(dir, "agent.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	defer logf.Close()
	a.cmd = exec.Command(bin, "run", "--listen", a.api, "--data-dir", filepath.Join(dir, "data"), "--node-name", node,
		"--consul-addr", consulAddr,
		"--shipper.enabled=false", "--watchman.enabled=false",
		"--registrar.require-labels", label, "--registrar.ip", "127.0.0.1",
		"--registrar.deregister-on-shutdown")
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	go func() { a.done <- a.cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + a.api + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return a, nil
			}
		}
		select {
		case err := <-a.done:
			a.done <- err
			out, _ := os.ReadFile(logf.Name())
			a.stop()
			return nil, fmt.Errorf("agent exited before it was ready: %v\n%s", err, out)
		case <-ctx.Done():
			a.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			a.stop()
			return nil, errors.New("agent not ready within 60s")
		}
	}
}

func (a *agent) stop() {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	os.RemoveAll(a.dir)
}

type histo struct {
	count uint64
	sum   float64
}

// histogram reads one unlabelled histogram's count and sum from /metrics.
func (a *agent) histogram(name string) (histo, error) {
	resp, err := http.Get("http://" + a.api + "/metrics")
	if err != nil {
		return histo{}, err
	}
	defer resp.Body.Close()
	var h histo
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, name+"_count "):
			h.count, _ = strconv.ParseUint(strings.TrimPrefix(line, name+"_count "), 10, 64)
		case strings.HasPrefix(line, name+"_sum "):
			h.sum, _ = strconv.ParseFloat(strings.TrimPrefix(line, name+"_sum "), 64)
		}
	}
	return h, sc.Err()
}

// counterSum adds up every series of a counter from /metrics.
func (a *agent) counterSum(name string) (float64, error) {
	resp, err := http.Get("http://" + a.api + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum, sc.Err()
}

// timingProxy forwards to Consul and records when each request arrived and
// when its answer was sent back.
type timingProxy struct {
	addr string
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup

	mu     sync.Mutex
	timed  []*timed
	counts map[string]int
}

// stamp records when the proxied answer starts to go back to the client.
type stamp struct {
	http.ResponseWriter
	at   func(time.Time)
	done bool
}

func (s *stamp) stampOnce() {
	if !s.done {
		s.done = true
		s.at(time.Now())
	}
}

func (s *stamp) WriteHeader(code int) {
	s.stampOnce()
	s.ResponseWriter.WriteHeader(code)
}

func (s *stamp) Write(b []byte) (int, error) {
	s.stampOnce()
	return s.ResponseWriter.Write(b)
}

type timed struct {
	method, path   string
	sent, answered time.Time
}

func newTimingProxy(target string) (*timingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	u := &url.URL{Scheme: "http", Host: target}
	rp := httputil.NewSingleHostReverseProxy(u)
	p := &timingProxy{addr: ln.Addr().String(), ln: ln, counts: map[string]int{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t := &timed{method: r.Method, path: r.URL.Path, sent: time.Now()}
		p.mu.Lock()
		p.timed = append(p.timed, t)
		p.counts[r.Method+" "+pathKey(r.URL.Path)]++
		p.mu.Unlock()
		// The answer time is taken before the body is written: the
		// observer may see the catalog change as soon as the client has it.
		rec := &stamp{ResponseWriter: w, at: func(at time.Time) { p.mu.Lock(); t.answered = at; p.mu.Unlock() }}
		rp.ServeHTTP(rec, r)
		rec.stampOnce()
	})}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); _ = p.srv.Serve(ln) }()
	return p, nil
}

// pathKey groups per-service paths: /v1/agent/service/<id>,
// /v1/agent/service/deregister/<id>.
func pathKey(path string) string {
	for _, prefix := range []string{"/v1/agent/service/deregister/", "/v1/agent/service/maintenance/", "/v1/agent/check/update/", "/v1/agent/service/"} {
		if rest, ok := strings.CutPrefix(path, prefix); ok && rest != "register" {
			return prefix + "<id>"
		}
	}
	return path
}

// take returns the first recorded request with the method and path prefix
// that has been answered, and the request just before it if it went to
// prev (the registrar's ownership check before a registration). It waits
// up to a second for the answer to be stamped.
func (p *timingProxy) take(method, prefix, prev string) (t, before timed, ok bool) {
	deadline := time.Now().Add(time.Second)
	for {
		p.mu.Lock()
		for i, r := range p.timed {
			if r.method != method || !strings.HasPrefix(r.path, prefix) || r.answered.IsZero() {
				continue
			}
			t, ok = *r, true
			if i > 0 && prev != "" && pathKey(p.timed[i-1].path) == prev {
				before = *p.timed[i-1]
			}
			p.timed = slices.Delete(p.timed, i, i+1)
			break
		}
		p.mu.Unlock()
		if ok || time.Now().After(deadline) {
			return t, before, ok
		}
		time.Sleep(time.Millisecond)
	}
}

func (p *timingProxy) reset() {
	p.mu.Lock()
	p.timed = nil
	p.mu.Unlock()
}

// summary gives the requests per cycle by method and path, the agent's
// periodic reads included.
func (p *timingProxy) summary(cycles int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	keys := make([]string, 0, len(p.counts))
	for k := range p.counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f", k, float64(p.counts[k])/float64(cycles))
	}
	return b.String()
}

func (p *timingProxy) close() {
	_ = p.srv.Close()
	p.wg.Wait()
}

func row(what string, d []time.Duration) {
	if len(d) == 0 {
		fmt.Printf("%s: no samples\n", what)
		return
	}
	s := slices.Clone(d)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }
	fmt.Printf("%-66s p50 %s  p99 %s  max %s  (n=%d)\n", what+":", fmtDur(pct(.5)), fmtDur(pct(.99)), fmtDur(s[len(s)-1]), len(s))
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// removeLabelled removes every container of this run.
func removeLabelled(docker *client.Client, runID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	list, err := docker.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		log.Printf("cleanup: %v", err)
		return
	}
	for _, c := range list {
		if strings.HasPrefix(c.Labels[labelKey], runID) {
			_ = docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
		}
	}
}
