//go:build integration

package esout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/prometheus/client_golang/prometheus"
)

// testDataset is the dataset of the integration tests' data streams,
// logs-heartwood.esouttest-<unique namespace>.
const testDataset = "heartwood.esouttest"

// testTemplate maps the test data streams. Elasticsearch here has no
// built-in logs-*-* template, so the tests bring their own.
const testTemplate = `{
  "index_patterns": ["logs-heartwood.esouttest-*"],
  "data_stream": {},
  "priority": 300,
  "template": {
    "settings": {"index": {"number_of_replicas": 0, "refresh_interval": "1s"}},
    "mappings": {
      "properties": {
        "@timestamp": {"type": "date_nanos"},
        "message": {"type": "text"},
        "n": {"type": "long"},
        "seq": {"type": "long"},
        "data_stream": {"properties": {
          "type": {"type": "keyword"},
          "dataset": {"type": "keyword"},
          "namespace": {"type": "keyword"}
        }}
      }
    }
  }
}`

type esEnv struct {
	url    string
	ns     string // unique namespace of this test
	stream string // logs-heartwood.esouttest-<ns>
}

// newESEnv requires Elasticsearch and installs the test template.
func newESEnv(t *testing.T) *esEnv {
	t.Helper()
	url := strings.TrimRight(testenv.RequireES(t), "/")
	ns := "t" + testenv.RunID()
	e := &esEnv{url: url, ns: ns, stream: "logs-" + testDataset + "-" + ns}
	if st, body := e.do(t, http.MethodPut, "/_index_template/heartwood-esouttest", testTemplate); st != 200 {
		t.Fatalf("test template: %d %s", st, body)
	}
	return e
}

func (e *esEnv) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// count refreshes index and counts its documents.
func (e *esEnv) count(t *testing.T, index string) int {
	t.Helper()
	if st, body := e.do(t, http.MethodPost, "/"+index+"/_refresh", ""); st != 200 {
		t.Fatalf("refresh %s: %d %s", index, st, body)
	}
	st, body := e.do(t, http.MethodGet, "/"+index+"/_count", "")
	if st != 200 {
		t.Fatalf("count %s: %d %s", index, st, body)
	}
	var v struct{ Count int }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v.Count
}

// sources returns the _source of documents by _id.
func (e *esEnv) sources(t *testing.T, index string, ids ...string) map[string]json.RawMessage {
	t.Helper()
	q, _ := json.Marshal(map[string]any{"size": len(ids), "query": map[string]any{"ids": map[string]any{"values": ids}}})
	st, body := e.do(t, http.MethodPost, "/"+index+"/_search", string(q))
	if st != 200 {
		t.Fatalf("search %s: %d %s", index, st, body)
	}
	var v struct {
		Hits struct {
			Hits []struct {
				ID     string          `json:"_id"`
				Source json.RawMessage `json:"_source"`
			}
		}
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	out := map[string]json.RawMessage{}
	for _, h := range v.Hits.Hits {
		out[h.ID] = h.Source
	}
	return out
}

func (e *esEnv) config() Config {
	cfg := DefaultConfig()
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.RetryBackoffMin = 20 * time.Millisecond
	cfg.RetryBackoffMax = time.Second
	cfg.RequestTimeout = 10 * time.Second
	cfg.DeadLetter.Namespace = e.ns
	return cfg
}

// start runs a writer against addr (host:port); it stops at test end.
func (e *esEnv) start(t *testing.T, cfg Config, addr string) (*Writer, *prometheus.Registry) {
	t.Helper()
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, err := New(cfg, client, Options{Registerer: reg, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return w, reg
}

func (e *esEnv) docs(n int, prefix string) []Doc {
	docs := make([]Doc, n)
	for i := range docs {
		ts := time.Date(2026, 11, 28, 10, 0, 0, i, time.UTC).Format(time.RFC3339Nano)
		docs[i] = Doc{
			Index: e.stream,
			ID:    fmt.Sprintf("%s-%d", prefix, i),
			Body:  []byte(fmt.Sprintf(`{"@timestamp":%q,"message":"line %d of %s","n":%d,"seq":%d,"data_stream":{"type":"logs","dataset":%q,"namespace":%q}}`, ts, i, prefix, i, i, testDataset, e.ns)),
			Raw:   []byte(fmt.Sprintf(`{"log":"line %d of %s\n","stream":"stdout","time":%q}`, i, prefix, ts)),
			Token: uint64(i),
		}
	}
	return docs
}

func outcomes(a *acks) map[Outcome]int {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := map[Outcome]int{}
	for _, o := range a.outcomes {
		m[o]++
	}
	return m
}

// TestIntegrationExactlyOnceReplay writes documents, then the same ones
// again: the replay is all Duplicate and the count does not change.
func TestIntegrationExactlyOnceReplay(t *testing.T) {
	e := newESEnv(t)
	w, reg := e.start(t, e.config(), e.url)
	const n = 5000
	docs := e.docs(n, "r")
	for round, want := range []Outcome{Delivered, Duplicate} {
		a := newAcks(t, n)
		for i := 0; i < n; i += 500 {
			if err := w.Write(context.Background(), docs[i:i+500], a.ack); err != nil {
				t.Fatal(err)
			}
		}
		a.wait(t, 60*time.Second)
		if got := outcomes(a); got[want] != n {
			t.Fatalf("round %d: outcomes %v, want all %v", round, got, want)
		}
		if c := e.count(t, e.stream); c != n {
			t.Fatalf("round %d: %d docs in %s, want %d", round, c, e.stream, n)
		}
	}
	src := e.sources(t, e.stream, "r-0", "r-4999")
	for _, i := range []int{0, 4999} {
		if got, want := string(src[fmt.Sprintf("r-%d", i)]), string(docs[i].Body); got != want {
			t.Errorf("doc r-%d: _source %s, want %s", i, got, want)
		}
	}
	if v := counter(t, reg, "heartwood_shipper_es_docs_duplicate_total"); v != n {
		t.Errorf("duplicate_total = %v, want %d", v, n)
	}
	if err := w.Ready(); err != nil {
		t.Errorf("not ready: %v", err)
	}
}

// TestIntegrationMappingConflictDeadLetter sends a batch in which one
// document conflicts with the mapping: it lands in the dead-letter stream
// with its error and raw record, the others are delivered; a replay of the
// batch changes nothing.
func TestIntegrationMappingConflictDeadLetter(t *testing.T) {
	e := newESEnv(t)
	cfg := e.config()
	w, reg := e.start(t, cfg, e.url)
	docs := e.docs(10, "m")
	bad := &docs[4]
	bad.Body = []byte(strings.Replace(string(bad.Body), `"n":4`, `"n":"four"`, 1))
	dlStream := "logs-" + cfg.DeadLetter.Dataset + "-" + e.ns
	for round, want := range []map[Outcome]int{{Delivered: 9, DeadLettered: 1}, {Duplicate: 9, DeadLettered: 1}} {
		a := newAcks(t, len(docs))
		if err := w.Write(context.Background(), docs, a.ack); err != nil {
			t.Fatal(err)
		}
		a.wait(t, 60*time.Second)
		if got := outcomes(a); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("round %d: outcomes %v, want %v", round, got, want)
		}
		if a.get(bad.Token) != DeadLettered {
			t.Fatalf("round %d: conflicting doc %v", round, a.get(bad.Token))
		}
		if c := e.count(t, e.stream); c != 9 {
			t.Fatalf("round %d: %d docs in %s, want 9", round, c, e.stream)
		}
		if c := e.count(t, dlStream); c != 1 {
			t.Fatalf("round %d: %d dead letters, want 1", round, c)
		}
	}
	src := e.sources(t, dlStream, deadLetterID(bad.Index, bad.ID, bad.Body))
	if len(src) != 1 {
		t.Fatalf("dead letter not found by its id: %v", src)
	}
	for _, raw := range src {
		var dl struct {
			Event     struct{ Original string }
			Error     struct{ Type, Message string }
			Heartwood struct {
				DeadLetter struct {
					Index, ID, Document string
					Status              int
				} `json:"dead_letter"`
			}
		}
		if err := json.Unmarshal(raw, &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Error.Type != "document_parsing_exception" || !strings.Contains(dl.Error.Message, "failed to parse field [n]") ||
			dl.Event.Original != string(bad.Raw) || dl.Heartwood.DeadLetter.ID != bad.ID ||
			dl.Heartwood.DeadLetter.Index != e.stream || dl.Heartwood.DeadLetter.Status != 400 ||
			dl.Heartwood.DeadLetter.Document != string(bad.Body) {
			t.Fatalf("dead letter %s", raw)
		}
	}
	// The dead-letter stream uses the closed mapping of our template.
	st, body := e.do(t, http.MethodGet, "/"+dlStream+"/_mapping", "")
	if st != 200 || !strings.Contains(body, `"dynamic":"false"`) || !strings.Contains(body, `"date_nanos"`) {
		t.Fatalf("dead-letter mapping: %d %s", st, body)
	}
	if v := counter(t, reg, "heartwood_shipper_es_docs_dead_lettered_total"); v != 2 {
		t.Errorf("dead_lettered_total = %v, want 2 (one per round)", v)
	}
	if v := counter(t, reg, "heartwood_shipper_es_dead_letter_failures_total"); v != 0 {
		t.Errorf("dead_letter_failures_total = %v", v)
	}
}

// TestIntegrationOutage cuts Elasticsearch off (a proxy) for some seconds
// under a steady stream of writes: Write blocks once the in-flight budget
// is full, the budget is never exceeded, and after the restore every
// document is acknowledged exactly once and present exactly once.
func TestIntegrationOutage(t *testing.T) {
	e := newESEnv(t)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(strings.TrimPrefix(e.url, "http://"), "https://"))
	cfg := e.config()
	cfg.FlushBytes, cfg.MaxInflightBytes = 64<<10, 512<<10
	cfg.RetryBackoffMax = 500 * time.Millisecond
	cfg.RequestTimeout = 3 * time.Second
	w, reg := e.start(t, cfg, "http://"+proxy.Addr)

	const n = 30000
	docs := e.docs(n, "o")
	a := newAcks(t, n)
	var accepted atomic.Int64
	writeErr := make(chan error, 1)
	go func() {
		for i := 0; i < n; i += 100 {
			if err := w.Write(context.Background(), docs[i:i+100], a.ack); err != nil {
				writeErr <- err
				return
			}
			accepted.Add(100)
			time.Sleep(2 * time.Millisecond) // ~50k docs/s offered at most
		}
		writeErr <- nil
	}()

	var maxInflight atomic.Int64
	var maxHeap atomic.Uint64
	stopSampling := make(chan struct{})
	var sampling sync.WaitGroup
	sampling.Go(func() {
		var ms runtime.MemStats
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
			if u := w.Stats().InflightBytes; u > maxInflight.Load() {
				maxInflight.Store(u)
			}
			if i%20 == 0 {
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > maxHeap.Load() {
					maxHeap.Store(ms.HeapAlloc)
				}
			}
		}
	})

	// Let some documents through, then cut.
	deadline := time.Now().Add(30 * time.Second)
	for counter(t, reg, "heartwood_shipper_es_docs_delivered_total") < 2000 {
		if time.Now().After(deadline) {
			t.Fatal("nothing delivered before the outage")
		}
		time.Sleep(10 * time.Millisecond)
	}
	proxy.Cut()
	t.Log("elasticsearch cut off")
	time.Sleep(time.Second)
	acceptedAtCut := accepted.Load()
	time.Sleep(4 * time.Second)
	stalled := accepted.Load() - acceptedAtCut
	ready := w.Ready()
	proxy.Restore()
	t.Log("elasticsearch restored")
	if ready == nil {
		t.Error("writer ready during the outage")
	}
	// During the cut, Write accepted at most one budget's worth.
	maxDocsInBudget := int64(cfg.MaxInflightBytes) / int64(len(docs[0].Body)+len(docs[0].Raw)+itemOverhead)
	if stalled > maxDocsInBudget {
		t.Errorf("%d docs accepted during the outage, more than a full budget (%d)", stalled, maxDocsInBudget)
	}

	if err := <-writeErr; err != nil {
		t.Fatal(err)
	}
	a.wait(t, 120*time.Second)
	close(stopSampling)
	sampling.Wait()

	got := outcomes(a)
	if got[DeadLettered] != 0 || got[Delivered]+got[Duplicate] != n {
		t.Fatalf("outcomes %v, want %d delivered or duplicate", got, n)
	}
	if c := e.count(t, e.stream); c != n {
		t.Fatalf("%d docs in %s, want exactly %d", c, e.stream, n)
	}
	if m := maxInflight.Load(); m > int64(cfg.MaxInflightBytes) {
		t.Errorf("in-flight bytes peaked at %d, budget %d", m, cfg.MaxInflightBytes)
	}
	t.Logf("outcomes %v; retried %v; in-flight peak %d of %d bytes; heap peak %.1f MiB (test data included); accepted during outage %d",
		got, counter(t, reg, "heartwood_shipper_es_docs_retried_total"), maxInflight.Load(), cfg.MaxInflightBytes,
		float64(maxHeap.Load())/(1<<20), stalled)
	if err := w.Ready(); err != nil {
		t.Errorf("not ready after restore: %v", err)
	}
}

// TestIntegrationPutIndexTemplate: idempotent, and a rejection carries
// Elasticsearch's reason.
func TestIntegrationPutIndexTemplate(t *testing.T) {
	e := newESEnv(t)
	w, _ := e.start(t, e.config(), e.url)
	for range 2 {
		if err := w.PutIndexTemplate(context.Background(), "heartwood-esouttest", []byte(testTemplate)); err != nil {
			t.Fatal(err)
		}
	}
	err := w.PutIndexTemplate(context.Background(), "heartwood-esouttest-bad", []byte(`{"index_patterns":["x"],"nope":1}`))
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 400 || se.Type == "" {
		t.Fatalf("bad template: %v", err)
	}
}

// TestIntegrationClientCompresses: with a client that compresses request
// bodies itself, esout notices and stops compressing, and nothing is lost
// or dead-lettered on the way.
func TestIntegrationClientCompresses(t *testing.T) {
	e := newESEnv(t)
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{e.url}, CompressRequestBody: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(e.config(), client, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	docs := e.docs(300, "z")
	a := newAcks(t, len(docs))
	if err := w.Write(ctx, docs, a.ack); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 60*time.Second)
	if got := outcomes(a); got[Delivered] != len(docs) {
		t.Fatalf("outcomes %v", got)
	}
	if c := e.count(t, e.stream); c != len(docs) {
		t.Fatalf("%d docs in ES, want %d", c, len(docs))
	}
	if !w.clientCompresses.Load() {
		t.Error("client compression not detected")
	}
}
