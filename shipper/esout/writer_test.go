package esout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeES is an httptest Elasticsearch that implements bulk "create"
// semantics (201, or 409 for an existing _id) and index templates, with
// hooks to inject failures.
type fakeES struct {
	t *testing.T

	mu        sync.Mutex
	docs      map[string]string // index \x00 id -> body
	templates map[string]string
	bulks     int // bulk requests received
	gzipped   int // of which gzip-encoded
	maxItems  int // largest bulk request, in items
	maxBytes  int // largest bulk request, uncompressed bytes
	malformed int // requests that were not NDJSON bulk bodies
	lenient   bool
	attempts  map[string]int

	// whole decides a whole bulk request's fate: 0 = normal, -1 = drop
	// the connection, else that HTTP status. n counts bulk requests from 1.
	whole func(n int, ids []string) int
	// item decides an item's status: 0 = normal create semantics.
	item func(index, id string, attempt int) (status int, errType, reason string)
	// templateStatus, if set, answers template PUTs.
	templateStatus int
}

func newFakeES(t *testing.T) *fakeES {
	return &fakeES{t: t, docs: map[string]string{}, templates: map[string]string{}, attempts: map[string]int{}}
}

func (f *fakeES) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	gz := r.Header.Get("Content-Encoding") == "gzip"
	if gz {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			f.t.Errorf("fake es: bad gzip: %v", err)
			http.Error(w, `{"error":{"type":"parse_exception","reason":"bad gzip"},"status":400}`, 400)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			f.t.Errorf("fake es: bad gzip: %v", err)
			http.Error(w, `{"error":{"type":"parse_exception","reason":"bad gzip"},"status":400}`, 400)
			return
		}
	}
	switch {
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_index_template/"):
		f.mu.Lock()
		st := f.templateStatus
		if st == 0 {
			f.templates[strings.TrimPrefix(r.URL.Path, "/_index_template/")] = string(body)
		}
		f.mu.Unlock()
		if st != 0 {
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":{"type":"illegal_argument_exception","reason":"template says no"},"status":%d}`, st)
			return
		}
		_, _ = io.WriteString(w, `{"acknowledged":true}`)
	case r.Method == http.MethodPost && r.URL.Path == "/_bulk":
		f.bulk(w, r, body, gz)
	default:
		http.Error(w, "not found", 404)
	}
}

type fakeAction struct {
	Create *struct {
		Index string `json:"_index"`
		ID    string `json:"_id"`
	} `json:"create"`
}

func (f *fakeES) bulk(w http.ResponseWriter, r *http.Request, body []byte, gz bool) {
	if got := r.URL.Query().Get("filter_path"); got != bulkFilterPath {
		f.t.Errorf("fake es: filter_path = %q", got)
	}
	lines := bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n"))
	if len(lines)%2 != 0 || !bytes.HasSuffix(body, []byte("\n")) {
		f.mu.Lock()
		f.malformed++
		f.mu.Unlock()
		if !f.lenient {
			f.t.Errorf("fake es: malformed NDJSON (%d lines)", len(lines))
		}
		http.Error(w, `{"error":{"type":"illegal_argument_exception","reason":"malformed"},"status":400}`, 400)
		return
	}
	type op struct{ index, id, body string }
	var ops []op
	var ids []string
	for i := 0; i < len(lines); i += 2 {
		var a fakeAction
		if err := json.Unmarshal(lines[i], &a); err != nil || a.Create == nil {
			f.t.Errorf("fake es: bad action line %q: %v", lines[i], err)
			http.Error(w, `{"error":{"type":"illegal_argument_exception","reason":"bad action"},"status":400}`, 400)
			return
		}
		if !json.Valid(lines[i+1]) {
			f.t.Errorf("fake es: source is not JSON: %q", lines[i+1])
		}
		ops = append(ops, op{a.Create.Index, a.Create.ID, string(lines[i+1])})
		ids = append(ids, a.Create.ID)
	}
	f.mu.Lock()
	f.bulks++
	n := f.bulks
	if gz {
		f.gzipped++
	}
	f.maxItems = max(f.maxItems, len(ops))
	f.maxBytes = max(f.maxBytes, len(body))
	f.mu.Unlock()
	if f.whole != nil {
		switch st := f.whole(n, ids); {
		case st == -1:
			hj, ok := w.(http.Hijacker)
			if !ok {
				f.t.Fatal("cannot hijack")
			}
			c, _, _ := hj.Hijack()
			_ = c.Close()
			return
		case st > 0:
			w.WriteHeader(st)
			fmt.Fprintf(w, `{"error":{"root_cause":[],"type":"injected_%d","reason":"injected failure"},"status":%d}`, st, st)
			return
		}
	}
	var out bytes.Buffer
	anyErr := false
	out.WriteString(`{"items":[`)
	f.mu.Lock()
	for i, o := range ops {
		key := o.index + "\x00" + o.id
		f.attempts[key]++
		status, errType, reason := 0, "", ""
		if f.item != nil {
			status, errType, reason = f.item(o.index, o.id, f.attempts[key])
		}
		if status == 0 {
			if _, ok := f.docs[key]; ok {
				status, errType, reason = 409, "version_conflict_engine_exception", "["+o.id+"]: version conflict, document already exists"
			} else {
				f.docs[key] = o.body
				status = 201
			}
		}
		if i > 0 {
			out.WriteByte(',')
		}
		if status >= 300 {
			anyErr = true
			fmt.Fprintf(&out, `{"create":{"_index":%q,"_id":%q,"status":%d,"error":{"type":%q,"reason":%q}}}`, o.index, o.id, status, errType, reason)
		} else {
			fmt.Fprintf(&out, `{"create":{"_index":%q,"_id":%q,"_version":1,"result":"created","status":%d}}`, o.index, o.id, status)
		}
	}
	f.mu.Unlock()
	out.WriteString("]}")
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"errors":%v,"took":1,`, anyErr)
	_, _ = w.Write(out.Bytes()[1:])
}

func (f *fakeES) doc(index, id string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.docs[index+"\x00"+id]
	return b, ok
}

func (f *fakeES) attempt(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[key]
}

func (f *fakeES) count(index string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k := range f.docs {
		if strings.HasPrefix(k, index+"\x00") {
			n++
		}
	}
	return n
}

// acks collects acknowledgements and flags double acks.
type acks struct {
	t        testing.TB
	mu       sync.Mutex
	outcomes map[uint64]Outcome
	calls    int
	busy     atomic.Bool
	done     chan struct{}
	want     int
}

func newAcks(t testing.TB, want int) *acks {
	return &acks{t: t, outcomes: map[uint64]Outcome{}, done: make(chan struct{}), want: want}
}

func (a *acks) ack(rs []Result) {
	if !a.busy.CompareAndSwap(false, true) {
		a.t.Error("concurrent ack calls")
	} else {
		defer a.busy.Store(false)
	}
	time.Sleep(50 * time.Microsecond) // widen the window for overlapping calls
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	for _, r := range rs {
		if prev, ok := a.outcomes[r.Token]; ok {
			a.t.Errorf("token %d acked twice (%v, then %v)", r.Token, prev, r.Outcome)
		}
		a.outcomes[r.Token] = r.Outcome
	}
	if len(a.outcomes) == a.want {
		close(a.done)
	}
}

func (a *acks) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-a.done:
	case <-time.After(d):
		a.mu.Lock()
		defer a.mu.Unlock()
		t.Fatalf("only %d of %d docs acked after %s", len(a.outcomes), a.want, d)
	}
}

func (a *acks) get(tok uint64) Outcome {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.outcomes[tok]
}

// testLogger logs warnings and errors to the test output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func testConfig() Config {
	c := DefaultConfig()
	c.FlushInterval = 5 * time.Millisecond
	c.RetryBackoffMin = time.Millisecond
	c.RetryBackoffMax = 20 * time.Millisecond
	c.RequestTimeout = 5 * time.Second
	return c
}

// startWriter starts a writer against url; it stops at test end.
func startWriter(t *testing.T, cfg Config, url string, clientCfg elasticsearch.Config) (*Writer, *prometheus.Registry) {
	t.Helper()
	clientCfg.Addresses = []string{url}
	client, err := elasticsearch.NewClient(clientCfg)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	w, err := New(cfg, client, Options{Registerer: reg})
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

func mkDocs(index string, n int, idPrefix string) []Doc {
	docs := make([]Doc, n)
	for i := range docs {
		id := fmt.Sprintf("%s%d", idPrefix, i)
		docs[i] = Doc{Index: index, ID: id, Body: []byte(fmt.Sprintf(`{"@timestamp":"2026-11-28T10:00:00Z","message":"line %d"}`, i)),
			Raw: []byte(fmt.Sprintf(`{"log":"line %d\n","stream":"stdout"}`, i)), Token: uint64(i)}
	}
	return docs
}

const testIndex = "logs-test-default"

func TestWriter(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Config)
		setup   func(*fakeES)
		docs    func() []Doc
		want    map[Outcome]int
		wantDL  map[string]string // original id -> error.type in its dead letter
		check   func(t *testing.T, f *fakeES, reg *prometheus.Registry)
		noGzip  bool
		stored  int // docs expected in testIndex
		retried bool
	}{
		{
			name: "all delivered", docs: func() []Doc { return mkDocs(testIndex, 300, "d") },
			want: map[Outcome]int{Delivered: 300}, stored: 300,
		},
		{
			name: "replays are duplicates",
			setup: func(f *fakeES) {
				for i := 0; i < 300; i += 3 {
					f.docs[testIndex+"\x00"+fmt.Sprintf("d%d", i)] = "{}"
				}
			},
			docs: func() []Doc { return mkDocs(testIndex, 300, "d") },
			want: map[Outcome]int{Delivered: 200, Duplicate: 100}, stored: 300,
		},
		{
			name: "item 429 and 503 retried until accepted",
			setup: func(f *fakeES) {
				f.item = func(index, id string, attempt int) (int, string, string) {
					switch {
					case strings.HasSuffix(id, "7") && attempt <= 3:
						return 429, "es_rejected_execution_exception", "rejected execution of coordinating operation"
					case strings.HasSuffix(id, "5") && attempt <= 2:
						return 503, "unavailable_shards_exception", "primary shard is not active"
					}
					return 0, "", ""
				}
			},
			docs: func() []Doc { return mkDocs(testIndex, 100, "d") },
			want: map[Outcome]int{Delivered: 100}, stored: 100, retried: true,
			check: func(t *testing.T, f *fakeES, _ *prometheus.Registry) {
				if n := f.attempt(testIndex + "\x00d0"); n != 1 {
					t.Errorf("successful doc d0 sent %d times, want 1 (only failed items are retried)", n)
				}
				if n := f.attempt(testIndex + "\x00d17"); n != 4 {
					t.Errorf("doc d17 sent %d times, want 4", n)
				}
			},
		},
		{
			name: "mapping error dead-lettered, others delivered",
			setup: func(f *fakeES) {
				f.item = func(index, id string, _ int) (int, string, string) {
					if index == testIndex && (id == "d3" || id == "d42") {
						return 400, "document_parsing_exception", "failed to parse field [n] of type [long]"
					}
					return 0, "", ""
				}
			},
			docs:   func() []Doc { return mkDocs(testIndex, 100, "d") },
			want:   map[Outcome]int{Delivered: 98, DeadLettered: 2},
			wantDL: map[string]string{"d3": "document_parsing_exception", "d42": "document_parsing_exception"},
			stored: 98,
			check: func(t *testing.T, _ *fakeES, reg *prometheus.Registry) {
				if v := counter(t, reg, "heartwood_shipper_es_docs_dead_lettered_total"); v != 2 {
					t.Errorf("dead_lettered_total = %v, want 2", v)
				}
			},
		},
		{
			name: "dead letter rejected too: acked, counted, not looped",
			setup: func(f *fakeES) {
				f.item = func(index, id string, _ int) (int, string, string) {
					if id == "d3" || strings.HasPrefix(index, "logs-heartwood.deadletter-") {
						return 403, "cluster_block_exception", "index blocked"
					}
					return 0, "", ""
				}
			},
			docs:   func() []Doc { return mkDocs(testIndex, 10, "d") },
			want:   map[Outcome]int{Delivered: 9, DeadLettered: 1},
			stored: 9,
			check: func(t *testing.T, f *fakeES, reg *prometheus.Registry) {
				if v := counter(t, reg, "heartwood_shipper_es_dead_letter_failures_total"); v != 1 {
					t.Errorf("dead_letter_failures_total = %v, want 1", v)
				}
				dl := DefaultConfig().deadLetterStream() + "\x00" + deadLetterID(testIndex, "d3", nil)
				if n := f.attempt(dl); n != 1 {
					t.Errorf("dead letter sent %d times, want 1", n)
				}
			},
		},
		{
			name: "whole-request 503 and 429 retried",
			setup: func(f *fakeES) {
				f.whole = func(n int, _ []string) int {
					switch n {
					case 1, 2:
						return 503
					case 3:
						return 429
					}
					return 0
				}
			},
			docs: func() []Doc { return mkDocs(testIndex, 50, "d") },
			want: map[Outcome]int{Delivered: 50}, stored: 50, retried: true,
		},
		{
			name: "transport errors retried",
			setup: func(f *fakeES) {
				f.whole = func(n int, _ []string) int {
					if n <= 3 {
						return -1
					}
					return 0
				}
			},
			docs: func() []Doc { return mkDocs(testIndex, 50, "d") },
			want: map[Outcome]int{Delivered: 50}, stored: 50, retried: true,
			check: func(t *testing.T, _ *fakeES, reg *prometheus.Registry) {
				if v := counterVec(t, reg, "heartwood_shipper_es_bulk_requests_total", "error"); v < 1 {
					t.Errorf("bulk_requests_total{status=error} = %v, want >= 1", v)
				}
			},
		},
		{
			name: "whole-request 400 bisected to the poison doc",
			setup: func(f *fakeES) {
				f.whole = func(_ int, ids []string) int {
					for _, id := range ids {
						if id == "d13" {
							return 400
						}
					}
					return 0
				}
			},
			docs:   func() []Doc { return mkDocs(testIndex, 40, "d") },
			want:   map[Outcome]int{Delivered: 39, DeadLettered: 1},
			wantDL: map[string]string{"d13": "injected_400"},
			stored: 39,
		},
		{
			name: "413 split into smaller requests",
			setup: func(f *fakeES) {
				f.whole = func(_ int, ids []string) int { return map[bool]int{true: 413}[len(ids) > 8] }
			},
			docs: func() []Doc { return mkDocs(testIndex, 64, "d") },
			want: map[Outcome]int{Delivered: 64}, stored: 64,
			check: func(t *testing.T, f *fakeES, _ *prometheus.Registry) {
				if n := f.count(DefaultConfig().deadLetterStream()); n != 0 {
					t.Errorf("%d dead letters, want 0", n)
				}
			},
		},
		{
			name: "invalid bodies",
			docs: func() []Doc {
				return []Doc{
					{Index: testIndex, ID: "empty", Token: 1, Raw: []byte("raw empty")},
					{Index: testIndex, ID: "multi", Token: 2, Body: []byte("{\n  \"a\": 1,\n  \"b\": [1, 2]\n}")},
					{Index: testIndex, ID: "broken", Token: 3, Body: []byte("{\"a\":\n")},
					{Index: testIndex, ID: "ok", Token: 4, Body: []byte(`{"a":"x"}`)},
					{Index: "", ID: "noindex", Token: 5, Body: []byte(`{"a":"y"}`)},
				}
			},
			want:   map[Outcome]int{Delivered: 2, DeadLettered: 3},
			wantDL: map[string]string{"empty": "invalid_document", "broken": "invalid_document", "noindex": "invalid_document"},
			stored: 2,
			check: func(t *testing.T, f *fakeES, _ *prometheus.Registry) {
				if b, _ := f.doc(testIndex, "multi"); b != `{"a":1,"b":[1,2]}` {
					t.Errorf("multi-line body stored as %q, want compacted", b)
				}
			},
		},
		{
			name:   "no compression",
			cfg:    func(c *Config) { c.Compression = false },
			docs:   func() []Doc { return mkDocs(testIndex, 20, "d") },
			want:   map[Outcome]int{Delivered: 20},
			stored: 20, noGzip: true,
		},
		{
			name: "tiny flushes",
			cfg:  func(c *Config) { c.FlushBytes = 300; c.MaxInflightBytes = 1200; c.Workers = 3 },
			docs: func() []Doc { return mkDocs(testIndex, 200, "d") },
			want: map[Outcome]int{Delivered: 200}, stored: 200,
			check: func(t *testing.T, f *fakeES, _ *prometheus.Registry) {
				f.mu.Lock()
				defer f.mu.Unlock()
				if f.maxBytes > 300 {
					t.Errorf("largest request had %d bytes, flush-bytes is 300", f.maxBytes)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeES(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			srv := httptest.NewServer(f)
			defer srv.Close()
			cfg := testConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			w, reg := startWriter(t, cfg, srv.URL, elasticsearch.Config{DisableRetry: true})
			docs := tc.docs()
			a := newAcks(t, len(docs))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			// two concurrent writers, half each
			var wg sync.WaitGroup
			for _, part := range [][]Doc{docs[:len(docs)/2], docs[len(docs)/2:]} {
				wg.Go(func() {
					if err := w.Write(ctx, part, a.ack); err != nil {
						t.Errorf("write: %v", err)
					}
				})
			}
			wg.Wait()
			a.wait(t, 20*time.Second)
			if err := w.Flush(ctx); err != nil {
				t.Fatalf("flush: %v", err)
			}

			got := map[Outcome]int{}
			for _, o := range a.outcomes {
				got[o]++
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("outcomes %v, want %v", got, tc.want)
			}
			if n := f.count(testIndex); n != tc.stored {
				t.Errorf("%d docs stored, want %d", n, tc.stored)
			}
			for id, typ := range tc.wantDL {
				var orig *Doc
				for i := range docs {
					if docs[i].ID == id {
						orig = &docs[i]
					}
				}
				if a.get(orig.Token) != DeadLettered {
					t.Errorf("doc %s: outcome %v, want DeadLettered", id, a.get(orig.Token))
				}
				checkDeadLetter(t, f, orig, typ)
			}
			if n := f.count(DefaultConfig().deadLetterStream()); len(tc.wantDL) > 0 && n != len(tc.wantDL) {
				t.Errorf("%d dead letters stored, want %d", n, len(tc.wantDL))
			}
			f.mu.Lock()
			bulks, gz := f.bulks, f.gzipped
			_, tpl := f.templates[DefaultConfig().deadLetterTemplateName()]
			f.mu.Unlock()
			if tc.noGzip && gz != 0 {
				t.Errorf("%d of %d bulk requests gzipped, want none", gz, bulks)
			}
			if !tc.noGzip && gz != bulks {
				t.Errorf("%d of %d bulk requests gzipped, want all", gz, bulks)
			}
			if !tpl {
				t.Error("dead-letter template not installed")
			}
			retried := counter(t, reg, "heartwood_shipper_es_docs_retried_total")
			if tc.retried != (retried > 0) {
				t.Errorf("retried_total = %v, want retries: %v", retried, tc.retried)
			}
			if v := counter(t, reg, "heartwood_shipper_es_docs_delivered_total"); int(v) != tc.want[Delivered] {
				t.Errorf("delivered_total = %v, want %d", v, tc.want[Delivered])
			}
			if v := counter(t, reg, "heartwood_shipper_es_docs_duplicate_total"); int(v) != tc.want[Duplicate] {
				t.Errorf("duplicate_total = %v, want %d", v, tc.want[Duplicate])
			}
			if v := gauge(t, reg, "heartwood_shipper_es_inflight_bytes"); v != 0 {
				t.Errorf("inflight_bytes = %v after all acks, want 0", v)
			}
			if v := gauge(t, reg, "heartwood_shipper_es_queue_docs"); v != 0 {
				t.Errorf("queue_docs = %v after all acks, want 0", v)
			}
			if tc.check != nil {
				tc.check(t, f, reg)
			}
		})
	}
}

// checkDeadLetter checks the dead letter of orig in the fake.
func checkDeadLetter(t *testing.T, f *fakeES, orig *Doc, errType string) {
	t.Helper()
	cfg := DefaultConfig()
	body, ok := f.doc(cfg.deadLetterStream(), deadLetterID(orig.Index, orig.ID, orig.Body))
	if !ok {
		t.Errorf("no dead letter for %s", orig.ID)
		return
	}
	var dl struct {
		Timestamp string `json:"@timestamp"`
		Event     struct{ Original, Kind string }
		Error     struct{ Type, Message string }
		Heartwood struct {
			DeadLetter struct {
				Index, ID, Document string
				Status              int
			} `json:"dead_letter"`
		}
		DataStream struct{ Type, Dataset, Namespace string } `json:"data_stream"`
	}
	if err := json.Unmarshal([]byte(body), &dl); err != nil {
		t.Fatalf("dead letter is not JSON: %v", err)
	}
	wantOrig := string(orig.Raw)
	if orig.Raw == nil {
		wantOrig = string(orig.Body)
	}
	if dl.Error.Type != errType || dl.Error.Message == "" || dl.Event.Original != wantOrig ||
		dl.Heartwood.DeadLetter.Index != orig.Index || dl.Heartwood.DeadLetter.ID != orig.ID ||
		dl.Heartwood.DeadLetter.Document != string(orig.Body) || dl.Timestamp == "" ||
		dl.DataStream.Dataset != cfg.DeadLetter.Dataset || dl.Event.Kind != "pipeline_error" {
		t.Errorf("dead letter for %s = %s", orig.ID, body)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metricValue(t, reg, name, "")
}

func counterVec(t *testing.T, reg *prometheus.Registry, name, status string) float64 {
	t.Helper()
	return metricValue(t, reg, name, status)
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	return metricValue(t, reg, name, "")
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, status string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			if status != "" {
				match := false
				for _, l := range m.GetLabel() {
					if l.GetName() == "status" && l.GetValue() == status {
						match = true
					}
				}
				if !match {
					continue
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
		return sum
	}
	return 0
}

// TestWriterClientCompresses: a client configured to compress on its own
// must not get a doubly gzipped body through.
func TestWriterClientCompresses(t *testing.T) {
	f := newFakeES(t)
	f.lenient = true // the first request is gzipped twice
	srv := httptest.NewServer(f)
	defer srv.Close()
	w, _ := startWriter(t, testConfig(), srv.URL, elasticsearch.Config{CompressRequestBody: true, DisableRetry: true})
	docs := mkDocs(testIndex, 30, "c")
	a := newAcks(t, len(docs))
	if err := w.Write(context.Background(), docs, a.ack); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 10*time.Second)
	if n := f.count(testIndex); n != 30 {
		t.Fatalf("%d docs stored, want 30", n)
	}
	if !w.clientCompresses.Load() {
		t.Error("client compression not detected")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.malformed > 1 {
		t.Errorf("%d doubly compressed requests, want at most 1", f.malformed)
	}
}

// TestWriterBackpressure: while Elasticsearch fails, Write blocks once the
// in-flight budget is full, memory stays within it, and everything is
// delivered once it recovers.
func TestWriterBackpressure(t *testing.T) {
	f := newFakeES(t)
	var down sync.Mutex
	broken := true
	f.whole = func(int, []string) int {
		down.Lock()
		defer down.Unlock()
		if broken {
			return 503
		}
		return 0
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig()
	cfg.FlushBytes, cfg.MaxInflightBytes = 4<<10, 16<<10
	w, reg := startWriter(t, cfg, srv.URL, elasticsearch.Config{DisableRetry: true})
	docs := mkDocs(testIndex, 2000, "b")
	a := newAcks(t, len(docs))

	written := make(chan error, 1)
	go func() { written <- w.Write(context.Background(), docs, a.ack) }()
	// Write must block: budget (16 KiB) << 2000 docs (~400 KiB).
	select {
	case err := <-written:
		t.Fatalf("write returned (%v) while elasticsearch is down", err)
	case <-time.After(300 * time.Millisecond):
	}
	if used := w.budget.inUse(); used > int64(cfg.MaxInflightBytes) || used == 0 {
		t.Fatalf("in-flight bytes %d, want (0, %d]", used, cfg.MaxInflightBytes)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := w.Write(ctx, mkDocs(testIndex, 1, "x"), func([]Result) { t.Error("ack for a doc not accepted") })
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("write with full budget = %v, want deadline exceeded", err)
	}
	if err := w.Ready(); err == nil {
		t.Error("ready while every bulk request fails")
	}
	down.Lock()
	broken = false
	down.Unlock()
	if err := <-written; err != nil {
		t.Fatal(err)
	}
	a.wait(t, 30*time.Second)
	if n := f.count(testIndex); n != 2000 {
		t.Fatalf("%d docs stored, want 2000", n)
	}
	if err := w.Ready(); err != nil {
		t.Errorf("not ready after recovery: %v", err)
	}
	if v := gauge(t, reg, "heartwood_shipper_es_inflight_bytes"); v != 0 {
		t.Errorf("inflight_bytes = %v", v)
	}
}

// TestWriterRunRestart: documents in flight when Run stops are sent by the
// next Run, acked exactly once.
func TestWriterRunRestart(t *testing.T) {
	f := newFakeES(t)
	var mu sync.Mutex
	broken := true
	f.whole = func(int, []string) int {
		mu.Lock()
		defer mu.Unlock()
		return map[bool]int{true: -1}[broken]
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	w, err := New(testConfig(), client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	docs := mkDocs(testIndex, 500, "r")
	a := newAcks(t, len(docs))
	if err := w.Write(context.Background(), docs, a.ack); err != nil { // queued before any Run
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Outstanding != 500 {
		t.Fatalf("outstanding %d after a failed run, want 500", st.Outstanding)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- w.Run(ctx) }()
	a.wait(t, 10*time.Second)
	if n := f.count(testIndex); n != 500 {
		t.Fatalf("%d docs stored, want 500", n)
	}
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
}

func TestWriterConcurrentWriters(t *testing.T) {
	f := newFakeES(t)
	srv := httptest.NewServer(f)
	defer srv.Close()
	cfg := testConfig()
	cfg.FlushBytes, cfg.MaxInflightBytes, cfg.Workers = 8<<10, 64<<10, 4
	w, _ := startWriter(t, cfg, srv.URL, elasticsearch.Config{DisableRetry: true})
	const writers, per = 8, 400
	a := newAcks(t, writers*per)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			docs := mkDocs(testIndex, per, fmt.Sprintf("w%d-", g))
			for i := range docs {
				docs[i].Token = uint64(g*per + i)
			}
			for i := 0; i < per; i += 25 { // many small writes
				if err := w.Write(context.Background(), docs[i:i+25], a.ack); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	a.wait(t, 20*time.Second)
	if n := f.count(testIndex); n != writers*per {
		t.Fatalf("%d docs stored, want %d", n, writers*per)
	}
}

func TestWriterReady(t *testing.T) {
	f := newFakeES(t)
	srv := httptest.NewServer(f)
	client, _ := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	w, err := New(testConfig(), client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if w.Ready() == nil {
		t.Fatal("ready before contacting elasticsearch")
	}
	ctx := context.Background()
	if err := w.PutIndexTemplate(ctx, "t1", []byte(`{"index_patterns":["x-*"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Ready(); err != nil {
		t.Fatalf("not ready after an answer: %v", err)
	}
	if f.templates["t1"] != `{"index_patterns":["x-*"]}` {
		t.Errorf("template stored as %q", f.templates["t1"])
	}
	f.templateStatus = 400
	var se *StatusError
	if err := w.PutIndexTemplate(ctx, "t2", []byte(`{}`)); !errors.As(err, &se) || se.Status != 400 || se.Reason != "template says no" {
		t.Fatalf("rejected template: err = %v", err)
	}
	srv.Close()
	if err := w.PutIndexTemplate(ctx, "t1", []byte(`{}`)); err == nil {
		t.Fatal("template put to a closed server succeeded")
	}
	if w.Ready() == nil {
		t.Fatal("ready after a transport error")
	}
}

// TestDeadLetterTemplateRejected: a permanently rejected dead-letter
// template does not block dead letters forever.
func TestDeadLetterTemplateRejected(t *testing.T) {
	f := newFakeES(t)
	f.templateStatus = 400
	f.item = func(index, id string, _ int) (int, string, string) {
		if id == "d1" {
			return 400, "mapper_parsing_exception", "bad"
		}
		return 0, "", ""
	}
	srv := httptest.NewServer(f)
	defer srv.Close()
	w, _ := startWriter(t, testConfig(), srv.URL, elasticsearch.Config{DisableRetry: true})
	docs := mkDocs(testIndex, 3, "d")
	a := newAcks(t, len(docs))
	if err := w.Write(context.Background(), docs, a.ack); err != nil {
		t.Fatal(err)
	}
	a.wait(t, 10*time.Second)
	if a.get(1) != DeadLettered {
		t.Fatalf("d1: %v", a.get(1))
	}
}

func TestDeadLetterTemplate(t *testing.T) {
	var tpl struct {
		IndexPatterns []string       `json:"index_patterns"`
		DataStream    map[string]any `json:"data_stream"`
		Priority      int            `json:"priority"`
		Template      struct {
			Mappings struct {
				Dynamic    bool                      `json:"dynamic"`
				Properties map[string]map[string]any `json:"properties"`
			} `json:"mappings"`
		} `json:"template"`
	}
	c := DefaultConfig()
	if err := json.Unmarshal(c.deadLetterTemplate(), &tpl); err != nil {
		t.Fatal(err)
	}
	if len(tpl.IndexPatterns) != 1 || tpl.IndexPatterns[0] != "logs-heartwood.deadletter-*" || tpl.DataStream == nil ||
		tpl.Priority <= 100 || tpl.Template.Mappings.Dynamic || tpl.Template.Mappings.Properties["@timestamp"] == nil {
		t.Fatalf("template %s", c.deadLetterTemplate())
	}
}

func TestBackoff(t *testing.T) {
	w := &Writer{cfg: Config{RetryBackoffMin: 100 * time.Millisecond, RetryBackoffMax: 30 * time.Second}}
	for attempt, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond} {
		for range 50 {
			if d := w.backoff(attempt); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want in [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
	for _, attempt := range []int{9, 30, 31, 63, 64, 1000} {
		if d := w.backoff(attempt); d < 15*time.Second || d > 30*time.Second {
			t.Fatalf("backoff(%d) = %s, want capped at 30s", attempt, d)
		}
	}
}

// TestDeadLetterID: deterministic, distinct per original.
func TestDeadLetterID(t *testing.T) {
	a := deadLetterID("i", "x", nil)
	if a != deadLetterID("i", "x", []byte("other body")) {
		t.Fatal("dead-letter id depends on the body when an _id exists")
	}
	seen := map[string]bool{}
	for _, c := range [][3]string{{"i", "x", ""}, {"j", "x", ""}, {"i", "y", ""}, {"i", "", "b1"}, {"i", "", "b2"}, {"ix", "", ""}} {
		id := deadLetterID(c[0], c[1], []byte(c[2]))
		if seen[id] {
			t.Fatalf("dead-letter id collision for %v", c)
		}
		seen[id] = true
	}
}

func TestNewDeadLetterTruncates(t *testing.T) {
	big := bytes.Repeat([]byte("r"), maxDeadLetterField+10)
	doc := Doc{Index: "i", ID: "x", Body: []byte(`{"m":"` + string(big) + `"}`), Raw: append([]byte("\xff"), big...)}
	dl := DefaultConfig().newDeadLetter(&doc, 400, "t", "r", time.Now())
	var v struct {
		Event     struct{ Original string }
		Heartwood struct {
			DeadLetter struct {
				Document  string
				Truncated bool
			} `json:"dead_letter"`
		}
	}
	if err := json.Unmarshal(dl.body, &v); err != nil {
		t.Fatal(err)
	}
	if !v.Heartwood.DeadLetter.Truncated || len(v.Heartwood.DeadLetter.Document) != maxDeadLetterField ||
		!strings.HasPrefix(v.Event.Original, "\uFFFDrrr") || len(v.Event.Original) > maxDeadLetterField+3 {
		t.Fatalf("truncated %v, document %d bytes, original %d bytes %q...", v.Heartwood.DeadLetter.Truncated,
			len(v.Heartwood.DeadLetter.Document), len(v.Event.Original), v.Event.Original[:8])
	}
	if len(dl.body) > 2*maxDeadLetterField+4096 {
		t.Fatalf("dead letter is %d bytes", len(dl.body))
	}
}
