//go:build integration

package shipper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/inventory"
)

// itest is one integration test's world: a unique namespace, the shared
// Docker and Elasticsearch, and a data directory shared by every shipper
// run of the test (restarts resume from it).
type itest struct {
	t     *testing.T
	cli   *client.Client
	runID string
	ns    string
	esURL string
	data  string
	image string
}

func newITest(t *testing.T) *itest {
	cli := testenv.Docker(t)
	es := testenv.RequireES(t)
	runID := testenv.RunID()
	return &itest{t: t, cli: cli, runID: runID, ns: "t" + runID, esURL: strings.TrimRight(es, "/"),
		data: t.TempDir(), image: testenv.Busybox(t, cli)}
}

type runningShipper struct {
	s    *Shipper
	reg  *prometheus.Registry
	stop func()
}

// start runs an inventory and a shipper writing to esAddr (host:port).
func (it *itest) start(esAddr string, mutate func(*Config)) *runningShipper {
	t := it.t
	ctx, cancel := context.WithCancel(context.Background())
	inv := inventory.New(it.cli, inventory.Options{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = inv.Run(ctx) })
	select {
	case <-inv.Synced():
	case <-time.After(30 * time.Second):
		t.Fatal("inventory did not sync")
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{"http://" + esAddr}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Selector = []string{testenv.LabelTest + "=" + it.runID}
	cfg.Namespace = it.ns
	cfg.Template.Name = "heartwood-logs-" + it.runID
	cfg.Template.Patterns = []string{"logs-*-" + it.ns}
	cfg.Template.Priority = 160
	cfg.Template.Namespace = it.ns
	cfg.Output.DeadLetter.Namespace = it.ns
	cfg.Output.FlushInterval = 200 * time.Millisecond
	cfg.Output.RetryBackoffMax = 2 * time.Second
	cfg.PollInterval = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, Deps{Source: inv, ES: es, Docker: it.cli, DataDir: it.data, NodeName: "itest-node",
		AgentVersion: "itest", Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := s.Run(ctx); err != nil && err != context.Canceled {
			t.Errorf("shipper Run: %v", err)
		}
	})
	return &runningShipper{s: s, reg: reg, stop: func() { cancel(); wg.Wait() }}
}

// run starts a busybox container running script, labelled for this test.
func (it *itest) run(name, script string, labels map[string]string, logOpts map[string]string) string {
	return it.runDriver(name, script, labels, "json-file", logOpts)
}

func (it *itest) runDriver(name, script string, labels map[string]string, driver string, logOpts map[string]string) string {
	if labels == nil {
		labels = map[string]string{}
	}
	return testenv.Run(it.t, it.cli, it.runID, testenv.Spec{
		Name:       name + "-" + it.runID,
		Config:     &container.Config{Image: it.image, Cmd: []string{"sh", "-c", script}, Labels: labels},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: driver, Config: logOpts}},
	})
}

func (it *itest) http(method, path string, body []byte) []byte {
	req, _ := http.NewRequest(method, it.esURL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		it.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 && resp.StatusCode != 404 {
		it.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return b
}

// count returns the documents of index; 0 while a just-created data
// stream's shard is not active yet (503).
func (it *itest) count(index string) int {
	resp, err := http.Post(it.esURL+"/"+index+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "application/json", nil)
	if err != nil {
		it.t.Fatalf("refresh %s: %v", index, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return 0
	}
	resp, err = http.Get(it.esURL + "/" + index + "/_count?ignore_unavailable=true&allow_no_indices=true")
	if err != nil {
		it.t.Fatalf("count %s: %v", index, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return 0
	case resp.StatusCode >= 300 && resp.StatusCode != http.StatusNotFound:
		it.t.Fatalf("count %s: %s: %s", index, resp.Status, b)
	}
	var r struct {
		Count int `json:"count"`
	}
	_ = json.Unmarshal(b, &r)
	return r.Count
}

// waitCount waits until index holds want documents and stays there for a
// second.
func (it *itest) waitCount(index string, want int, timeout time.Duration) {
	it.t.Helper()
	var since time.Time
	poll.Until(it.t, timeout, fmt.Sprintf("%s to hold %d documents", index, want), func() (bool, string) {
		n := it.count(index)
		if n > want {
			it.t.Fatalf("%s holds %d documents, more than the %d lines written", index, n, want)
		}
		if n != want {
			since = time.Time{}
			time.Sleep(200 * time.Millisecond) // spare Elasticsearch
			return false, fmt.Sprintf("%d documents", n)
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= time.Second, ""
	})
}

type esDoc struct {
	Message   string                   `json:"message"`
	Event     struct{ Sequence int64 } `json:"event"`
	Container struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"container"`
	Log struct {
		Level    string `json:"level"`
		Iostream string `json:"iostream"`
	} `json:"log"`
	Tags []string        `json:"tags"`
	JSON json.RawMessage `json:"json"`
}

// fetchAll returns every document of index, sorted by container and
// sequence.
func (it *itest) fetchAll(index string) []esDoc {
	var out []esDoc
	var after []any
	for {
		q := map[string]any{"size": 5000, "sort": []any{map[string]any{"container.id": "asc"}, map[string]any{"event.sequence": "asc"}}}
		if after != nil {
			q["search_after"] = after
		}
		body, _ := json.Marshal(q)
		var r struct {
			Hits struct {
				Hits []struct {
					Source esDoc `json:"_source"`
					Sort   []any `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := json.Unmarshal(it.http("POST", "/"+index+"/_search", body), &r); err != nil {
			it.t.Fatal(err)
		}
		if len(r.Hits.Hits) == 0 {
			return out
		}
		for _, h := range r.Hits.Hits {
			out = append(out, h.Source)
		}
		after = r.Hits.Hits[len(r.Hits.Hits)-1].Sort
	}
}

// lineScript writes n lines "<tag> line <i>" in bursts of 100, pausing
// pauseMs between bursts, then sleeps.
func lineScript(tag string, n, pauseMs int, pad string) string {
	return fmt.Sprintf(`i=0; while [ $i -lt %d ]; do echo "%s line $i%s"; i=$((i+1)); if [ $((i %% 100)) -eq 0 ]; then usleep %d; fi; done; sleep 3600`,
		n, tag, pad, pauseMs*1000)
}

// verifyLines checks that every container's lines arrived exactly once, in
// order, with consecutive sequence numbers.
func (it *itest) verifyLines(index string, perContainer map[string]int) {
	it.t.Helper()
	docs := it.fetchAll(index)
	byName := map[string][]esDoc{}
	for _, d := range docs {
		byName[d.Container.Name] = append(byName[d.Container.Name], d)
	}
	total := 0
	for tag, n := range perContainer {
		name := tag + "-" + it.runID
		got := byName[name]
		if len(got) != n {
			it.t.Fatalf("container %s: %d documents, want %d", name, len(got), n)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].Event.Sequence < got[j].Event.Sequence })
		for i, d := range got {
			if want := fmt.Sprintf("%s line %d", tag, i); !strings.HasPrefix(d.Message, want) || d.Event.Sequence != int64(i) {
				it.t.Fatalf("container %s doc %d: message %q sequence %d, want %q sequence %d", name, i, d.Message, d.Event.Sequence, want, i)
			}
		}
		total += n
	}
	if len(docs) != total {
		it.t.Fatalf("%d documents in %s, want %d", len(docs), index, total)
	}
}

func TestIntegrationExactlyOnceRestartAndCrash(t *testing.T) {
	it := newITest(t)
	es := strings.TrimPrefix(it.esURL, "http://")
	index := "logs-docker.container-" + it.ns
	// HEARTWOOD_SHIPPER_ITEST_LINES scales the test up (20000 gives the
	// issue's 200,000 lines from 10 containers).
	containers, lines := 10, 3000
	if v := os.Getenv("HEARTWOOD_SHIPPER_ITEST_LINES"); v != "" {
		fmt.Sscan(v, &lines)
	}
	want := map[string]int{}
	for k := range containers {
		tag := fmt.Sprintf("c%d", k)
		want[tag] = lines
		it.run(tag, lineScript(tag, lines, 150, ""), nil, nil)
	}
	a := it.start(es, nil)
	// Mid-stream: snapshot the checkpoints (what a crash would leave on
	// disk), then stop and restart.
	poll.UntilTrue(t, 2*time.Minute, "a quarter of the lines shipped", func() bool { return it.count(index) >= containers*lines/4 })
	time.Sleep(1500 * time.Millisecond) // let a checkpoint flush
	cpPath := filepath.Join(it.data, "shipper-checkpoints.json")
	early, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatalf("no checkpoint written mid-stream: %v", err)
	}
	a.stop()
	b := it.start(es, nil)
	it.waitCount(index, containers*lines, 3*time.Minute)
	b.stop()
	it.verifyLines(index, want)

	// kill -9: the checkpoint on disk is older than what Elasticsearch
	// holds. Restore the early snapshot: the replay must be all 409s.
	if err := os.WriteFile(cpPath, early, 0o600); err != nil {
		t.Fatal(err)
	}
	c := it.start(es, nil)
	waitMetric(t, c.reg, "heartwood_shipper_events_acked_total", "duplicate", 1, time.Minute)
	time.Sleep(3 * time.Second)
	c.stop()
	it.waitCount(index, containers*lines, 30*time.Second)
	it.verifyLines(index, want)
	if d := counterValue(c.reg, "heartwood_shipper_events_acked_total", "duplicate"); d < 1 {
		t.Fatalf("replay after the simulated crash produced %v duplicates", d)
	}
	t.Logf("replay after simulated crash: %v duplicates (409), %v new", counterValue(c.reg, "heartwood_shipper_events_acked_total", "duplicate"),
		counterValue(c.reg, "heartwood_shipper_events_acked_total", "delivered"))
}

func TestIntegrationElasticsearchOutage(t *testing.T) {
	it := newITest(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(it.esURL, "http://"))
	index := "logs-docker.container-" + it.ns
	want := map[string]int{}
	for k := range 3 {
		tag := fmt.Sprintf("o%d", k)
		want[tag] = 6000
		it.run(tag, lineScript(tag, 6000, 1000, " padding-padding-padding-padding-padding-padding"), nil, nil)
	}
	const bound = 256 << 10
	r := it.start(proxy.Addr, func(c *Config) { c.MaxInflightBytes = bound; c.BatchBytes = 32 << 10 })
	poll.UntilTrue(t, time.Minute, "500 lines shipped before the outage", func() bool { return it.count(index) >= 500 })
	proxy.Cut()
	peak := int64(0)
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		peak = max(peak, r.s.budget.inUse())
		time.Sleep(100 * time.Millisecond)
	}
	proxy.Restore()
	it.waitCount(index, 18000, 3*time.Minute)
	r.stop()
	it.verifyLines(index, want)
	if peak > bound || peak == 0 {
		t.Fatalf("in-flight bytes peaked at %d during the outage, bound %d", peak, bound)
	}
	t.Logf("in-flight peak during 30 s outage: %d bytes (bound %d)", peak, bound)
}

func TestIntegrationRotationUnderLoad(t *testing.T) {
	it := newITest(t)
	index := "logs-docker.container-" + it.ns
	const n = 40000 // ~130 bytes per json-file record: ~5 MB through a 1m x 3 log
	const n0 = float64(n)
	id := it.run("rot", lineScript("rot", n, 20, " 0123456789abcdefghijklmnopqrstuvwxyz0123456789"), nil,
		map[string]string{"max-size": "1m", "max-file": "3"})
	r := it.start(strings.TrimPrefix(it.esURL, "http://"), nil)
	it.waitCount(index, n, 3*time.Minute)
	st, ok := r.s.DescribeContainer(id).(readerStatus)
	if !ok || st.FileNumber < 3 {
		t.Fatalf("reader followed %d rotations, want at least 3 (status %+v)", st.FileNumber, st)
	}
	t.Logf("followed %d rotations", st.FileNumber)
	r.stop()
	it.verifyLines(index, map[string]int{"rot": n})
	if g := sumMetric(r.reg, "heartwood_shipper_gaps_total"); g != 0 {
		t.Fatalf("%v gaps reported under rotation", g)
	}
	if n := sumMetric(r.reg, "heartwood_shipper_records_read_total"); n < n0 {
		t.Fatalf("read %v records, want at least %v", n, n0)
	}
}

func TestIntegrationSpecialLines(t *testing.T) {
	it := newITest(t)
	index := "logs-docker.container-" + it.ns
	// 100 KiB line, invalid UTF-8 and control bytes, then a 40-line Java trace.
	script := `head -c 102400 /dev/zero | tr '\0' 'x'; echo; printf 'bad \377\376 utf8 \001\033[31m red\n'; ` +
		`printf 'Exception in thread "main" java.lang.IllegalStateException: boom\n'; ` +
		`i=0; while [ $i -lt 38 ]; do printf '\tat com.example.Svc.m%d(Svc.java:%d)\n' $i $i; i=$((i+1)); done; ` +
		`printf 'Caused by: java.lang.NullPointerException\n'; echo done; sleep 3600`
	it.run("special", script, map[string]string{LabelMultilinePreset: "java"}, nil)
	it.run("jsonlog", `echo '{"level":"WARN","msg":"disk low","free_mb":12}'; echo 'not json'; sleep 3600`,
		map[string]string{LabelJSON: "true"}, nil)
	r := it.start(strings.TrimPrefix(it.esURL, "http://"), nil)
	it.waitCount(index, 6, 2*time.Minute)
	r.stop()
	docs := it.fetchAll(index)
	var special, jsonDocs []esDoc
	for _, d := range docs {
		if strings.HasPrefix(d.Container.Name, "special") {
			special = append(special, d)
		} else {
			jsonDocs = append(jsonDocs, d)
		}
	}
	sort.Slice(special, func(i, j int) bool { return special[i].Event.Sequence < special[j].Event.Sequence })
	if len(special) != 4 {
		t.Fatalf("special container: %d documents, want 4", len(special))
	}
	if m := special[0].Message; len(m) != 102400 || strings.Trim(m, "x") != "" {
		t.Fatalf("100 KiB line arrived as %d bytes", len(m))
	}
	if !strings.Contains(special[0].Message, "x") || !contains(special[0].Tags, "partial") {
		t.Fatalf("100 KiB line not marked as reassembled: tags %v", special[0].Tags)
	}
	if want := "bad \uFFFD\uFFFD utf8 \x01\x1b[31m red"; special[1].Message != want {
		t.Fatalf("sanitized line = %q, want %q", special[1].Message, want)
	}
	trace := special[2].Message
	if lines := strings.Count(trace, "\n") + 1; lines != 40 || !strings.HasPrefix(trace, "Exception in thread") || !strings.HasSuffix(trace, "NullPointerException") {
		t.Fatalf("java trace arrived as %d lines: %.200q", lines, trace)
	}
	if special[3].Message != "done" {
		t.Fatalf("last line = %q", special[3].Message)
	}
	sort.Slice(jsonDocs, func(i, j int) bool { return jsonDocs[i].Event.Sequence < jsonDocs[j].Event.Sequence })
	if len(jsonDocs) != 2 || jsonDocs[0].Message != "disk low" || jsonDocs[0].Log.Level != "warn" ||
		!strings.Contains(string(jsonDocs[0].JSON), `"free_mb":12`) || jsonDocs[1].Message != "not json" {
		t.Fatalf("json container docs: %+v", jsonDocs)
	}
}

func TestIntegrationDeadLetterOnMappingConflict(t *testing.T) {
	it := newITest(t)
	// A stricter template for one dataset: message must be a number.
	tpl := fmt.Sprintf(`{"index_patterns":["logs-dlqtest-%s"],"priority":170,"data_stream":{},
		"template":{"settings":{"index":{"auto_expand_replicas":"0-1"}},"mappings":{"dynamic":false,"properties":{"@timestamp":{"type":"date_nanos"},"message":{"type":"long"}}}}}`, it.ns)
	it.http("PUT", "/_index_template/hwtest-dlq-"+it.runID, []byte(tpl))
	it.run("dlq", `echo 123; echo abc; echo 456; sleep 3600`, map[string]string{LabelDataset: "dlqtest"}, nil)
	r := it.start(strings.TrimPrefix(it.esURL, "http://"), nil)
	it.waitCount("logs-dlqtest-"+it.ns, 2, 2*time.Minute)
	dl := "logs-heartwood.deadletter-" + it.ns
	it.waitCount(dl, 1, time.Minute)
	r.stop()
	body := it.http("POST", "/"+dl+"/_search", []byte(`{"size":10}`))
	if !strings.Contains(string(body), "abc") || !strings.Contains(string(body), "mapper_parsing_exception") &&
		!strings.Contains(string(body), "document_parsing_exception") {
		t.Fatalf("dead letter lacks the raw line or the error: %s", body)
	}
	if d := counterValue(r.reg, "heartwood_shipper_events_acked_total", "dead_lettered"); d != 1 {
		t.Fatalf("dead_lettered = %v, want 1", d)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func counterValue(reg *prometheus.Registry, name, outcome string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func waitMetric(t *testing.T, reg *prometheus.Registry, name, outcome string, atLeast float64, timeout time.Duration) {
	t.Helper()
	poll.UntilTrue(t, timeout, fmt.Sprintf("%s{outcome=%q} to reach %v", name, outcome, atLeast), func() bool { return counterValue(reg, name, outcome) >= atLeast })
}

func TestIntegrationDockerAPIFallback(t *testing.T) {
	it := newITest(t)
	es := strings.TrimPrefix(it.esURL, "http://")
	index := "logs-docker.container-" + it.ns
	const n = 3000
	it.runDriver("api", lineScript("api", n, 200, ""), nil, "local", nil)
	a := it.start(es, nil)
	poll.UntilTrue(t, time.Minute, "progress through the Docker logs API", func() bool { return it.count(index) >= n/5 })
	a.stop()
	b := it.start(es, nil)
	it.waitCount(index, n, 2*time.Minute)
	b.stop()
	it.verifyLines(index, map[string]int{"api": n})
}

func TestIntegrationRemovedContainerDrains(t *testing.T) {
	it := newITest(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(it.esURL, "http://"))
	index := "logs-docker.container-" + it.ns
	const n = 5000
	r := it.start(proxy.Addr, func(c *Config) { c.MaxInflightBytes = 64 << 10; c.BatchBytes = 16 << 10 })
	waitReady(t, r.s)
	proxy.Cut() // the shipper falls behind: it must still get every line
	script := strings.TrimSuffix(lineScript("gone", n, 0, ""), "; sleep 3600")
	id := it.run("gone", script, nil, nil)
	// Wait for the container to write everything and exit, then remove it.
	poll.Until(t, time.Minute, "the container to finish writing and exit", func() (bool, string) {
		in, err := it.cli.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return in.State.Status == "exited", in.State.Status
	})
	if r.s.DescribeContainer(id) == nil {
		t.Fatal("no reader for the container before its removal")
	}
	testenv.Remove(it.cli, id)
	time.Sleep(2 * time.Second)
	proxy.Restore()
	it.waitCount(index, n, 2*time.Minute)
	r.stop()
	it.verifyLines(index, map[string]int{"gone": n})
}

func TestIntegrationPausedContainerKeepsState(t *testing.T) {
	it := newITest(t)
	index := "logs-docker.container-" + it.ns
	const n = 2000
	id := it.run("paused", lineScript("paused", n, 300, ""), nil, nil)
	r := it.start(strings.TrimPrefix(it.esURL, "http://"), nil)
	poll.UntilTrue(t, time.Minute, "300 lines shipped", func() bool { return it.count(index) >= 300 })
	ctx := context.Background()
	if err := it.cli.ContainerPause(ctx, id); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if r.s.DescribeContainer(id) == nil {
		t.Fatal("paused container lost its reader")
	}
	if err := it.cli.ContainerUnpause(ctx, id); err != nil {
		t.Fatal(err)
	}
	it.waitCount(index, n, 2*time.Minute)
	r.stop()
	it.verifyLines(index, map[string]int{"paused": n})
}

func TestIntegrationSendEvent(t *testing.T) {
	it := newITest(t)
	r := it.start(strings.TrimPrefix(it.esURL, "http://"), nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	doc := map[string]any{"@timestamp": "2026-11-28T10:00:00.000000001Z", "message": "paused idle container",
		"event": map[string]any{"action": "pause"}, "container": map[string]any{"id": "abc"}}
	if err := r.s.SendEvent(ctx, "heartwood.watchman", doc); err != nil {
		t.Fatal(err)
	}
	// The same event again (a retry) is not indexed twice.
	if err := r.s.SendEvent(ctx, "heartwood.watchman", doc); err != nil {
		t.Fatal(err)
	}
	if err := r.s.SendEvent(ctx, "bad-dataset", doc); err == nil {
		t.Fatal("invalid dataset accepted")
	}
	r.stop()
	index := "logs-heartwood.watchman-" + it.ns
	if n := it.count(index); n != 1 {
		t.Fatalf("%s holds %d documents, want 1", index, n)
	}
	body := string(it.http("POST", "/"+index+"/_search", []byte(`{"query":{"term":{"event.action":"pause"}}}`)))
	if !strings.Contains(body, `"paused idle container"`) || !strings.Contains(body, `"host":{"name":"itest-node"}`) {
		t.Fatalf("event not found or not enriched: %s", body)
	}
}

func waitReady(t *testing.T, s *Shipper) {
	t.Helper()
	poll.Until(t, time.Minute, "shipper ready", func() (bool, string) {
		if err := s.Ready(); err != nil {
			return false, err.Error()
		}
		return true, ""
	})
}

// sumMetric adds up every series of a counter family.
func sumMetric(reg *prometheus.Registry, name string) float64 {
	mfs, _ := reg.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestIntegrationKill9 kills a shipper process with SIGKILL mid-stream (no
// final checkpoint flush, acknowledgements in flight) and starts a new one
// on the same data directory: every line must still arrive exactly once.
func TestIntegrationKill9(t *testing.T) {
	it := newITest(t)
	index := "logs-docker.container-" + it.ns
	const containers, lines = 4, 5000
	want := map[string]int{}
	for k := range containers {
		tag := fmt.Sprintf("k%d", k)
		want[tag] = lines
		it.run(tag, lineScript(tag, lines, 200, ""), nil, nil)
	}
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestShipperProcessHelper$", "-test.v")
		cmd.Env = append(os.Environ(), "HEARTWOOD_SHIPPER_HELPER=1", "HEARTWOOD_SHIPPER_HELPER_RUNID="+it.runID,
			"HEARTWOOD_SHIPPER_HELPER_DATA="+it.data)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	first := start()
	t.Cleanup(func() { _ = first.Process.Kill() })
	poll.UntilTrue(t, 2*time.Minute, "a third of the lines shipped before the kill", func() bool { return it.count(index) >= containers*lines/3 })
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	killedAt := it.count(index)
	second := start()
	defer func() { _ = second.Process.Kill(); _ = second.Wait() }()
	it.waitCount(index, containers*lines, 3*time.Minute)
	it.verifyLines(index, want)
	t.Logf("killed with SIGKILL at %d documents; restarted process completed %d exactly once", killedAt, containers*lines)
}

// TestShipperProcessHelper is the shipper process that TestIntegrationKill9
// starts and kills; run directly it only skips.
func TestShipperProcessHelper(t *testing.T) {
	if os.Getenv("HEARTWOOD_SHIPPER_HELPER") != "1" {
		t.Skip("helper process for TestIntegrationKill9")
	}
	runID := os.Getenv("HEARTWOOD_SHIPPER_HELPER_RUNID")
	it := &itest{t: t, cli: testenv.Docker(t), runID: runID, ns: "t" + runID,
		esURL: strings.TrimRight(testenv.RequireES(t), "/"), data: os.Getenv("HEARTWOOD_SHIPPER_HELPER_DATA")}
	it.start(strings.TrimPrefix(it.esURL, "http://"), nil)
	// Run until killed; never outlive the test that started us.
	parent := os.Getppid()
	for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline) && os.Getppid() == parent; {
		time.Sleep(500 * time.Millisecond)
	}
	os.Exit(0)
}

// TestIntegrationTTYLineWithoutNewline: a TTY container with the local log
// driver (read through the Docker logs API, not multiplexed) prints 32 MB
// without a newline, then one more line. The shipper ships the long line's
// first max-event-bytes as one event tagged truncated, skips the rest,
// ships the next line, and its heap does not grow with the long line.
func TestIntegrationTTYLineWithoutNewline(t *testing.T) {
	it := newITest(t)
	index := "logs-docker.container-" + it.ns
	const maxEvent = 64 << 10
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := it.start(strings.TrimPrefix(it.esURL, "http://"), func(c *Config) { c.MaxEventBytes = maxEvent })
	defer r.stop()
	testenv.Run(t, it.cli, it.runID, testenv.Spec{
		Name: "tty-" + it.runID,
		Config: &container.Config{Image: it.image, Tty: true, Labels: map[string]string{},
			Cmd: []string{"sh", "-c", `head -c 32000000 /dev/zero | tr '\0' x; printf '\nafter the long line\n'; sleep 3600`}},
		HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "local"}},
	})
	peak := uint64(0)
	poll.UntilTrue(t, 3*time.Minute, "the long line and the next one shipped", func() bool {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		return it.count(index) >= 2
	})
	it.waitCount(index, 2, time.Minute)
	docs := it.fetchAll(index)
	long, next := docs[0], docs[1]
	if len(long.Message) != maxEvent || !contains(long.Tags, "truncated") || !strings.HasPrefix(long.Message, "xxxxxxxx") {
		t.Fatalf("long line shipped as %d bytes (%.20q…) with tags %v, want %d bytes tagged truncated", len(long.Message), long.Message, long.Tags, maxEvent)
	}
	if !strings.HasPrefix(next.Message, "after the long line") {
		t.Fatalf("next event %.80q, want the line after the long one", next.Message)
	}
	if grew := int64(peak) - int64(before.HeapInuse); grew > 24<<20 {
		t.Fatalf("heap grew by %d bytes while a 32 MB line was read", grew)
	}
	t.Logf("heap in use: %d bytes before, peak %d", before.HeapInuse, peak)
}
