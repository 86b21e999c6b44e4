//go:build integration

package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

const (
	busybox      = "heartwood-cluster/busybox:latest"
	hwService    = "hw_heartwood"
	webService   = "demo_web"
	dataService  = "demo_data"
	trainService = "demo_trainer"
)

// startOn runs a busybox container on node; published (container port 80
// on a random host port) or registered by its bridge address.
func startOn(t *testing.T, node, runID, name string, published bool, cmd []string) string {
	t.Helper()
	cfg := &container.Config{
		Image:        busybox,
		Cmd:          cmd,
		ExposedPorts: nat.PortSet{"80/tcp": {}},
		Labels:       map[string]string{"SERVICE_NAME": name},
	}
	hc := &container.HostConfig{}
	if published {
		hc.PortBindings = nat.PortMap{"80/tcp": {{HostPort: ""}}}
	} else {
		cfg.Labels["SERVICE_NETWORK"] = "bridge"
	}
	return testenv.Run(t, dockerOf(t, node), runID, testenv.Spec{Config: cfg, HostConfig: hc})
}

func hostPort(t *testing.T, cli *client.Client, id string) int {
	t.Helper()
	c, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range c.NetworkSettings.Ports["80/tcp"] {
		var p int
		fmt.Sscan(b.HostPort, &p)
		if p > 0 {
			return p
		}
	}
	t.Fatalf("container %s has no published port", id)
	return 0
}

func heartwoodContainer(t *testing.T, node string) string {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+hwService), filters.Arg("status", "running"))
	cs, err := dockerOf(t, node).ContainerList(context.Background(), container.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 {
		t.Fatalf("%s runs %d Heartwood containers, want 1", node, len(cs))
	}
	return cs[0].ID
}

// TestIntegrationClusterHeartwoodOnEveryNode: the global service runs
// exactly one agent on every node, and each agent answers on its node's
// address.
func TestIntegrationClusterHeartwoodOnEveryNode(t *testing.T) {
	requireCluster(t)
	ids := idToNode(t)
	took, err := waitFor(2*time.Minute, time.Second, func() error {
		per := map[string]int{}
		for _, tk := range runningTasks(t, hwService) {
			per[ids[tk.NodeID]]++
		}
		for _, n := range env.nodes {
			if per[n] != 1 {
				return fmt.Errorf("running Heartwood tasks per node: %v", per)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range env.nodes {
		heartwoodContainer(t, n) // exactly one on the node's own engine
		if _, err := waitFor(time.Minute, time.Second, func() error {
			resp, err := httpc.Get("http://" + env.ip[n] + ":9321/healthz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("%s /healthz: %s", n, resp.Status)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	t.Logf("FIGURE one Heartwood task on each of %d nodes after %s", len(env.nodes), took.Round(time.Second))
}

// TestIntegrationClusterRegistersOnOwnNode: each node's containers are
// registered in that node's Consul agent with that node's address, and
// Swarm tasks on the node their task runs on.
func TestIntegrationClusterRegistersOnOwnNode(t *testing.T) {
	requireCluster(t)
	runID := testenv.RunID()
	name := "own-" + runID[:8]
	ports := map[string]int{}
	for _, n := range env.nodes {
		id := startOn(t, n, runID, name, true, []string{"httpd", "-f", "-p", "80"})
		ports[n] = hostPort(t, dockerOf(t, n), id)
	}
	took, err := waitFor(15*time.Second, 100*time.Millisecond, func() error {
		for _, n := range env.nodes {
			svcs, err := agentServices(n)
			if err != nil {
				return err
			}
			var mine []agentService
			for _, s := range svcs {
				if s.Service == name {
					mine = append(mine, s)
				}
			}
			if len(mine) != 1 {
				return fmt.Errorf("%s's agent holds %d instances of %s, want 1 (its own)", n, len(mine), name)
			}
			s := mine[0]
			if s.Address != env.ip[n] || s.Port != ports[n] || s.Meta["heartwood_node"] != n {
				return fmt.Errorf("%s registered %s at %s:%d node %q, want %s:%d node %s", n, name, s.Address, s.Port, s.Meta["heartwood_node"], env.ip[n], ports[n], n)
			}
		}
		var cat []struct {
			Node           string
			ServiceAddress string
		}
		if err := getJSON("http://"+env.ip[env.nodes[0]]+":8500/v1/catalog/service/"+name, &cat); err != nil {
			return err
		}
		if len(cat) != len(env.nodes) {
			return fmt.Errorf("catalog has %d instances of %s", len(cat), name)
		}
		for _, c := range cat {
			if c.ServiceAddress != env.ip[c.Node] {
				return fmt.Errorf("catalog: %s instance on %s has address %s", name, c.Node, c.ServiceAddress)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("FIGURE containers on %d nodes registered on their own agents with their node address within %s", len(env.nodes), took.Round(10*time.Millisecond))

	// Swarm tasks: registered by the agent of the node the task runs on.
	ids := idToNode(t)
	for _, svc := range []string{webService, trainService, dataService} {
		tasks := runningTasks(t, svc)
		if len(tasks) == 0 {
			t.Fatalf("no running tasks of %s", svc)
		}
		if _, err := waitFor(30*time.Second, 200*time.Millisecond, func() error {
			for _, tk := range tasks {
				node := ids[tk.NodeID]
				svcs, err := agentServices(node)
				if err != nil {
					return err
				}
				found := false
				for _, s := range svcs {
					if s.Meta["swarm_task_id"] == tk.ID {
						found = true
						if s.Meta["swarm_node_id"] != tk.NodeID || s.Meta["heartwood_node"] != node {
							return fmt.Errorf("task %s on %s registered with node %q/%q", tk.ID, node, s.Meta["swarm_node_id"], s.Meta["heartwood_node"])
						}
					}
				}
				if !found {
					return fmt.Errorf("task %s of %s is not registered on %s's agent", tk.ID, svc, node)
				}
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
}

// nslookup resolves name with the Consul DNS of node (from inside it).
func nslookup(t *testing.T, node, name, server string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return run(ctx, env.script, "exec", node, "busybox", "nslookup", name, server)
}

// TestIntegrationClusterDNSAcrossNodes: from every node, Consul DNS resolves
// the services of the other nodes; each web replica reaches the data tier on
// another node by its Consul name over the overlay network.
func TestIntegrationClusterDNSAcrossNodes(t *testing.T) {
	requireCluster(t)
	runID := testenv.RunID()
	names := map[string]string{}
	for _, n := range env.nodes {
		names[n] = "dns-" + n + "-" + runID[:6]
		startOn(t, n, runID, names[n], true, []string{"httpd", "-f", "-p", "80"})
	}
	for _, from := range env.nodes {
		for _, to := range env.nodes {
			if from == to {
				continue
			}
			for _, server := range []string{"127.0.0.1", "169.254.53.53"} {
				var out string
				_, err := waitFor(20*time.Second, 250*time.Millisecond, func() error {
					var err error
					out, err = nslookup(t, from, names[to]+".service.consul", server)
					if err != nil || !strings.Contains(out, "Address: "+env.ip[to]) {
						return fmt.Errorf("%v: %s", err, out)
					}
					return nil
				})
				if err != nil {
					t.Errorf("from %s (DNS %s): %s.service.consul does not resolve to %s: %v", from, server, names[to], env.ip[to], err)
				}
			}
		}
	}

	// The web tier reaches the data tier across nodes.
	ids := idToNode(t)
	data := runningTasks(t, dataService)
	if len(data) != 1 {
		t.Fatalf("%d running data tasks, want 1", len(data))
	}
	var dataNode, dataHost string
	for _, tk := range data {
		dataNode, dataHost = ids[tk.NodeID], tk.Status.ContainerStatus.ContainerID[:12]
	}
	crossed := 0
	for _, tk := range runningTasks(t, webService) {
		node := ids[tk.NodeID]
		cid := tk.Status.ContainerStatus.ContainerID
		var out string
		_, err := waitFor(30*time.Second, 500*time.Millisecond, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var err error
			out, err = run(ctx, "docker", "-H", env.sock[node], "exec", cid, "sh", "-c", `printf 'GET /cgi-bin/data HTTP/1.0\r\n\r\n' | nc -w 5 127.0.0.1 80 | tail -n 1`)
			if err != nil || strings.TrimSpace(out) != dataHost {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})
		if err != nil {
			t.Errorf("web on %s does not reach data (on %s, host %s): %v", node, dataNode, dataHost, err)
			continue
		}
		if node != dataNode {
			crossed++
		}
	}
	if crossed == 0 {
		t.Errorf("no web replica runs on a node other than the data tier's (%s): nothing crossed nodes", dataNode)
	}
	t.Logf("FIGURE %d web replicas on other nodes than data (%s) reached it through data.service.consul", crossed, dataNode)
}

// TestIntegrationClusterLogsFromEveryNode: log lines of every node arrive in
// Elasticsearch once each, with the node's host.name and Swarm node ID.
func TestIntegrationClusterLogsFromEveryNode(t *testing.T) {
	requireCluster(t)
	runID := testenv.RunID()
	loggers := map[string]string{}
	for _, n := range env.nodes {
		id := startOn(t, n, runID, "logs-"+runID[:6], false, loggerCmd("from-"+n, "0.02", 200))
		loggers[id] = n
	}
	ids := idToNode(t)
	trainerNodes := map[string]bool{}
	for _, tk := range runningTasks(t, trainService) {
		node := ids[tk.NodeID]
		trainerNodes[node] = true
		cid := tk.Status.ContainerStatus.ContainerID
		_, err := waitFor(60*time.Second, time.Second, func() error {
			docs, err := esDocs(cid)
			if err != nil {
				return err
			}
			if len(docs) == 0 {
				return fmt.Errorf("no documents for trainer %s on %s", cid[:12], node)
			}
			for _, d := range docs {
				if d.Host.Name != node || d.Swarm.Node.ID != tk.NodeID {
					return fmt.Errorf("trainer on %s shipped with host.name %q swarm.node.id %q, want %s %s", node, d.Host.Name, d.Swarm.Node.ID, node, tk.NodeID)
				}
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	for _, n := range env.nodes {
		if !trainerNodes[n] {
			t.Errorf("no trainer task on %s (spread placement)", n)
		}
	}
	// Plain containers: all 200 lines of each, once, host.name their node.
	for id, n := range loggers {
		cli := dockerOf(t, n)
		if _, err := waitFor(30*time.Second, 500*time.Millisecond, func() error {
			c, err := cli.ContainerInspect(context.Background(), id)
			if err != nil || c.State.Running {
				return fmt.Errorf("logger still running")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	c := shippedExactlyOnce(t, loggers, time.Minute)
	for id, n := range loggers {
		docs, _ := esDocs(id)
		for _, d := range docs {
			if d.Host.Name != n {
				t.Errorf("line of %s shipped with host.name %q", n, d.Host.Name)
				break
			}
		}
	}
	t.Logf("FIGURE logs from %d nodes: %d lines expected, %d shipped, %d lost, %d duplicated", len(env.nodes), c.Expected, c.Shipped, c.Lost, c.Duplicated)
}

// cgroupFile reads a cgroup v1 file of a node's container.
func cgroupFile(ctrl, node, id, file string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/sys/fs/cgroup/%s/hwcluster/%s/%s/%s", ctrl, node, id, file))
	if err != nil {
		return 0, err
	}
	var v int64
	_, err = fmt.Sscan(string(b), &v)
	return v, err
}

// TestIntegrationClusterScale: 100 containers per node, started in bursts;
// after each burst every node's catalog equals its containers within 2 s.
func TestIntegrationClusterScale(t *testing.T) {
	requireCluster(t)
	const perNode, bursts = 100, 4
	runID := testenv.RunID()
	name := "scale-" + runID[:6]
	agents := map[string]string{}
	for _, n := range env.nodes {
		agents[n] = heartwoodContainer(t, n)
	}
	var mu sync.Mutex
	created := map[string][]string{}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for n, ids := range created {
			cli := dockerOf(t, n)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := w; i < len(ids); i += 4 {
						testenv.Remove(cli, ids[i])
					}
				}(w)
			}
		}
		wg.Wait()
	})
	count := func(n string) (int, error) {
		svcs, err := agentServices(n)
		if err != nil {
			return 0, err
		}
		c := 0
		for _, s := range svcs {
			if s.Service == name {
				c++
			}
		}
		return c, nil
	}
	var worst time.Duration
	for b := 1; b <= bursts; b++ {
		cpu0, mem := map[string]int64{}, map[string]int64{}
		for _, n := range env.nodes {
			cpu0[n], _ = cgroupFile("cpuacct", n, agents[n], "cpuacct.usage")
		}
		start := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(env.nodes)*perNode)
		for _, n := range env.nodes {
			cli := dockerOf(t, n)
			for w := 0; w < 2; w++ {
				wg.Add(1)
				go func(n string, w int) {
					defer wg.Done()
					for i := w; i < perNode/bursts; i += 2 {
						cfg := &container.Config{Image: busybox, Cmd: []string{"sleep", "3600"},
							ExposedPorts: nat.PortSet{"80/tcp": {}},
							Labels:       map[string]string{"SERVICE_NAME": name, "SERVICE_NETWORK": "bridge", testenv.LabelTest: runID}}
						ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
						c, err := cli.ContainerCreate(ctx, cfg, &container.HostConfig{}, nil, nil, "")
						if err == nil {
							mu.Lock()
							created[n] = append(created[n], c.ID)
							mu.Unlock()
							err = cli.ContainerStart(ctx, c.ID, container.StartOptions{})
						}
						cancel()
						if err != nil {
							errs <- fmt.Errorf("%s: %v", n, err)
							return
						}
					}
				}(n, w)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		burstEnd := time.Now()
		want := b * perNode / bursts
		took, err := waitFor(10*time.Second, 50*time.Millisecond, func() error {
			for _, n := range env.nodes {
				c, err := count(n)
				if err != nil {
					return err
				}
				if c != want {
					return fmt.Errorf("%s: %d registered, %d running", n, c, want)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("burst %d: catalog not equal to containers within 10s: %v", b, err)
		}
		if took > worst {
			worst = took
		}
		wall := time.Since(start)
		var figs []string
		for _, n := range env.nodes {
			cpu1, _ := cgroupFile("cpuacct", n, agents[n], "cpuacct.usage")
			mem[n], _ = cgroupFile("memory", n, agents[n], "memory.usage_in_bytes")
			figs = append(figs, fmt.Sprintf("%s cpu %.1f%% mem %.1f MiB", n, 100*float64(cpu1-cpu0[n])/float64(wall.Nanoseconds()), float64(mem[n])/(1<<20)))
		}
		t.Logf("FIGURE burst %d: %d containers/node started in %s; catalog equal %s after the burst; agents: %s",
			b, want, burstEnd.Sub(start).Round(100*time.Millisecond), took.Round(10*time.Millisecond), strings.Join(figs, ", "))
		if took > 2*time.Second {
			t.Errorf("burst %d: catalog equal only %s after the burst, want ≤ 2s", b, took.Round(10*time.Millisecond))
		}
	}
	var figs []string
	for _, n := range env.nodes {
		peak, _ := cgroupFile("memory", n, agents[n], "memory.max_usage_in_bytes")
		figs = append(figs, fmt.Sprintf("%s peak %.1f MiB", n, float64(peak)/(1<<20)))
	}
	t.Logf("FIGURE scale: %d containers on each of %d nodes; worst catalog lag %s; agent memory %s", perNode, len(env.nodes), worst.Round(10*time.Millisecond), strings.Join(figs, ", "))
}
