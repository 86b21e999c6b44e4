// Command esout_e2e measures the shipper's Elasticsearch output end to
// end: it writes -docs ECS-like log documents (about -msg-bytes of message
// each) through esout.Writer into a fresh data stream of a real
// Elasticsearch, waits until every document is acknowledged, checks the
// count in Elasticsearch, and prints throughput, this process's CPU per
// million documents (with the CPU spent generating the documents measured
// separately), peak RSS, and Elasticsearch's own CPU over the run.
//
//	go run ./bench/shipper/esout_e2e -docs 1000000
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/heartwood-ops/heartwood/bench/internal/hoststat"
	"github.com/heartwood-ops/heartwood/bench/shipper/benchkit"
	"github.com/heartwood-ops/heartwood/shipper/esout"
	"github.com/prometheus/client_golang/prometheus"
)

const template = `{
  "index_patterns": ["logs-heartwood.esoutbench-*"],
  "data_stream": {},
  "priority": 300,
  "template": {
    "settings": {"index": {"number_of_replicas": 0, "refresh_interval": %q}},
    "mappings": {
      "dynamic": false,
      "properties": {
        "@timestamp": {"type": "date_nanos"},
        "message": {"type": "text"},
        "stream": {"type": "keyword"},
        "event": {"properties": {"sequence": {"type": "long"}}},
        "container": {"properties": {"id": {"type": "keyword"}, "name": {"type": "keyword"},
          "image": {"properties": {"name": {"type": "keyword"}}}, "labels": {"type": "flattened"}}},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "service": {"properties": {"name": {"type": "keyword"}}},
        "data_stream": {"properties": {"type": {"type": "keyword"}, "dataset": {"type": "keyword"}, "namespace": {"type": "keyword"}}}
      }
    }
  }
}`

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "esout_e2e:", err)
		os.Exit(1)
	}
}

type options struct {
	es        string
	docs      int
	producers int
	batch     int
	msgBytes  int
	refresh   string
	genOnly   bool
	rate      int
	cfg       esout.Config
}

func run() error {
	o := options{cfg: esout.DefaultConfig()}
	flag.StringVar(&o.es, "es", "http://127.0.0.1:9200", "Elasticsearch URL")
	flag.IntVar(&o.docs, "docs", 1_000_000, "documents to write")
	flag.IntVar(&o.producers, "producers", 2, "concurrent Write callers")
	flag.IntVar(&o.batch, "batch", 500, "documents per Write call")
	flag.IntVar(&o.msgBytes, "msg-bytes", 100, "message length in bytes")
	flag.StringVar(&o.refresh, "refresh", "1s", "refresh_interval of the bench data stream")
	flag.BoolVar(&o.genOnly, "gen-only", false, "only generate the documents (measures the generator's CPU)")
	flag.IntVar(&o.rate, "rate", 0, "if > 0: offer this many docs/s (one producer, a Write every 10 ms) and report Write-to-ack latency")
	flag.IntVar(&o.cfg.Workers, "workers", o.cfg.Workers, "esout workers")
	flag.DurationVar(&o.cfg.FlushInterval, "flush-interval", o.cfg.FlushInterval, "esout flush-interval")
	flag.TextVar(&o.cfg.FlushBytes, "flush-bytes", o.cfg.FlushBytes, "esout flush-bytes")
	flag.TextVar(&o.cfg.MaxInflightBytes, "max-inflight-bytes", o.cfg.MaxInflightBytes, "esout max-inflight-bytes")
	flag.BoolVar(&o.cfg.Compression, "compression", o.cfg.Compression, "esout compression")
	flag.IntVar(&o.cfg.CompressionLevel, "compression-level", o.cfg.CompressionLevel, "esout gzip level")
	flag.Parse()

	if o.genOnly {
		return generateOnly(o)
	}
	ns := "b" + randHex()
	stream := "logs-heartwood.esoutbench-" + ns
	o.cfg.DeadLetter.Namespace = ns
	if st, body, err := do(http.MethodPut, o.es+"/_index_template/heartwood-esoutbench", fmt.Sprintf(template, o.refresh)); err != nil || st != 200 {
		return fmt.Errorf("bench template: %d %s %v", st, body, err)
	}
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{o.es}})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	reg := prometheus.NewRegistry()
	w, err := esout.New(o.cfg, client, esout.Options{Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- w.Run(ctx) }()

	// Warm up: one document, so the template install and first
	// connection are not in the measurement.
	warm := make(chan struct{})
	if err := w.Write(ctx, []esout.Doc{{Index: stream, ID: "warmup", Body: []byte(`{"@timestamp":"2026-01-01T00:00:00Z","message":"warmup"}`)}},
		func([]esout.Result) { close(warm) }); err != nil {
		return err
	}
	<-warm

	var peakHeap atomic.Uint64
	sampleDone := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampleDone:
				return
			case <-t.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
		}
	}()
	esPid := findES()
	es0, _ := hoststat.ProcessCPU(esPid) // 0 when Elasticsearch's process is not found
	cpu0 := benchkit.SelfCPU()
	t0 := time.Now()

	var acked atomic.Int64
	var outcomes [4]atomic.Int64
	allDone := make(chan struct{})
	// Write-to-ack latency per document (rate mode): writtenAt[token].
	var writtenAt []atomic.Int64
	var latencies []time.Duration
	var latMu sync.Mutex
	if o.rate > 0 {
		writtenAt = make([]atomic.Int64, o.docs)
		latencies = make([]time.Duration, 0, o.docs)
	}
	ack := func(rs []esout.Result) {
		now := time.Since(t0)
		for _, r := range rs {
			outcomes[r.Outcome].Add(1)
			if writtenAt != nil {
				latMu.Lock()
				latencies = append(latencies, now-time.Duration(writtenAt[r.Token].Load()))
				latMu.Unlock()
			}
		}
		if acked.Add(int64(len(rs))) == int64(o.docs) {
			close(allDone)
		}
	}
	var wg sync.WaitGroup
	if o.rate > 0 {
		wg.Go(func() {
			g := newGen(stream, o.msgBytes)
			per := max(1, o.rate/100)
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for start := 0; start < o.docs; start += per {
				<-tick.C
				docs := g.docs(start, min(per, o.docs-start))
				now := int64(time.Since(t0))
				for _, d := range docs {
					writtenAt[d.Token].Store(now)
				}
				if err := w.Write(ctx, docs, ack); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(1)
				}
			}
		})
	}
	for p := range o.producers {
		if o.rate > 0 {
			break
		}
		wg.Go(func() {
			g := newGen(stream, o.msgBytes)
			for start := p * o.batch; start < o.docs; start += o.producers * o.batch {
				docs := g.docs(start, min(o.batch, o.docs-start))
				if err := w.Write(ctx, docs, ack); err != nil {
					fmt.Fprintln(os.Stderr, "write:", err)
					os.Exit(1)
				}
			}
		})
	}
	wg.Wait()
	_ = w.Flush(ctx)
	<-allDone
	elapsed := time.Since(t0)
	cpu := benchkit.SelfCPU() - cpu0
	es1, _ := hoststat.ProcessCPU(esPid)
	esCPU := es1 - es0
	close(sampleDone)
	cancel()
	<-runDone

	if st, body, err := do(http.MethodPost, o.es+"/"+stream+"/_refresh", ""); err != nil || st != 200 {
		return fmt.Errorf("refresh: %d %s %v", st, body, err)
	}
	_, body, err := do(http.MethodGet, o.es+"/"+stream+"/_count", "")
	if err != nil {
		return err
	}
	var c struct{ Count int }
	_ = json.Unmarshal([]byte(body), &c)

	m := gather(reg)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	perM := float64(o.docs) / 1e6
	fmt.Printf("docs                 %d (in ES: %d, expected %d incl. warm-up)\n", o.docs, c.Count, o.docs+1)
	fmt.Printf("outcomes             delivered %d, duplicate %d, dead-lettered %d\n", outcomes[esout.Delivered].Load(), outcomes[esout.Duplicate].Load(), outcomes[esout.DeadLettered].Load())
	fmt.Printf("elapsed              %.2f s\n", elapsed.Seconds())
	fmt.Printf("throughput           %.0f docs/s\n", float64(o.docs)/elapsed.Seconds())
	fmt.Printf("this process CPU     %.2f s (%.2f s per million docs, incl. document generation)\n", cpu.Seconds(), cpu.Seconds()/perM)
	if esPid > 0 {
		fmt.Printf("elasticsearch CPU    %.2f s (%.2f s per million docs; pid %d)\n", esCPU.Seconds(), esCPU.Seconds()/perM, esPid)
	}
	fmt.Printf("peak RSS             %.1f MiB (peak Go heap in use %.1f MiB, sampled every 100 ms; GOGC=%q GOMEMLIMIT=%q)\n",
		float64(ru.Maxrss)/1024, float64(peakHeap.Load())/(1<<20), os.Getenv("GOGC"), os.Getenv("GOMEMLIMIT"))
	fmt.Printf("bulk requests        %v\n", m["heartwood_shipper_es_bulk_requests_total"])
	fmt.Printf("bytes on the wire    %.1f MiB (source bytes delivered %.1f MiB)\n", m["heartwood_shipper_es_bulk_request_bytes_total"].(float64)/(1<<20), m["heartwood_shipper_es_bytes_delivered_total"].(float64)/(1<<20))
	fmt.Printf("retried              %v\n", m["heartwood_shipper_es_docs_retried_total"])
	if len(latencies) > 0 {
		slices.Sort(latencies)
		q := func(p float64) time.Duration { return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))] }
		fmt.Printf("write-to-ack latency p50 %s, p99 %s, max %s at %d docs/s offered (searchable adds up to refresh_interval %s)\n",
			q(0.50).Round(time.Millisecond), q(0.99).Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond), o.rate, o.refresh)
	}
	fmt.Printf("config               workers=%d flush-interval=%s flush-bytes=%s max-inflight-bytes=%s compression=%v level=%d producers=%d batch=%d msg-bytes=%d refresh=%s\n",
		o.cfg.Workers, o.cfg.FlushInterval, o.cfg.FlushBytes, o.cfg.MaxInflightBytes, o.cfg.Compression, o.cfg.CompressionLevel, o.producers, o.batch, o.msgBytes, o.refresh)
	if c.Count != o.docs+1 {
		return fmt.Errorf("elasticsearch has %d documents in %s, want %d", c.Count, stream, o.docs+1)
	}
	return nil
}

// generateOnly runs the producers without writing.
func generateOnly(o options) error {
	cpu0 := benchkit.SelfCPU()
	t0 := time.Now()
	var wg sync.WaitGroup
	var sink atomic.Int64
	for p := range o.producers {
		wg.Go(func() {
			g := newGen("logs-heartwood.esoutbench-x", o.msgBytes)
			for start := p * o.batch; start < o.docs; start += o.producers * o.batch {
				docs := g.docs(start, min(o.batch, o.docs-start))
				sink.Add(int64(len(docs[0].Body)))
			}
		})
	}
	wg.Wait()
	cpu := benchkit.SelfCPU() - cpu0
	fmt.Printf("generated %d docs in %.2f s, CPU %.2f s (%.2f s per million docs)\n", o.docs, time.Since(t0).Seconds(), cpu.Seconds(), cpu.Seconds()/(float64(o.docs)/1e6))
	return nil
}

// gen builds ECS-like documents shaped like the shipper's, with messages
// of pseudo-random words (so that gzip sees log-like, not constant, text).
type gen struct {
	stream   string
	msgBytes int
	rng      uint64
	msg      []byte
}

func newGen(stream string, msgBytes int) *gen {
	return &gen{stream: stream, msgBytes: msgBytes, rng: uint64(len(stream))*0x9E3779B97F4A7C15 + 1}
}

// message fills g.msg with about msgBytes of words and numbers.
func (g *gen) message(seq int) []byte {
	g.msg = strconv.AppendInt(g.msg[:0], int64(seq), 10)
	for len(g.msg) < g.msgBytes {
		g.rng ^= g.rng << 13
		g.rng ^= g.rng >> 7
		g.rng ^= g.rng << 17
		g.msg = append(g.msg, ' ')
		if g.rng%5 == 0 {
			g.msg = strconv.AppendUint(g.msg, g.rng%100000, 10)
		} else {
			g.msg = append(g.msg, benchkit.Words[g.rng%uint64(len(benchkit.Words))]...)
		}
	}
	return g.msg[:g.msgBytes]
}

func (g *gen) docs(start, n int) []esout.Doc {
	docs := make([]esout.Doc, n)
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := range docs {
		seq := start + i
		ts := base.Add(time.Duration(seq) * time.Microsecond).Format(time.RFC3339Nano)
		var b []byte
		b = append(b, `{"@timestamp":"`...)
		b = append(b, ts...)
		msg := g.message(seq)
		b = append(b, `","message":"`...)
		b = append(b, msg...)
		b = append(b, `","stream":"stdout","event":{"sequence":`...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, `},"container":{"id":"3f2a9c1b7d4e5f60718293a4b5c6d7e8f9001122334455667788990011223344","name":"web.1.k2j3h4g5f6d7","image":{"name":"registry.local/web:1.27"},"labels":{"com.docker.stack.namespace":"shop","com.docker.swarm.service.name":"shop_web"}},"host":{"name":"node-1"},"service":{"name":"web"},"data_stream":{"type":"logs","dataset":"heartwood.esoutbench","namespace":"x"}}`...)
		raw := make([]byte, 0, len(msg)+80)
		raw = append(raw, `{"log":"`...)
		raw = append(raw, msg...)
		raw = append(raw, `\n","stream":"stdout","time":"`...)
		raw = append(raw, ts...)
		raw = append(raw, `"}`...)
		id := make([]byte, 0, 40)
		id = append(id, "3f2a9c1b7d4e-000000fd0001-"...)
		id = strconv.AppendInt(id, int64(seq)*160, 10)
		docs[i] = esout.Doc{Index: g.stream, ID: string(id), Body: b, Raw: raw, Token: uint64(seq)}
	}
	return docs
}

func do(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func randHex() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// findES returns the pid of the Elasticsearch server JVM, or 0.
func findES() int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err == nil && strings.Contains(string(b), "org.elasticsearch.bootstrap.Elasticsearch") {
			pid, _ := strconv.Atoi(filepath.Base(d))
			return pid
		}
	}
	return 0
}

func gather(reg *prometheus.Registry) map[string]any {
	out := map[string]any{}
	mfs, err := reg.Gather()
	if err != nil {
		return out
	}
	for _, mf := range mfs {
		if len(mf.GetMetric()) == 1 && len(mf.GetMetric()[0].GetLabel()) == 0 {
			m := mf.GetMetric()[0]
			switch {
			case m.Counter != nil:
				out[mf.GetName()] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[mf.GetName()] = m.Gauge.GetValue()
			}
			continue
		}
		byLabel := map[string]float64{}
		for _, m := range mf.GetMetric() {
			var l []string
			for _, lp := range m.GetLabel() {
				l = append(l, lp.GetValue())
			}
			if m.Counter != nil {
				byLabel[strings.Join(l, ",")] = m.Counter.GetValue()
			}
		}
		out[mf.GetName()] = byLabel
	}
	return out
}
