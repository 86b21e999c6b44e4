// Command pipeline measures the shipper's reading pipeline end to end
// without Elasticsearch: it writes a json-file log of N lines, then runs
// the real shipper (inventory fed by a fake Docker API, real tailer,
// decoder, reassembler, ECS encoder, checkpoints) into an output that
// discards every document and acknowledges it at once. It reports lines/s,
// CPU seconds per million lines and peak RSS.
//
//	GOMAXPROCS=1 go run ./bench/shipper/pipeline -lines 1000000
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/bench/shipper/benchkit"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// sink discards documents and acknowledges them immediately.
type sink struct {
	docs  atomic.Int64
	bytes atomic.Int64
}

func (s *sink) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (s *sink) Ready() error                  { return nil }
func (s *sink) Do(_ context.Context, method, _ string, _ []byte) (int, []byte, error) {
	if method == http.MethodGet {
		return http.StatusNotFound, []byte(`{}`), nil // nothing installed yet
	}
	return http.StatusOK, []byte(`{"acknowledged":true}`), nil
}
func (s *sink) Write(_ context.Context, docs []esout.Doc, ack func([]esout.Result)) error {
	res := make([]esout.Result, len(docs))
	var n int64
	for i, d := range docs {
		res[i] = esout.Result{Token: d.Token, Outcome: esout.Delivered}
		n += int64(len(d.Body))
	}
	s.bytes.Add(n)
	s.docs.Add(int64(len(docs)))
	ack(res)
	return nil
}

func main() {
	lines := flag.Int("lines", 1_000_000, "lines to write and ship")
	containers := flag.Int("containers", 1, "containers (lines are split between them)")
	lineLen := flag.Int("line-bytes", 100, "bytes per log line, newline included")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the shipping phase here")
	dir := flag.String("dir", "", "keep the generated logs in this directory and reuse them in later runs (so that peak RSS covers shipping only)")
	memProfile := flag.String("memprofile", "", "write a heap profile at the largest heap seen while shipping")
	esURL := flag.String("es", "", "ship into this Elasticsearch (e.g. http://127.0.0.1:9200) instead of discarding; uses a fresh namespace")
	flag.Parse()
	if *memProfile != "" {
		runtime.MemProfileRate = 16 << 10
	}

	root := *dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "pipeline-bench-"); err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(root)
	}
	_ = os.RemoveAll(filepath.Join(root, "data"))
	var ids []string
	var fileBytes int64
	for c := range *containers {
		id := fmt.Sprintf("%012x%052d", c+1, 0)
		ids = append(ids, id)
		logFile := filepath.Join(root, "containers", id, id+"-json.log")
		if st, err := os.Stat(logFile); err == nil && *dir != "" {
			fileBytes += st.Size() // reuse the log written by an earlier run
			continue
		}
		n, err := writeLog(filepath.Join(root, "containers", id), id, *lines / *containers, *lineLen)
		if err != nil {
			log.Fatal(err)
		}
		fileBytes += n
	}
	total := int64(*lines / *containers * *containers)

	ctx, cancel := context.WithCancel(context.Background())
	inv := inventory.New(&benchkit.Fake{IDs: ids}, inventory.Options{})
	var wg sync.WaitGroup
	wg.Go(func() { _ = inv.Run(ctx) })
	<-inv.Synced()
	cfg := shipper.DefaultConfig()
	cfg.ContainersRoot = filepath.Join(root, "containers")
	out := &sink{}
	deps := shipper.Deps{Source: inv, Output: out, DataDir: filepath.Join(root, "data"), NodeName: "bench", AgentVersion: "bench"}
	reg := prometheus.NewRegistry()
	acked := func() int64 { return out.docs.Load() }
	if *esURL != "" {
		es, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{*esURL}})
		if err != nil {
			log.Fatal(err)
		}
		var rnd [4]byte
		_, _ = rand.Read(rnd[:])
		cfg.Namespace = fmt.Sprintf("bench%x", rnd)
		cfg.Template.Name = "heartwood-logs-" + cfg.Namespace
		cfg.Template.Patterns = []string{"logs-*-" + cfg.Namespace}
		cfg.Template.Priority = 160
		cfg.Template.Namespace = cfg.Namespace
		cfg.Output.DeadLetter.Namespace = cfg.Namespace
		deps.Output, deps.ES, deps.Registerer = nil, es, reg
		acked = func() int64 {
			mfs, _ := reg.Gather()
			var n float64
			for _, mf := range mfs {
				if mf.GetName() == "heartwood_shipper_events_acked_total" {
					for _, m := range mf.GetMetric() {
						n += m.GetCounter().GetValue()
					}
				}
			}
			return int64(n)
		}
		fmt.Printf("shipping into %s data stream logs-docker.container-%s\n", *esURL, cfg.Namespace)
	}
	s, err := shipper.New(cfg, deps)
	if err != nil {
		log.Fatal(err)
	}
	runtime.GC()
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	if *cpuProfile != "" {
		pf, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	peakDone := make(chan struct{})
	var peakHeap uint64
	go func() { // the heap profile is taken at the largest heap seen
		defer close(peakDone)
		var ms runtime.MemStats
		for ctx.Err() == nil {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peakHeap {
				peakHeap = ms.HeapAlloc
				if *memProfile != "" {
					if mf, err := os.Create(*memProfile); err == nil {
						_ = pprof.Lookup("heap").WriteTo(mf, 0)
						_ = mf.Close()
					}
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	wg.Go(func() { _ = s.Run(ctx) })
	for acked() < total {
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(start)
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cancel()
	wg.Wait()
	<-peakDone
	cpu := tv(ru1.Utime) + tv(ru1.Stime) - tv(ru0.Utime) - tv(ru0.Stime)
	fmt.Printf("lines=%d containers=%d line_bytes=%d file_bytes=%d GOMAXPROCS=%d\n", total, *containers, *lineLen, fileBytes, runtime.GOMAXPROCS(0))
	fmt.Printf("wall=%.3fs lines_per_s=%.0f cpu_s=%.3f cpu_s_per_million_lines=%.3f lines_per_cpu_s=%.0f\n",
		elapsed.Seconds(), float64(total)/elapsed.Seconds(), cpu, cpu/float64(total)*1e6, float64(total)/cpu)
	if *esURL == "" {
		fmt.Printf("docs=%d doc_bytes=%d avg_doc_bytes=%.0f\n", out.docs.Load(), out.bytes.Load(),
			float64(out.bytes.Load())/float64(out.docs.Load()))
	}
	fmt.Printf("peak_heap_alloc_mb=%.1f (sampled every 20ms while shipping) ", float64(peakHeap)/(1<<20))
	fmt.Printf("peak_rss_mb=%.1f (whole process; with -dir and existing logs it covers shipping only)\n", float64(ru1.Maxrss)/1024)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// writeLog writes n json-file records whose log text is lineLen bytes long
// (newline included), as Docker's json-file driver does.
func writeLog(dir, id string, n, lineLen int) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	f, err := os.Create(filepath.Join(dir, id+"-json.log"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	var buf []byte
	var written int64
	for i := range n {
		msg := fmt.Sprintf("2026-11-28 10:57:28 INFO request handled path=/api/v1/items/%d status=200 dur=3ms ", i)
		if len(msg) < lineLen-1 {
			msg += strings.Repeat("x", lineLen-1-len(msg))
		}
		msg = msg[:lineLen-1] + "\n"
		rec, _ := json.Marshal(struct {
			Log    string `json:"log"`
			Stream string `json:"stream"`
			Time   string `json:"time"`
		}{msg, "stdout", base.Add(time.Duration(i) * time.Microsecond).Format(time.RFC3339Nano)})
		buf = append(append(buf, rec...), '\n')
		if len(buf) > 1<<20 {
			k, err := f.Write(buf)
			written += int64(k)
			if err != nil {
				return written, err
			}
			buf = buf[:0]
		}
	}
	k, err := f.Write(buf)
	return written + int64(k), err
}
