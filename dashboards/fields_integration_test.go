//go:build integration

package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationDashboardFieldsAreWritten runs the real agent binary
// against a private Docker engine, the shared Consul and Elasticsearch, makes
// it write every kind of document the dashboards read (container logs with
// and without levels, watchman decisions, a dead letter, a gap event,
// utilization samples and health documents), collects the field names of the documents that
// reached Elasticsearch, and fails for every field a saved search, Lens
// visualization or dashboard control uses that no written document has.
func TestIntegrationDashboardFieldsAreWritten(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	cli := d.Client()
	consulAddr := testenv.RequireConsul(t)
	esURL := testenv.RequireES(t)
	img := testenv.Busybox(t, cli)
	run := testenv.RunID()
	ns := "dash" + run
	bin := buildAgent(t)

	// A stricter template for one dataset makes Elasticsearch reject a line,
	// which the agent then writes as a dead letter.
	testenv.ESDo(t, esURL, "PUT", "/_index_template/hwtest-dash-dlq-"+run, fmt.Sprintf(`{"index_patterns":["logs-dashdlq-%s"],"priority":%s3,"data_stream":{},
		"template":{"settings":{"index":{"auto_expand_replicas":"0-1"}},"mappings":{"dynamic":false,"properties":{"@timestamp":{"type":"date_nanos"},"message":{"type":"long"}}}}}`, ns, strconv.Itoa(testenv.TemplatePriority(run))))
	// This Elasticsearch build cannot delete data streams, so a test's
	// streams and the templates they use stay; their names are unique.

	// Elasticsearch through a proxy the test can cut: with it cut and a
	// small in-flight budget, Docker rotates unread log data away, which
	// the agent reports as a gap event with the bytes lost.
	proxy := testenv.NewProxy(t, strings.TrimPrefix(esURL, "http://"))
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	args := []string{"run", "--listen", listen, "--data-dir", t.TempDir(),
		"--docker-host", d.Host, "--consul-addr", consulAddr, "--es-url", "http://" + proxy.Addr, "--node-name", "hwdash-" + run,
		"--shutdown-timeout", "10s",
		"--registrar.enabled", "--registrar.ip", "127.0.0.1", "--registrar.deregister-on-shutdown",
		"--shipper.enabled", "--shipper.containers-root", d.ContainersRoot(), "--shipper.namespace", ns,
		"--shipper.output.dead-letter.namespace", ns,
		"--shipper.batch-bytes", "4KiB", "--shipper.max-inflight-bytes", "16KiB", "--shipper.max-deleted-files", "0",
		"--shipper.template.name", "hwtest-dash-" + run, "--shipper.template.patterns", "logs-*-" + ns,
		"--shipper.template.namespace", ns, "--shipper.template.priority", strconv.Itoa(testenv.TemplatePriority(run)),
		"--watchman.enabled", "--watchman.interval", "500ms", "--watchman.es-interval", "1s", "--watchman.kv-prefix", "heartwood-test/" + run + "/",
		"--health-interval", "1s",
	}
	startBinary(t, bin, args)

	logs := testenv.Run(t, cli, run, testenv.Spec{Name: "dash-logs-" + run, Config: &container.Config{
		Image: img,
		Cmd: []string{"sh", "-c", `echo '{"level":"error","message":"json error line"}'; echo '{"level":"warn","message":"json warning"}';` +
			` echo plain stdout line; echo plain stderr line >&2;` +
			// Block I/O (direct, to a host directory), for the container_fs_* series.
			` dd if=/dev/zero of=/data/io bs=64k count=16 oflag=direct 2>/dev/null; exec sleep 3600`},
		// The labels Swarm puts on a task's container.
		Labels: map[string]string{"heartwood.logs.json": "true",
			"com.docker.swarm.service.name": "dashstack_api", "com.docker.swarm.service.id": "svc" + run,
			"com.docker.swarm.task.name": "dashstack_api.1.task" + run, "com.docker.swarm.task.id": "task" + run,
			"com.docker.swarm.node.id": "node" + run, "com.docker.stack.namespace": "dashstack"},
	}, HostConfig: &container.HostConfig{Binds: []string{t.TempDir() + ":/data"}}})
	testenv.Run(t, cli, run, testenv.Spec{Name: "dash-dlq-" + run, Config: &container.Config{
		Image: img, Cmd: []string{"sh", "-c", "echo 123; echo not-a-number; exec sleep 3600"},
		Labels: map[string]string{"heartwood.logs.dataset": "dashdlq"},
	}})
	idle := testenv.Run(t, cli, run, testenv.Spec{Name: "dash-idle-" + run, Config: &container.Config{
		Image: img, Cmd: []string{"sh", "-c", "echo idle; exec sleep 3600"},
		Labels: map[string]string{
			"heartwood.watchman.enable": "true", "heartwood.watchman.window": "3s", "heartwood.watchman.min-age": "0s",
			"heartwood.watchman.dry-run": "false", "heartwood.watchman.action": "pause",
		},
	}})
	gappy := testenv.Run(t, cli, run, testenv.Spec{Name: "dash-gap-" + run,
		Config:     &container.Config{Image: img, Cmd: []string{"sh", "-c", "echo before-gap; exec sleep 3600"}},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "1k", "max-file": "2"}}},
	})

	logsIdx := "logs-*-" + ns
	poll.Until(t, 2*time.Minute, "container logs, a dead letter and a watchman decision in Elasticsearch", func() (bool, string) {
		a := esCount(esURL, logsIdx, "container.id:"+logs)
		b := esCount(esURL, "logs-heartwood.deadletter-"+ns, "*")
		c := esCount(esURL, "logs-heartwood.watchman-"+ns, "container.id:"+idle)
		e := esCount(esURL, logsIdx, "message:before-gap")
		return a >= 4 && b >= 1 && c >= 1 && e >= 1, fmt.Sprintf("logs=%d deadletters=%d decisions=%d gap-container=%d", a, b, c, e)
	})

	proxy.Cut()
	for i := range 6 {
		execInContainer(t, cli, gappy, fmt.Sprintf(`i=0; while [ $i -lt 40 ]; do echo "flood %d line $i ........................................" > /proc/1/fd/1; i=$((i+1)); done`, i))
		time.Sleep(1500 * time.Millisecond) // let the reader see each generation
	}
	proxy.Restore()
	poll.Until(t, 2*time.Minute, "gap event with the bytes lost in Elasticsearch", func() (bool, string) {
		n := esCount(esURL, logsIdx, "event.action:log-gap AND heartwood.gap.bytes:>0")
		return n >= 1, fmt.Sprintf("gap events with bytes=%d", n)
	})

	// A wake through the API: a wake decision and the wake metrics. First
	// a utilization sample of the paused container.
	poll.Until(t, time.Minute, "idle container paused", func() (bool, string) {
		in, err := cli.ContainerInspect(context.Background(), idle)
		return err == nil && in.State.Paused, fmt.Sprint(err)
	})
	poll.Until(t, time.Minute, "utilization sample of the paused container", func() (bool, string) {
		n := esCount(esURL, "metrics-heartwood.container-"+ns, "container.id:"+idle+" AND heartwood.watchman.state:paused AND heartwood.watchman.reclaimed_cpu_hours:*")
		return n >= 1, fmt.Sprintf("paused samples=%d", n)
	})
	resp, err := http.Post("http://"+listen+"/v1/containers/"+idle+"/wake?reason=dashboards-test", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("wake: %s", resp.Status)
	}
	checkExported(t, "http://"+listen+"/metrics")

	objs, err := ParseObjects(KibanaObjects())
	if err != nil {
		t.Fatal(err)
	}
	used, err := UsedFields(objs)
	if err != nil {
		t.Fatal(err)
	}
	for view := range used {
		if view != "heartwood-logs" && view != "heartwood-metrics" && view != "heartwood-agent" {
			t.Errorf("objects use data view %s, which this test does not cover", view)
		}
	}
	checkWritten(t, "heartwood-logs", used["heartwood-logs"], writtenFields(t, esURL, logsIdx))

	metricsIdx := "metrics-heartwood.container-" + ns
	poll.Until(t, 2*time.Minute, "utilization samples in Elasticsearch", func() (bool, string) {
		n := esCount(esURL, metricsIdx, "*")
		return n >= 1, fmt.Sprintf("samples=%d", n)
	})
	checkWritten(t, "heartwood-metrics", used["heartwood-metrics"], writtenFields(t, esURL, metricsIdx))

	agentIdx := "metrics-heartwood.agent-" + ns
	poll.Until(t, time.Minute, "health documents in Elasticsearch", func() (bool, string) {
		n := esCount(esURL, agentIdx, "heartwood.agent.registrar.desired:* AND heartwood.agent.shipper.lag_seconds:*")
		return n >= 1, fmt.Sprintf("health documents=%d", n)
	})
	checkWritten(t, "heartwood-agent", used["heartwood-agent"], writtenFields(t, esURL, agentIdx))

	// Every field of every shipped document is mapped as the templates
	// say: the real mapping holds the template's fields with its types,
	// and each document's values fit that mapping.
	f, _, err := esschema.Detect(context.Background(), esschema.HTTP{URL: esURL})
	if err != nil {
		t.Fatal(err)
	}
	for index, kind := range map[string]esschema.Kind{
		"logs-docker.container-" + ns:       esschema.Logs,
		"logs-heartwood.watchman-" + ns:     esschema.Decisions,
		"logs-heartwood.deadletter-" + ns:   esschema.DeadLetters,
		"metrics-heartwood.container-" + ns: esschema.Metrics,
		"metrics-heartwood.agent-" + ns:     esschema.Agent,
	} {
		real := testenv.ESMapping(t, esURL, index)
		want := testenv.JSON(t, esschema.Mappings(kind, f))
		for _, d := range esschema.DiffMappings(want, real) {
			t.Errorf("%s: %s", index, d)
		}
		docs := testenv.ESSources(t, esURL, index)
		if len(docs) == 0 {
			t.Errorf("%s: no documents", index)
		}
		for _, doc := range docs {
			for _, bad := range esschema.CheckDocument(real, doc) {
				t.Errorf("%s: %s", index, bad)
			}
		}
	}
}

// checkExported fails for each metric the alert rules or the Grafana
// dashboard use that the running agent does not export.
func checkExported(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exported := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
			if f[3] == "histogram" {
				for _, s := range []string{"_bucket", "_sum", "_count"} {
					exported[f[2]+s] = true
				}
			}
		}
	}
	// Series that exist only where the hardware or the kernel's accounting
	// does: GPU series need a GPU (the watchman's tests use a fake reader);
	// per-device block I/O series appear once the kernel accounts block I/O
	// to the container's cgroup, which on this test host (cgroup v1) it did
	// not for the container's direct writes.
	onlyWith := map[string]string{
		"container_accelerator_duty_cycle":        "a GPU",
		"container_accelerator_memory_used_bytes": "a GPU",
		"container_fs_reads_bytes_total":          "block I/O accounted to the cgroup",
		"container_fs_writes_bytes_total":         "block I/O accounted to the cgroup",
	}
	grafana, err := GrafanaMetrics(GrafanaDashboard())
	if err != nil {
		t.Fatal(err)
	}
	rules, err := AlertMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for what, names := range map[string][]string{"alert rules": rules, "Grafana dashboard": grafana} {
		for _, m := range names {
			if !exported[m] && onlyWith[m] == "" {
				t.Errorf("the %s use %s, which the agent's /metrics does not export", what, m)
			}
		}
	}
}

// checkWritten fails for each used field no written document has.
func checkWritten(t *testing.T, view string, used []string, have map[string]bool) {
	t.Helper()
	bad := false
	for _, f := range used {
		if !have[f] {
			bad = true
			t.Errorf("data view %s: the Kibana objects use %s, which no document the agent wrote has", view, f)
		}
	}
	if bad {
		t.Logf("fields written (%s): %s", view, strings.Join(sortedKeys(have), " "))
	}
}

// buildAgent builds the heartwood binary.
func buildAgent(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "heartwood")
	build := exec.Command("go", "build", "-o", bin, "../cmd/heartwood")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type agentProc struct {
	cmd  *exec.Cmd
	done chan error
	log  string
}

// startBinary runs the agent and waits until it is ready; the test's end
// stops it.
func startBinary(t *testing.T, bin string, args []string) *agentProc {
	t.Helper()
	listen := ""
	for i, a := range args {
		if a == "--listen" {
			listen = args[i+1]
		}
	}
	logPath := filepath.Join(t.TempDir(), "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProc{cmd: exec.Command(bin, args...), done: make(chan error, 1), log: logPath}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait(); logf.Close() }()
	t.Cleanup(func() { p.stop(t) })
	poll.Until(t, 90*time.Second, "agent ready", func() (bool, string) {
		select {
		case err := <-p.done:
			p.done <- err
			out, _ := os.ReadFile(logPath)
			t.Fatalf("agent exited: %v\n%s", err, out)
		default:
		}
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
	return p
}

// stop ends the agent with SIGTERM (a clean shutdown saves checkpoints).
func (p *agentProc) stop(t *testing.T) {
	if p.cmd.ProcessState != nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			out, _ := os.ReadFile(p.log)
			t.Errorf("agent exit after SIGTERM: %v\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("agent still running 30s after SIGTERM")
	}
}

// execInContainer runs a shell script in a container and waits for it.
func execInContainer(t *testing.T, cli *client.Client, id, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{Detach: true}); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, time.Minute, "exec finished", func() (bool, string) {
		in, err := cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return false, err.Error()
		}
		return !in.Running, fmt.Sprintf("running=%v exit=%d", in.Running, in.ExitCode)
	})
}

// esCount counts the documents of index matching a query-string query.
func esCount(esURL, index, q string) int {
	req, _ := http.NewRequest("POST", esURL+"/"+index+"/_count?ignore_unavailable=true",
		bytes.NewReader([]byte(fmt.Sprintf(`{"query":{"query_string":{"query":%q}}}`, q))))
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var out struct {
		Count int `json:"count"`
	}
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return -1
	}
	return out.Count
}

// writtenFields returns the dotted names of every field (and object) in
// the _source of the documents of index.
func writtenFields(t *testing.T, esURL, index string) map[string]bool {
	t.Helper()
	testenv.ESDo(t, esURL, "POST", "/"+index+"/_refresh", "")
	docs := testenv.ESSources(t, esURL, index)
	set := map[string]bool{}
	for _, d := range docs {
		flatten("", d, set)
	}
	if len(docs) == 0 {
		t.Errorf("no documents in %s", index)
	}
	return set
}

func flatten(prefix string, v any, set map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if prefix != "" {
			set[prefix] = true
		}
		for k, e := range x {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flatten(name, e, set)
		}
	case []any:
		set[prefix] = true
		for _, e := range x {
			if m, ok := e.(map[string]any); ok {
				flatten(prefix, m, set)
			}
		}
	default:
		set[prefix] = true
	}
}
