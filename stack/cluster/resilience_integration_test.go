//go:build integration

package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// agentUp reports whether node's Heartwood agent answers /healthz, and why
// not.
func agentUp(node string) (bool, string) {
	up, _, why := probeAgent(node)
	return up, why
}

// probeAgent asks node's agent for /healthz: up, or not and whether the
// probe only timed out (a stalled process on a loaded machine, not yet
// evidence that no agent runs), with the reason.
func probeAgent(node string) (up, timedOut bool, why string) {
	resp, err := httpShort.Get("http://" + env.ip[node] + ":9321/healthz")
	if err != nil {
		var ne net.Error
		return false, errors.As(err, &ne) && ne.Timeout(), err.Error()
	}
	resp.Body.Close()
	return resp.StatusCode == 200, false, resp.Status
}

// hungAfter is how long an agent may leave /healthz unanswered (timeouts,
// not refusals) before it counts as down from its first missed answer.
const hungAfter = 3 * time.Second

var httpShort = &http.Client{Timeout: time.Second}

// TestIntegrationClusterRollingUpgrade: docker service update --image of
// Heartwood node by node while containers log steadily and churn: no line
// lost or duplicated, registrations never absent, at most one agent down.
func TestIntegrationClusterRollingUpgrade(t *testing.T) {
	requireCluster(t)
	runID := testenv.RunID()
	steadyName, churnName := "steady-"+runID[:6], "churn-"+runID[:6]

	// A second image: the same agent, another image ID.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := "printf 'FROM heartwood:cluster\\nLABEL org.heartwood.build=upgrade\\n' | docker build -q -t heartwood:cluster-upgrade -"
	if out, err := run(ctx, "bash", "-c", build); err != nil {
		t.Fatalf("build upgrade image: %v\n%s", err, out)
	}
	sh(t, "load", "heartwood:cluster-upgrade")

	var mu sync.Mutex
	logged := map[string]string{} // container → node
	steady := map[string]string{}
	for _, n := range env.nodes {
		id := startOn(t, n, runID, steadyName, false, loggerCmd("steady-"+n, "0.05", 0))
		steady[id] = n
		logged[id] = n
	}
	waitRegistered := func() error {
		for _, n := range env.nodes {
			svcs, err := agentServices(n)
			if err != nil {
				return err
			}
			found := 0
			for _, s := range svcs {
				if s.Service == steadyName {
					found++
				}
			}
			if found != 1 {
				return fmt.Errorf("%s: %d %s registrations", n, found, steadyName)
			}
		}
		return nil
	}
	if _, err := waitFor(15*time.Second, 100*time.Millisecond, waitRegistered); err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Churn: on every node, short-lived registered containers that log 20
	// lines each, one after the other.
	churned := 0
	for _, n := range env.nodes {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := startOn(t, n, runID, churnName, false, loggerCmd(fmt.Sprintf("churn-%s-%d", n, i), "0.05", 20))
				mu.Lock()
				logged[id] = n
				churned++
				mu.Unlock()
				time.Sleep(500 * time.Millisecond)
			}
		}(n)
	}
	// Watch: every agent's /healthz (one poller per node, down intervals
	// recorded) and the steady registrations on every node's agent. An agent
	// is down while nothing answers on its port (refused, or not 200), or
	// once it leaves probes unanswered for hungAfter; shorter stalls are
	// counted and reported apart.
	type interval struct{ from, to time.Time }
	downs := map[string][]interval{}
	stalls := map[string]int{}
	samples, absent := 0, 0
	var absentWhat []string
	for _, n := range env.nodes {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			var downSince, slowSince time.Time
			for {
				select {
				case <-stop:
					if !downSince.IsZero() {
						mu.Lock()
						downs[n] = append(downs[n], interval{downSince, time.Now()})
						mu.Unlock()
					}
					return
				case <-time.After(100 * time.Millisecond):
				}
				up, timedOut, why := probeAgent(n)
				now := time.Now()
				switch {
				case up:
					mu.Lock()
					if !downSince.IsZero() {
						downs[n] = append(downs[n], interval{downSince, now})
					} else if !slowSince.IsZero() {
						stalls[n]++
					}
					mu.Unlock()
					downSince, slowSince = time.Time{}, time.Time{}
				case timedOut:
					if slowSince.IsZero() {
						slowSince = now
					}
					if downSince.IsZero() && now.Sub(slowSince) >= hungAfter {
						downSince = slowSince
						t.Logf("%s agent hung since %s: %s", n, downSince.Format("15:04:05.000"), why)
					}
				case downSince.IsZero():
					downSince = now
					if !slowSince.IsZero() {
						downSince = slowSince
					}
					t.Logf("%s agent down at %s: %s", n, downSince.Format("15:04:05.000"), why)
				}
			}
		}(n)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			err := waitRegistered()
			mu.Lock()
			samples++
			if err != nil {
				absent++
				absentWhat = append(absentWhat, err.Error())
			}
			mu.Unlock()
		}
	}()

	time.Sleep(3 * time.Second)
	start := time.Now()
	// From whichever of the two images runs now to the other one.
	target := "heartwood:cluster-upgrade"
	if cur, _, err := manager(t).ServiceInspectWithRaw(context.Background(), hwService, swarm.ServiceInspectOptions{}); err != nil {
		t.Fatal(err)
	} else if strings.HasPrefix(cur.Spec.TaskTemplate.ContainerSpec.Image, target) {
		target = "heartwood:cluster"
	}
	dockerCLI(t, env.nodes[0], "service", "update", "--detach", "--image", target, hwService)
	var state string
	if _, err := waitFor(5*time.Minute, 500*time.Millisecond, func() error {
		svc, _, err := manager(t).ServiceInspectWithRaw(context.Background(), hwService, swarm.ServiceInspectOptions{})
		if err != nil {
			return err
		}
		if svc.UpdateStatus == nil {
			return fmt.Errorf("update not started")
		}
		state = string(svc.UpdateStatus.State)
		if state == "updating" {
			return fmt.Errorf("updating")
		}
		return nil
	}); err != nil {
		t.Fatalf("rolling update did not finish: %v", err)
	}
	upgradeTook := time.Since(start)
	if all, err := manager(t).TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", hwService))}); err == nil {
		ids := idToNode(t)
		for _, tk := range all {
			t.Logf("task %s on %s image %s desired %s state %s at %s err %q exit %d", tk.ID[:8], ids[tk.NodeID], tk.Spec.ContainerSpec.Image, tk.DesiredState, tk.Status.State, tk.Status.Timestamp.Format("15:04:05.000"), tk.Status.Err, tk.Status.ContainerStatus.ExitCode)
		}
	}
	if state != "completed" {
		t.Errorf("rolling update ended %q, want completed", state)
	}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()

	// Most agents down at one moment: sweep the recorded intervals.
	maxDown := 0
	var downSeen []string
	for n, ivs := range downs {
		downSeen = append(downSeen, fmt.Sprintf("%s %d×", n, len(ivs)))
		for _, iv := range ivs {
			at := iv.from
			c := 0
			for _, ivs2 := range downs {
				for _, iv2 := range ivs2 {
					if !iv2.from.After(at) && iv2.to.After(at) {
						c++
					}
				}
			}
			maxDown = max(maxDown, c)
		}
	}
	sort.Strings(downSeen)

	ids := idToNode(t)
	tasks := runningTasks(t, hwService)
	per := map[string]int{}
	for _, tk := range tasks {
		if img := tk.Spec.ContainerSpec.Image; img != target && !strings.HasPrefix(img, target+"@") {
			t.Errorf("task on %s still runs %s", ids[tk.NodeID], tk.Spec.ContainerSpec.Image)
		}
		per[ids[tk.NodeID]]++
	}
	for _, n := range env.nodes {
		if per[n] != 1 {
			t.Errorf("after the upgrade %s runs %d Heartwood tasks", n, per[n])
		}
	}
	// Stop the steady loggers so their logs end, then count.
	for id, n := range steady {
		to := 0
		_ = dockerOf(t, n).ContainerStop(context.Background(), id, container.StopOptions{Timeout: &to})
	}
	// Wait for the last churners to finish writing.
	time.Sleep(2 * time.Second)
	c := shippedExactlyOnce(t, logged, 2*time.Minute)
	if maxDown > 1 {
		t.Errorf("%d agents were down at the same time, want at most 1", maxDown)
	}
	if absent > 0 {
		t.Errorf("steady registrations absent in %d of %d samples: %v", absent, samples, absentWhat[:min(3, len(absentWhat))])
	}
	t.Logf("FIGURE rolling upgrade over %d nodes took %s; agent down intervals: %v, at most %d down at once; stalls under %s without a refusal: %v; steady registrations absent in %d of %d samples; %d churn containers; lines expected %d, shipped %d, lost %d, duplicated %d",
		len(env.nodes), upgradeTook.Round(time.Second), downSeen, maxDown, hungAfter, stalls, absent, samples, churned, c.Expected, c.Shipped, c.Lost, c.Duplicated)
}

// catalogOf returns, for Consul service name, the instances in the catalog
// (all health states) as node → task IDs, and the passing ones.
func catalogOf(asker, name string) (all, pass map[string][]string, err error) {
	var entries []healthEntry
	if err := getJSON("http://"+env.ip[asker]+":8500/v1/health/service/"+name+"?stale=1", &entries); err != nil {
		return nil, nil, err
	}
	all, pass = map[string][]string{}, map[string][]string{}
	for _, e := range entries {
		task := e.Service.Meta["swarm_task_id"]
		all[e.Node.Node] = append(all[e.Node.Node], task)
		ok := true
		for _, c := range e.Checks {
			if c.Status != "passing" {
				ok = false
			}
		}
		if ok {
			pass[e.Node.Node] = append(pass[e.Node.Node], task)
		}
	}
	return all, pass, nil
}

// swarmPlacement returns node → running task IDs of service.
func swarmPlacement(t *testing.T, service string) map[string][]string {
	ids := idToNode(t)
	out := map[string][]string{}
	for _, tk := range runningTasks(t, service) {
		out[ids[tk.NodeID]] = append(out[ids[tk.NodeID]], tk.ID)
	}
	return out
}

func samePlacement(a, b map[string][]string) bool {
	norm := func(m map[string][]string) string {
		var parts []string
		for n, ts := range m {
			ts = append([]string(nil), ts...)
			sort.Strings(ts)
			parts = append(parts, n+"="+strings.Join(ts, ","))
		}
		sort.Strings(parts)
		return strings.Join(parts, ";")
	}
	return norm(a) == norm(b)
}

// TestIntegrationClusterNodeLoss: a worker is lost abruptly (cable pulled,
// every process killed) and comes back with its disks.
func TestIntegrationClusterNodeLoss(t *testing.T) {
	requireCluster(t)
	victim := env.nodes[len(env.nodes)-1] // a worker without the data label
	asker := env.nodes[0]
	runID := testenv.RunID()
	logged := map[string]string{}
	for _, n := range []string{asker, victim} {
		id := startOn(t, n, runID, "loss-"+runID[:6], false, loggerCmd("loss-"+n, "0.05", 0))
		logged[id] = n
	}
	services := map[string]string{webService: "web", trainService: "trainer"}
	for svc := range services {
		if len(swarmPlacement(t, svc)[victim]) == 0 {
			t.Fatalf("no %s task on %s before the loss: %v", svc, victim, swarmPlacement(t, svc))
		}
	}
	time.Sleep(3 * time.Second) // lines shipped and checkpointed before the loss

	// The catalog is right when, for every service, the passing instances
	// are exactly Swarm's running tasks, none on the lost node.
	catalogRight := func(lost bool) error {
		for svc, name := range services {
			want := swarmPlacement(t, svc)
			if lost && len(want[victim]) > 0 {
				return fmt.Errorf("Swarm still runs %s on %s", svc, victim)
			}
			total := 0
			for _, ts := range want {
				total += len(ts)
			}
			if total != 3 {
				return fmt.Errorf("Swarm runs %d tasks of %s", total, svc)
			}
			all, pass, err := catalogOf(asker, name)
			if err != nil {
				return err
			}
			if !samePlacement(pass, want) {
				return fmt.Errorf("%s: passing %v, Swarm runs %v", name, pass, want)
			}
			if !lost && !samePlacement(all, want) {
				return fmt.Errorf("%s: catalog %v (stale entries), Swarm runs %v", name, all, want)
			}
		}
		return nil
	}
	if _, err := waitFor(30*time.Second, 250*time.Millisecond, func() error { return catalogRight(false) }); err != nil {
		t.Fatalf("catalog not right before the loss: %v", err)
	}

	lossAt := time.Now()
	sh(t, "stop", victim)
	// Swarm's own part: when it saw the node down.
	var nodeDown time.Duration
	lossConverge, err := waitFor(3*time.Minute, 250*time.Millisecond, func() error {
		if nodeDown == 0 {
			ns, err := manager(t).NodeList(context.Background(), swarm.NodeListOptions{})
			if err != nil {
				return err
			}
			for _, n := range ns {
				if n.Description.Hostname == victim && n.Status.State == swarm.NodeStateDown {
					nodeDown = time.Since(lossAt)
				}
			}
		}
		return catalogRight(true)
	})
	if err != nil {
		t.Errorf("catalog not right %s after losing %s: %v", lossConverge.Round(time.Second), victim, err)
	}
	time.Sleep(3 * time.Second)

	sh(t, "start", victim)
	backConverge, err := waitFor(3*time.Minute, 250*time.Millisecond, func() error {
		if len(swarmPlacement(t, hwService)[victim]) != 1 {
			return fmt.Errorf("no Heartwood task running on %s yet", victim)
		}
		if up, why := agentUp(victim); !up {
			return fmt.Errorf("%s's agent not answering: %s", victim, why)
		}
		if err := catalogRight(false); err != nil {
			return err
		}
		return noStale(t, victim)
	})
	if err != nil {
		t.Errorf("catalog not converged %s after %s returned: %v", backConverge.Round(time.Second), victim, err)
	}
	for id, n := range logged {
		if n != victim {
			to := 0
			_ = dockerOf(t, n).ContainerStop(context.Background(), id, container.StopOptions{Timeout: &to})
		}
	}
	c := shippedExactlyOnce(t, logged, 2*time.Minute)
	t.Logf("FIGURE node loss (%s): Swarm marked it down after %s; catalog right %s after the loss; after its return catalog right with no stale entries in %s; lines expected %d, shipped %d, lost %d, duplicated %d",
		victim, nodeDown.Round(100*time.Millisecond), lossConverge.Round(100*time.Millisecond), backConverge.Round(100*time.Millisecond), c.Expected, c.Shipped, c.Lost, c.Duplicated)
}

// noStale checks that every Heartwood registration in node's agent belongs
// to a running container of node's engine.
func noStale(t *testing.T, node string) error {
	svcs, err := agentServices(node)
	if err != nil {
		return err
	}
	f := filters.NewArgs(filters.Arg("status", "running"))
	cs, err := dockerOf(t, node).ContainerList(context.Background(), container.ListOptions{Filters: f})
	if err != nil {
		return err
	}
	running := map[string]bool{}
	for _, c := range cs {
		running[c.ID] = true
	}
	for _, s := range svcs {
		if s.Meta["managed_by"] != "heartwood" {
			continue
		}
		if cid := s.Meta["heartwood_container"]; !running[cid] {
			return fmt.Errorf("%s: stale registration %s (container %.12s not running)", node, s.ID, cid)
		}
	}
	return nil
}
