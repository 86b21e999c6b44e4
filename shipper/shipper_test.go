package shipper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/inventory/inventorytest"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// fakeContainer is a running json-file container for the fake inventory.
func fakeContainer(id string, labels map[string]string) *inventory.Container {
	c := inventorytest.Container(id, id[:8])
	c.Image, c.LogDriver = "busybox:latest", "json-file"
	if labels != nil {
		c.Labels = labels
	}
	return c
}

// fakeOutput acknowledges documents in random order, a fraction of them
// only after a delay, and records every delivery.
type fakeOutput struct {
	mu        sync.Mutex
	delivered map[string]string // _id -> message
	dups      int
	order     []string
	stopAcks  bool // when set, accept but never acknowledge (a crash)
	gaps      []string
}

func newFakeOutput() *fakeOutput { return &fakeOutput{delivered: map[string]string{}} }

func (o *fakeOutput) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (o *fakeOutput) Ready() error                  { return nil }
func (o *fakeOutput) Do(_ context.Context, method, _ string, _ []byte) (int, []byte, error) {
	return fakeClusterAnswer(method)
}

// fakeClusterAnswer answers the template installer: nothing installed
// yet (404), every PUT accepted.
func fakeClusterAnswer(method string) (int, []byte, error) {
	if method == http.MethodGet {
		return http.StatusNotFound, []byte(`{}`), nil
	}
	return http.StatusOK, []byte(`{"acknowledged":true}`), nil
}

func (o *fakeOutput) Write(ctx context.Context, docs []esout.Doc, ack func([]esout.Result)) error {
	o.mu.Lock()
	stop := o.stopAcks
	if stop {
		for _, d := range docs {
			if bytes.Contains(d.Body, []byte(`"log-gap"`)) {
				o.gaps = append(o.gaps, string(d.Body))
			}
		}
	}
	o.mu.Unlock()
	if stop {
		return nil
	}
	results := make([]esout.Result, len(docs))
	for i, d := range docs {
		var body struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(d.Body, &body); err != nil {
			panic(fmt.Sprintf("invalid body %s: %v", d.Body, err))
		}
		o.mu.Lock()
		if _, ok := o.delivered[d.ID]; ok {
			o.dups++
			results[i] = esout.Result{Token: d.Token, Outcome: esout.Duplicate}
		} else {
			o.delivered[d.ID] = body.Message
			o.order = append(o.order, body.Message)
			results[i] = esout.Result{Token: d.Token, Outcome: esout.Delivered}
		}
		o.mu.Unlock()
	}
	rand.Shuffle(len(results), func(i, j int) { results[i], results[j] = results[j], results[i] })
	half := len(results) / 2
	ack(results[:half])
	go func() { time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond); ack(results[half:]) }()
	return nil
}

func (o *fakeOutput) messages() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[string]int{}
	for _, msg := range o.delivered {
		m[msg]++
	}
	return m
}

type env struct {
	t    testing.TB
	root string
	data string
	inv  *inventorytest.Fake
	// cfgMut adjusts the test config before New.
	cfgMut func(*Config)
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, root: t.TempDir(), data: t.TempDir(), inv: inventorytest.New()}
	return e
}

func (e *env) addContainer(id string, labels map[string]string) string {
	if err := os.MkdirAll(filepath.Join(e.root, id), 0o755); err != nil {
		e.t.Fatal(err)
	}
	e.inv.Set("create", fakeContainer(id, labels))
	return filepath.Join(e.root, id, id+"-json.log")
}

func appendLines(t testing.TB, path string, lines ...string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		rec, _ := json.Marshal(map[string]string{"log": l, "stream": "stdout", "time": time.Now().UTC().Format(time.RFC3339Nano)})
		if _, err := f.Write(append(rec, '\n')); err != nil {
			t.Fatal(err)
		}
	}
}

// start runs an inventory and a shipper until the returned stop is called.
func (e *env) start(out Output) (*Shipper, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cfg := DefaultConfig()
	cfg.ContainersRoot = e.root
	cfg.PollInterval = 20 * time.Millisecond
	cfg.CheckpointInterval = 50 * time.Millisecond
	cfg.BatchBytes = 4 << 10
	cfg.MaxInflightBytes = 64 << 10
	if e.cfgMut != nil {
		e.cfgMut(&cfg)
	}
	s, err := New(cfg, Deps{Source: e.inv, Output: out, DataDir: e.data, NodeName: "node1", AgentVersion: "test",
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		e.t.Fatal(err)
	}
	wg.Go(func() {
		if err := s.Run(ctx); err != nil && err != context.Canceled {
			e.t.Errorf("Run: %v", err)
		}
	})
	return s, func() { cancel(); wg.Wait() }
}

func expectExactlyOnce(t *testing.T, out *fakeOutput, want []string) {
	t.Helper()
	got := out.messages()
	for _, w := range want {
		if got[w] != 1 {
			t.Fatalf("message %q delivered %d times", w, got[w])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %d distinct messages, want %d", len(got), len(want))
	}
}

func TestExactlyOnceAcrossRestartAndRotation(t *testing.T) {
	e := newEnv(t)
	ids := []string{"aaaaaaaaaaaa0000000000000000000000000000000000000000000000000001", "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000002"}
	var want []string
	paths := map[string]string{}
	for _, id := range ids {
		paths[id] = e.addContainer(id, nil)
	}
	write := func(from, to int) {
		for _, id := range ids {
			var lines []string
			for i := from; i < to; i++ {
				l := fmt.Sprintf("%s line %05d\n", id[:4], i)
				lines = append(lines, l)
				want = append(want, l[:len(l)-1])
			}
			appendLines(t, paths[id], lines...)
		}
	}
	write(0, 500)
	out := newFakeOutput()
	_, stop := e.start(out)
	poll.UntilTrue(t, 20*time.Second, "first 1000 lines", func() bool { return len(out.messages()) == 1000 })
	// Rotate one container's file like json-file does, write more.
	p := paths[ids[0]]
	if err := os.Rename(p, p+".1"); err != nil {
		t.Fatal(err)
	}
	write(500, 800)
	poll.UntilTrue(t, 20*time.Second, "1600 lines", func() bool { return len(out.messages()) == 1600 })
	stop()

	// Lines written while stopped, then a new run on the same data dir.
	write(800, 1000)
	_, stop = e.start(out)
	poll.UntilTrue(t, 20*time.Second, "2000 lines", func() bool { return len(out.messages()) == 2000 })
	time.Sleep(100 * time.Millisecond)
	stop()
	expectExactlyOnce(t, out, want)
}

func TestCrashWithoutAcksReplaysWithSameIDs(t *testing.T) {
	e := newEnv(t)
	id := "cccccccccccc0000000000000000000000000000000000000000000000000003"
	p := e.addContainer(id, nil)
	var want []string
	for i := range 300 {
		l := fmt.Sprintf("crash line %d", i)
		want = append(want, l)
		appendLines(t, p, l+"\n")
	}
	out := newFakeOutput()
	_, stop := e.start(out)
	poll.UntilTrue(t, 20*time.Second, "300 lines", func() bool { return len(out.messages()) == 300 })
	stop()
	// A crash: accepted documents whose acknowledgements never came back.
	// Simulate by deleting the checkpoint file (as if never flushed).
	if err := os.Remove(filepath.Join(e.data, "shipper-checkpoints.json")); err != nil {
		t.Fatal(err)
	}
	_, stop = e.start(out)
	poll.UntilTrue(t, 20*time.Second, "replay as duplicates", func() bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		return out.dups == 300
	})
	stop()
	expectExactlyOnce(t, out, want)
}

func TestMultilineAndJSONLabels(t *testing.T) {
	e := newEnv(t)
	id := "dddddddddddd0000000000000000000000000000000000000000000000000004"
	p := e.addContainer(id, map[string]string{LabelMultilinePreset: "java", LabelJSON: "true"})
	trace := "Exception in thread \"main\" java.lang.RuntimeException: boom\n"
	for i := range 39 {
		trace += fmt.Sprintf("\tat com.example.C.m%d(C.java:%d)\n", i, i)
	}
	appendLines(t, p, "before\n")
	var recs []string
	for _, l := range splitKeep(trace) {
		recs = append(recs, l)
	}
	appendLines(t, p, recs...)
	appendLines(t, p, `{"level":"ERROR","msg":"structured","k":1}`+"\n", "after\n")
	// A 40 KiB line in 16 KiB parts.
	big := make([]byte, 40<<10)
	for i := range big {
		big[i] = 'a' + byte(i%26)
	}
	appendLines(t, p, string(big[:16<<10]), string(big[16<<10:32<<10]), string(big[32<<10:])+"\n", "last\n")
	out := newFakeOutput()
	_, stop := e.start(out)
	poll.UntilTrue(t, 20*time.Second, "6 events", func() bool { return len(out.messages()) == 6 })
	stop()
	got := out.messages()
	for _, w := range []string{"before", trace[:len(trace)-1], "structured", "after", string(big), "last"} {
		if got[w] != 1 {
			t.Errorf("missing event %.80q (got %d messages)", w, len(got))
		}
	}
}

func splitKeep(s string) []string {
	var out []string
	start := 0
	for i := range len(s) {
		if s[i] == '\n' {
			out = append(out, s[start:i+1])
			start = i + 1
		}
	}
	return out
}

// BenchmarkPipeline runs the whole reading pipeline (tail, decode,
// reassemble, encode, batch, ack, checkpoint) over a json-file log of
// 100-byte lines into an output that discards and acknowledges at once.
func BenchmarkPipeline(b *testing.B) {
	const lines = 200_000
	e := &env{t: b, root: b.TempDir(), inv: inventorytest.New(),
		cfgMut: func(c *Config) {
			d := DefaultConfig()
			c.BatchBytes, c.MaxInflightBytes = d.BatchBytes, d.MaxInflightBytes
		}}
	id := "eeeeeeeeeeee0000000000000000000000000000000000000000000000000005"
	p := e.addContainer(id, nil)
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	for i := range lines {
		msg := fmt.Sprintf("2026-11-28 10:57:28 INFO request handled path=/api/v1/items/%07d status=200 dur=3ms padding-", i)
		rec, _ := json.Marshal(map[string]string{"log": (msg + strings.Repeat("x", 100))[:99] + "\n", "stream": "stdout", "time": "2026-11-28T10:57:28.123456789Z"})
		buf = append(append(buf, rec...), '\n')
	}
	if _, err := f.Write(buf); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	for b.Loop() {
		e.data = b.TempDir()
		out := &countingOutput{}
		_, stop := e.start(out)
		for out.n.Load() < lines {
			time.Sleep(time.Millisecond)
		}
		stop()
	}
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := float64(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) / 1e9
	b.ReportMetric(float64(lines)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(cpu/(float64(lines)*float64(b.N))*1e6, "cpu-s/Mlines")
}

type countingOutput struct{ n atomic.Int64 }

func (o *countingOutput) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (o *countingOutput) Ready() error                  { return nil }
func (o *countingOutput) Do(_ context.Context, method, _ string, _ []byte) (int, []byte, error) {
	return fakeClusterAnswer(method)
}
func (o *countingOutput) Write(_ context.Context, docs []esout.Doc, ack func([]esout.Result)) error {
	res := make([]esout.Result, len(docs))
	for i, d := range docs {
		res[i] = esout.Result{Token: d.Token, Outcome: esout.Delivered}
	}
	o.n.Add(int64(len(docs)))
	ack(res)
	return nil
}

// TestCorruptCheckpointQuarantined: a checkpoint file that does not parse
// does not stop the shipper: it is moved aside and counted, and the
// container's logs are read from the beginning of the files Docker keeps.
func TestCorruptCheckpointQuarantined(t *testing.T) {
	e := newEnv(t)
	id := "9999999999990000000000000000000000000000000000000000000000000009"
	p := e.addContainer(id, nil)
	var want []string
	for i := range 50 {
		l := fmt.Sprintf("after corruption %d", i)
		want = append(want, l)
		appendLines(t, p, l+"\n")
	}
	if err := os.WriteFile(filepath.Join(e.data, "shipper-checkpoints.json"), []byte(`{"version":1,"containers":{"`+id+`":{"off`), 0o600); err != nil {
		t.Fatal(err)
	}
	out := newFakeOutput()
	s, stop := e.start(out)
	poll.UntilTrue(t, 20*time.Second, "50 lines", func() bool { return len(out.messages()) == 50 })
	stop()
	expectExactlyOnce(t, out, want)
	if n := testutil.ToFloat64(s.m.checkpointsQuarantined); n != 1 {
		t.Fatalf("quarantined checkpoint files = %v, want 1", n)
	}
	if m, _ := filepath.Glob(filepath.Join(e.data, "shipper-checkpoints.json.corrupt-*")); len(m) != 1 {
		t.Fatalf("quarantined files %v, want 1", m)
	}
}

// TestRemovedContainerSeriesDeleted: once a removed container is drained,
// its per-container series (gaps, lost bytes, headroom warnings, lag) are
// deleted, so that churn does not grow /metrics without bound.
// containerWithGap adds a container with lines in its log and a
// checkpoint in a file that no longer exists, so that its reader reports a
// gap; it returns the log's path.
func (e *env) containerWithGap(id string, lines ...string) string {
	e.t.Helper()
	p := e.addContainer(id, nil)
	appendLines(e.t, p, lines...)
	st, err := checkpoint.Open(e.data)
	if err != nil {
		e.t.Fatal(err)
	}
	st.Set(id, checkpoint.Entry{File: checkpoint.FileID{Dev: 1, Ino: 1, FP: 1}, Offset: 10})
	if err := st.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestRemovedContainerSeriesDeleted(t *testing.T) {
	e := newEnv(t)
	id := "8888888888880000000000000000000000000000000000000000000000000008"
	p := e.containerWithGap(id, "one\n", "two\n")
	out := newFakeOutput()
	s, stop := e.start(out)
	defer stop()
	poll.UntilTrue(t, 20*time.Second, "2 lines and the gap event", func() bool { return len(out.messages()) == 3 })
	short := id[:12]
	if n := testutil.ToFloat64(s.m.gaps.WithLabelValues(short)); n != 1 {
		t.Fatalf("gaps = %v, want 1", n)
	}
	s.m.headroomWarns.WithLabelValues(short).Add(0)
	s.m.lostBytes.WithLabelValues(short).Add(0)
	if err := os.RemoveAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	e.inv.Remove(id)
	poll.UntilTrue(t, 20*time.Second, "the removed container's reader to finish", func() bool { return testutil.ToFloat64(s.m.readers) == 0 })
	for name, c := range map[string]prometheus.Collector{"gaps": s.m.gaps, "lost bytes": s.m.lostBytes,
		"headroom warnings": s.m.headroomWarns, "lag": s.m.lag} {
		if n := testutil.CollectAndCount(c); n != 0 {
			t.Errorf("%s: %d series left after the container was removed", name, n)
		}
	}
}

// TestRemovedContainerReleasedAfterGrace: while Elasticsearch is down a
// removed container's reader cannot hand over its data; after the removal
// grace it gives up, releases its deleted files and reports the unread
// bytes as a gap, instead of holding them open without bound.
func TestRemovedContainerReleasedAfterGrace(t *testing.T) {
	e := newEnv(t)
	id := "7777777777770000000000000000000000000000000000000000000000000007"
	p := e.addContainer(id, nil)
	var lines []string
	for i := range 400 {
		lines = append(lines, fmt.Sprintf("held line %d\n", i))
	}
	appendLines(t, p, lines...)
	e.cfgMut = func(c *Config) { c.BatchBytes, c.MaxInflightBytes, c.RemovalGrace = 1024, 2048, time.Second }
	out := newFakeOutput()
	out.stopAcks = true
	s, stop := e.start(out)
	defer stop()
	poll.UntilTrue(t, 20*time.Second, "reader blocked on the budget", func() bool { return s.budget.inUse() > 0 })
	if err := os.RemoveAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	e.inv.Remove(id)
	poll.UntilTrue(t, 20*time.Second, "the removed container's reader to give up", func() bool { return testutil.ToFloat64(s.m.readers) == 0 })
	out.mu.Lock()
	gaps := out.gaps
	out.mu.Unlock()
	if len(gaps) != 1 || !strings.Contains(gaps[0], `"bytes":`) {
		t.Fatalf("gap events %q, want one with the unread bytes", gaps)
	}
	if _, ok := s.store.Get(id); ok {
		t.Fatal("checkpoint of the released container kept")
	}
}

// panickyOutput panics when asked to write a document carrying "poison".
type panickyOutput struct{ *fakeOutput }

func (o panickyOutput) Write(ctx context.Context, docs []esout.Doc, ack func([]esout.Result)) error {
	for _, d := range docs {
		if bytes.Contains(d.Body, []byte("poison")) {
			panic("poisoned document")
		}
	}
	return o.fakeOutput.Write(ctx, docs, ack)
}

// TestReaderPanicDoesNotStopOthers: a panic in one container's reader is
// recovered and counted; the agent keeps running and the other containers
// keep shipping.
func TestReaderPanicDoesNotStopOthers(t *testing.T) {
	e := newEnv(t)
	bad := e.addContainer("6666666666660000000000000000000000000000000000000000000000000006", nil)
	good := e.addContainer("5555555555550000000000000000000000000000000000000000000000000005", nil)
	appendLines(t, bad, "poison\n")
	appendLines(t, good, "fine 1\n", "fine 2\n")
	out := newFakeOutput()
	s, stop := e.start(panickyOutput{out})
	defer stop()
	poll.UntilTrue(t, 20*time.Second, "the other container's lines", func() bool { return len(out.messages()) == 2 })
	poll.UntilTrue(t, 20*time.Second, "the panic counted", func() bool {
		return testutil.ToFloat64(s.m.panics.WithLabelValues("reader")) == 1
	})
	appendLines(t, good, "fine 3\n")
	poll.UntilTrue(t, 20*time.Second, "shipping to go on", func() bool { return len(out.messages()) == 3 })
}
