//go:build integration

package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/heartwood-ops/heartwood/internal/poll"
)

// The cluster every test in this package shares: TestMain makes it
// (cluster.sh up 3 && cluster.sh deploy) and removes it (cluster.sh down)
// whatever the tests did.
const nodeCount = 3

var (
	setupErr error
	env      clusterEnv
)

type clusterEnv struct {
	script string
	nodes  []string          // node1..nodeN
	ip     map[string]string // node → address on the bridge
	sock   map[string]string // node → DOCKER_HOST
	esURL  string
}

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	env.script = filepath.Join(filepath.Dir(file), "cluster.sh")
	start := time.Now()
	// HWC_REUSE=1 keeps a running cluster (cluster.sh up is idempotent) and
	// HWC_KEEP=1 leaves it running afterwards: for working on the tests.
	reuse, keep := os.Getenv("HWC_REUSE") != "", os.Getenv("HWC_KEEP") != ""
	if !reuse {
		_, _ = run(context.Background(), env.script, "down")
	}
	check := filepath.Join(filepath.Dir(file), "check-clean.sh")
	snapDir, err := os.MkdirTemp("", "hwc-clean-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer os.RemoveAll(snapDir)
	before, after := filepath.Join(snapDir, "before"), filepath.Join(snapDir, "after")
	if out, err := run(context.Background(), check, "snapshot", before); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: snapshot: %v\n%s", err, out)
		os.Exit(1)
	}
	setupErr = setup()
	fmt.Fprintf(os.Stderr, "cluster: setup took %s (err=%v)\n", time.Since(start).Round(time.Second), setupErr)
	code := m.Run()
	if !keep {
		if out, err := run(context.Background(), env.script, "down"); err != nil {
			fmt.Fprintf(os.Stderr, "cluster: down failed: %v\n%s", err, out)
			code = 1
		}
		// Leaves the machine as it was: compare with the snapshot taken
		// before up.
		if !reuse {
			_, _ = run(context.Background(), check, "snapshot", after)
			out, err := run(context.Background(), check, "compare", before, after)
			fmt.Fprintf(os.Stderr, "cluster: after down: %s", out)
			if err != nil {
				code = 1
			}
		}
	}
	fmt.Fprintf(os.Stderr, "cluster: whole run took %s\n", time.Since(start).Round(time.Second))
	os.RemoveAll(snapDir)
	os.Exit(code)
}

func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	if out, err := run(ctx, env.script, "up", fmt.Sprint(nodeCount)); err != nil {
		return fmt.Errorf("cluster.sh up: %v\n%s", err, out)
	}
	if out, err := run(ctx, env.script, "deploy"); err != nil {
		return fmt.Errorf("cluster.sh deploy: %v\n%s", err, out)
	}
	out, err := run(ctx, env.script, "env")
	if err != nil {
		return fmt.Errorf("cluster.sh env: %v\n%s", err, out)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(l, "=")
		vars[k] = v
	}
	env.nodes = strings.Fields(vars["HWC_NODES"])
	env.esURL = vars["HWC_ES_URL"]
	env.ip, env.sock = map[string]string{}, map[string]string{}
	for _, n := range env.nodes {
		host, err := run(ctx, env.script, "host", n)
		if err != nil {
			return err
		}
		env.sock[n] = strings.TrimSpace(host)
		var num int
		fmt.Sscanf(n, "node%d", &num)
		env.ip[n] = fmt.Sprintf("%s.%d", strings.TrimSuffix(vars["HWC_HOST_IP"], ".1"), 10+num)
	}
	if len(env.nodes) != nodeCount {
		return fmt.Errorf("cluster has nodes %v, want %d", env.nodes, nodeCount)
	}
	return nil
}

// requireCluster fails the test when the shared cluster could not be made.
func requireCluster(t *testing.T) {
	t.Helper()
	if setupErr != nil {
		t.Fatalf("cluster setup failed: %v", setupErr)
	}
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var b bytes.Buffer
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return b.String(), err
}

// sh runs cluster.sh with args and fails the test on error.
func sh(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := run(ctx, env.script, args...)
	if err != nil {
		t.Fatalf("cluster.sh %v: %v\n%s", args, err, out)
	}
	return out
}

// docker returns a client of node's engine, closed at test end.
func dockerOf(t *testing.T, node string) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.WithHost(env.sock[node]), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func manager(t *testing.T) *client.Client { return dockerOf(t, env.nodes[0]) }

// dockerCLI runs the docker CLI against node's engine.
func dockerCLI(t *testing.T, node string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := run(ctx, "docker", append([]string{"-H", env.sock[node]}, args...)...)
	if err != nil {
		t.Fatalf("docker %v on %s: %v\n%s", args, node, err, out)
	}
	return out
}

// waitFor polls cond every interval until it returns nil or timeout passes;
// it returns the time it took and the last error.
func waitFor(timeout, interval time.Duration, cond func() error) (time.Duration, error) {
	return poll.Every(interval).Wait(timeout, cond)
}

var httpc = &http.Client{Timeout: 5 * time.Second}

func getJSON(url string, v any) error {
	resp, err := httpc.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

func postJSON(url string, body any, v any) error {
	data, _ := json.Marshal(body)
	resp, err := httpc.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// ---------------------------------------------------------------- Consul

// agentService is one service in a node agent's /v1/agent/services.
type agentService struct {
	ID      string
	Service string
	Address string
	Port    int
	Meta    map[string]string
}

// agentServices returns the services node's own Consul agent holds.
func agentServices(node string) (map[string]agentService, error) {
	var m map[string]agentService
	err := getJSON("http://"+env.ip[node]+":8500/v1/agent/services", &m)
	return m, err
}

// healthEntry is one entry of /v1/health/service/NAME.
type healthEntry struct {
	Node struct {
		Node    string
		Address string
	}
	Service agentService
	Checks  []struct {
		CheckID string
		Status  string
	}
}

// passing returns the passing instances of name, asked of node's agent.
func passing(node, name string) ([]healthEntry, error) {
	var es []healthEntry
	err := getJSON("http://"+env.ip[node]+":8500/v1/health/service/"+name+"?passing=1&stale=1", &es)
	return es, err
}

// ---------------------------------------------------------------- Swarm

func nodeIDs(t *testing.T) map[string]string {
	t.Helper()
	ns, err := manager(t).NodeList(context.Background(), swarm.NodeListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, n := range ns {
		ids[n.Description.Hostname] = n.ID
	}
	return ids
}

// runningTasks returns service's tasks whose desired and current state is
// running, keyed by task ID.
func runningTasks(t *testing.T, service string) map[string]swarm.Task {
	t.Helper()
	f := filters.NewArgs(filters.Arg("service", service), filters.Arg("desired-state", "running"))
	ts, err := manager(t).TaskList(context.Background(), swarm.TaskListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]swarm.Task{}
	for _, tk := range ts {
		if tk.Status.State == swarm.TaskStateRunning {
			out[tk.ID] = tk
		}
	}
	return out
}

func idToNode(t *testing.T) map[string]string {
	out := map[string]string{}
	for n, id := range nodeIDs(t) {
		out[id] = n
	}
	return out
}

// ---------------------------------------------------------------- logs

var seqRe = regexp.MustCompile(`seq=(\d+)`)

// loggerCmd prints "seq=N <tag>" every period for ever (or count times).
func loggerCmd(tag string, period string, count int) []string {
	loop := "while true"
	if count > 0 {
		loop = fmt.Sprintf("while [ $i -lt %d ]", count)
	}
	return []string{"sh", "-c", fmt.Sprintf("i=0; %s; do i=$((i+1)); echo \"seq=$i %s\"; sleep %s; done", loop, tag, period)}
}

// containerLines returns the log lines Docker holds for the container (its
// json-file), the ground truth for what must reach Elasticsearch.
func containerLines(t *testing.T, cli *client.Client, id string) []string {
	t.Helper()
	rc, err := cli.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs of %s: %v", id, err)
	}
	defer rc.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, rc); err != nil {
		t.Fatalf("logs of %s: %v", id, err)
	}
	var lines []string
	sc := bufio.NewScanner(io.MultiReader(&stdout, &stderr))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// esDoc is the part of a shipped document the tests read.
type esDoc struct {
	Message string `json:"message"`
	Host    struct {
		Name string `json:"name"`
	} `json:"host"`
	Swarm struct {
		Node struct {
			ID string `json:"id"`
		} `json:"node"`
	} `json:"swarm"`
	Container struct {
		ID string `json:"id"`
	} `json:"container"`
}

// esDocs returns every document shipped for the container.
func esDocs(containerID string) ([]esDoc, error) {
	_, _ = httpc.Post(env.esURL+"/logs-*/_refresh", "application/json", nil)
	var res struct {
		Hits struct {
			Hits []struct {
				Source esDoc `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	q := map[string]any{
		"size":  10000,
		"query": map[string]any{"term": map[string]any{"container.id": containerID}},
	}
	if err := postJSON(env.esURL+"/logs-*/_search?ignore_unavailable=true", q, &res); err != nil {
		return nil, err
	}
	out := make([]esDoc, 0, len(res.Hits.Hits))
	for _, h := range res.Hits.Hits {
		out = append(out, h.Source)
	}
	return out, nil
}

// lineCount compares what Docker holds with what Elasticsearch holds.
type lineCount struct {
	Expected, Shipped, Lost, Duplicated int
}

func countLines(want []string, docs []esDoc) lineCount {
	seen := map[string]int{}
	for _, d := range docs {
		seen[d.Message]++
	}
	c := lineCount{Expected: len(want), Shipped: len(docs)}
	wantSet := map[string]int{}
	for _, l := range want {
		wantSet[l]++
	}
	for l, n := range wantSet {
		if got := seen[l]; got < n {
			c.Lost += n - got
		} else if got > n {
			c.Duplicated += got - n
		}
	}
	for l, got := range seen {
		if _, ok := wantSet[l]; !ok {
			c.Duplicated += got // a line Docker never had
		}
	}
	return c
}

// shippedExactlyOnce waits until every line of the containers (id → node)
// is in Elasticsearch and returns the totals.
func shippedExactlyOnce(t *testing.T, containers map[string]string, timeout time.Duration) lineCount {
	t.Helper()
	want := map[string][]string{}
	for id, node := range containers {
		want[id] = containerLines(t, dockerOf(t, node), id)
	}
	var total lineCount
	_, err := waitFor(timeout, time.Second, func() error {
		total = lineCount{}
		for id := range containers {
			docs, err := esDocs(id)
			if err != nil {
				return err
			}
			c := countLines(want[id], docs)
			total.Expected += c.Expected
			total.Shipped += c.Shipped
			total.Lost += c.Lost
			total.Duplicated += c.Duplicated
		}
		if total.Lost != 0 || total.Duplicated != 0 {
			return fmt.Errorf("%+v", total)
		}
		return nil
	})
	if err != nil {
		t.Errorf("lines not shipped exactly once within %s: %v", timeout, err)
	}
	return total
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
