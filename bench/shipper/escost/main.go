// Command escost measures what a container log line costs Elasticsearch
// and the agent, end to end, for several variants side by side in one run.
//
// It writes a json-file log (pseudo-random log words, -line-bytes per
// line, split over -containers containers) once, then for each variant runs
// the real shipper (inventory fed by a fake Docker API, tailer, decoder, ECS
// encoder, checkpoints, esout with gzip) into a data stream of its own,
// logs-docker.container-escost<variant>, whose index template is the one
// the agent installs with the variant's changes on top. It waits until
// every line is acknowledged and Elasticsearch has no merge running, and
// prints one row per variant: the cluster's CPU-seconds per million
// documents (process.cpu.total_in_millis of _nodes/stats: the whole node,
// so other clients' work on a shared cluster counts too), the data
// stream's own indexing, refresh, merge and flush times, the agent's
// CPU-seconds per million lines (this process: getrusage), documents per
// second and the bytes on disk after a flush.
//
//	go run ./bench/shipper/escost                      # 200k lines per variant
//	go run ./bench/shipper/escost -lines 1000000 -variants default,auto-id
//	go run ./bench/shipper/escost -list                # what each variant changes
//
// Afterwards each variant's data stream is rolled over and its data
// deleted (this Elasticsearch build cannot delete a data stream; an empty
// one per variant name stays and is reused by the next run).
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/bench/internal/hoststat"
	"github.com/heartwood-ops/heartwood/bench/shipper/benchkit"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

type m = map[string]any

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "escost:", err)
		os.Exit(1)
	}
}

type options struct {
	es         string
	lines      int
	containers int
	lineBytes  int
	dir        string
	variants   []string
	keep       bool
	settle     time.Duration
	rounds     int
	warmup     int
	cpuProfile string
}

func run() error {
	var o options
	var names string
	var list bool
	flag.StringVar(&o.es, "es", "http://127.0.0.1:9200", "Elasticsearch URL")
	flag.IntVar(&o.lines, "lines", 200_000, "log lines per variant (split over the containers)")
	flag.IntVar(&o.containers, "containers", 4, "containers logging at once")
	flag.IntVar(&o.lineBytes, "line-bytes", 100, "bytes per log line, newline included")
	flag.StringVar(&o.dir, "dir", "", "keep the generated logs here and reuse them in later runs")
	flag.StringVar(&names, "variants", "default,auto-id,main", "comma-separated variants to run, in order (see -list)")
	flag.IntVar(&o.warmup, "warmup", 1, "rounds of every variant run first and left out of the table (Elasticsearch's JIT warms up over the first few hundred thousand documents)")
	flag.IntVar(&o.rounds, "rounds", 1, "run the variants this many times, interleaved; the table shows each one's median")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the agent's shipping here (of the last variant run: use with one variant)")
	flag.BoolVar(&list, "list", false, "list the variants and exit")
	flag.BoolVar(&o.keep, "keep", false, "keep the variants' documents (for inspection)")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "longest wait for Elasticsearch's merges after the last acknowledgement")
	flag.Parse()
	if list {
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		for _, v := range catalogue {
			fmt.Fprintf(tw, "%s\t%s\n", v.name, v.desc)
		}
		return tw.Flush()
	}
	for _, n := range strings.Split(names, ",") {
		if _, ok := variantByName(n); !ok {
			return fmt.Errorf("unknown variant %q (see -list)", n)
		}
		o.variants = append(o.variants, n)
	}

	root := o.dir
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "escost-"); err != nil {
			return err
		}
		defer os.RemoveAll(root)
	}
	ids, err := writeLogs(root, o)
	if err != nil {
		return err
	}
	es := esschema.HTTP{URL: o.es}
	ctx := context.Background()
	f, notes, err := esschema.Detect(ctx, es)
	if err != nil {
		return err
	}
	fmt.Printf("cluster: %s\n", strings.Join(notes, "; "))
	fmt.Printf("load average at start: %s\n", hoststat.LoadAvg())

	// Rounds interleave the variants, so that a change in the machine's
	// load hits them alike; the table shows each variant's median round
	// (by cluster CPU).
	byVariant := map[string][]result{}
	for round := range o.warmup + o.rounds {
		label := fmt.Sprintf("round %d", round+1-o.warmup)
		if round < o.warmup {
			label = fmt.Sprintf("warm-up %d", round+1)
		}
		for _, name := range o.variants {
			v, _ := variantByName(name)
			r, err := runVariant(ctx, o, root, ids, f, v)
			if err != nil {
				return fmt.Errorf("variant %s: %w", name, err)
			}
			fmt.Fprintf(os.Stderr, "%s %s: %s (load %s)\n", label, name, r.line(), hoststat.LoadAvg())
			if round >= o.warmup {
				byVariant[name] = append(byVariant[name], r)
			}
		}
	}
	var rows []result
	for _, name := range o.variants {
		rs := byVariant[name]
		slices.SortFunc(rs, func(a, b result) int { return cmp.Compare(a.nodeCPU, b.nodeCPU) })
		rows = append(rows, rs[len(rs)/2])
	}
	fmt.Printf("load average at end: %s\n", hoststat.LoadAvg())
	fmt.Printf("%d lines per variant, %d containers, %d-byte lines, median of %d round(s) after %d warm-up round(s)\n\n", o.lines/o.containers*o.containers, o.containers, o.lineBytes, o.rounds, o.warmup)
	printTable(os.Stdout, rows)
	return nil
}

// variant is one way of shipping the same backlog.
type variant struct {
	name, desc string
	// autoID sends no _id: Elasticsearch generates one and does not look
	// the document up (no exactly-once).
	autoID bool
	// main takes its mappings from mainMappings.
	main bool
	// body rewrites each document's source.
	body func([]byte) []byte
	// idShape rewrites each document's _id.
	idShape func(d *esout.Doc)
	// settings replace keys of the logs template's index settings (a nil
	// value removes the key).
	settings m
	// mappings are properties merged over the logs template's.
	mappings m
	// output changes the esout configuration.
	output func(*esout.Config)
}

// mainMappings are the logs template's properties before its mappings
// were made cheaper: doc values on every keyword, norms on text.
func mainMappings(f esschema.Features) m {
	kw := m{"type": "keyword", "ignore_above": 1024}
	p := m{
		"agent":     m{"properties": m{"type": kw, "version": kw, "name": kw, "ephemeral_id": kw}},
		"container": m{"properties": m{"runtime": kw, "image": m{"properties": m{"tag": kw}}, "labels": m{"type": "flattened", "ignore_above": 1024}}},
		"orchestrator": m{"properties": m{"type": kw, "resource": m{"properties": m{"type": kw, "name": kw, "id": kw,
			"parent": m{"properties": m{"type": kw}}}}}},
		"service": m{"properties": m{"id": kw}},
		"swarm":   m{"properties": m{"task": m{"properties": m{"slot": m{"type": "integer"}}}, "node": m{"properties": m{"id": kw}}}},
		"event":   m{"properties": m{"dataset": kw, "sequence": m{"type": "long"}}},
	}
	if !f.MapperExtras {
		p["message"] = m{"type": "text"}
	}
	return p
}

// swarmLabels puts back the Swarm labels the encoder now leaves out
// (their values are in service.*, orchestrator.* and swarm.*), as the
// documents had them before.
func swarmLabels(body []byte) []byte {
	const at = `"runtime":"docker"`
	i := bytes.Index(body, []byte(at))
	if i < 0 {
		return body
	}
	i += len(at)
	out := make([]byte, 0, len(body)+200)
	out = append(out, body[:i]...)
	out = append(out, `,"labels":{"com.docker.stack.namespace":"shop","com.docker.swarm.node.id":"node7","com.docker.swarm.service.name":"shop_web","com.docker.swarm.task.id":"x8k2n1","com.docker.swarm.task.name":"shop_web.1.x8k2n1"}`...)
	return append(out, body[i:]...)
}

var catalogue = []variant{
	{name: "default", desc: "the agent's defaults: deterministic _id + create, the installed templates, gzip level 1"},
	{name: "auto-id", desc: "as default, but no _id: Elasticsearch generates IDs and skips the lookup (at-least-once only)", autoID: true},
	{name: "main", desc: "documents and templates as before the cost cuts: Swarm labels repeated in container.labels, doc values on every keyword, norms on text",
		mappings: nil, main: true, body: swarmLabels},
	{name: "refresh-1s", desc: "as default, with refresh_interval 1s set explicitly (shards never go search-idle)", settings: m{"refresh_interval": "1s"}},
	{name: "idle-5s", desc: "as default, shards go search-idle 5 s after the last search (no scheduled refresh while nobody searches)",
		settings: m{"search.idle.after": "5s"}},
	{name: "id-time", desc: "as default, with each _id prefixed by its line's time in seconds (time-ordered IDs)", idShape: timePrefixed},
	{name: "refresh-5s", desc: "as default, with refresh_interval 5s", settings: m{"refresh_interval": "5s"}},
	{name: "gzip-off", desc: "as default, without compression", output: func(c *esout.Config) { c.Compression = false }},
	{name: "gzip-6", desc: "as default, gzip level 6", output: func(c *esout.Config) { c.CompressionLevel = 6 }},
	{name: "bulk-512k", desc: "as default, 512 KiB bulk requests", output: func(c *esout.Config) { c.FlushBytes = 512 << 10 }},
	{name: "bulk-8m", desc: "as default, 8 MiB bulk requests", output: func(c *esout.Config) { c.FlushBytes = 8 << 20 }},
	{name: "no-labels", desc: "as default, container.labels neither indexed nor in doc values (still in _source)",
		mappings: m{"container": m{"properties": m{"labels": m{"type": "flattened", "index": false, "doc_values": false}}}}},
}

// timePrefixed puts the line's time (seconds, big-endian) before the
// agent's _id.
func timePrefixed(d *esout.Doc) {
	const pre = `{"@timestamp":"`
	ts, _, _ := strings.Cut(strings.TrimPrefix(string(d.Body[:min(len(d.Body), 64)]), pre), `"`)
	t, _ := time.Parse(time.RFC3339Nano, ts)
	raw, _ := base64.RawURLEncoding.DecodeString(d.ID)
	b := binary.BigEndian.AppendUint32(nil, uint32(t.Unix()))
	d.ID = base64.RawURLEncoding.EncodeToString(append(b, raw...))
}

func variantByName(n string) (variant, bool) {
	for _, v := range catalogue {
		if v.name == n {
			return v, true
		}
	}
	return variant{}, false
}

// result is one variant's row.
type result struct {
	name                     string
	docs, count, dups        int64
	wall                     time.Duration
	agentCPU, nodeCPU        float64 // seconds
	indexMS, refreshMS       int64
	mergeMS, flushMS, merges int64
	storeBytes, segments     int64
	wireBytes, bulks         float64
	settled                  bool
}

func (r result) perM(x float64) float64 { return x / float64(r.docs) * 1e6 }

func (r result) line() string {
	return fmt.Sprintf("cluster %.1f CPU-s/M, agent %.2f CPU-s/M, %.0f docs/s", r.perM(r.nodeCPU), r.perM(r.agentCPU), float64(r.docs)/r.wall.Seconds())
}

func printTable(w io.Writer, rows []result) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "variant\tcluster CPU-s/M docs\tindex s/M\trefresh s/M\tmerge s/M\tflush s/M\tagent CPU-s/M lines\tdocs/s\tbytes on disk/doc\tsegments\twire bytes/doc\tbulks\tin ES\t")
	for _, r := range rows {
		note := ""
		if !r.settled {
			note = " (merging)"
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%.1f%s\t%.1f\t%.2f\t%.0f\t%.1f\t%d\t%.1f\t%.0f\t%d\t\n", r.name,
			r.perM(r.nodeCPU), r.perM(float64(r.indexMS)/1000), r.perM(float64(r.refreshMS)/1000), r.perM(float64(r.mergeMS)/1000), note, r.perM(float64(r.flushMS)/1000),
			r.perM(r.agentCPU), float64(r.docs)/r.wall.Seconds(), float64(r.storeBytes)/float64(r.docs), r.segments,
			r.wireBytes/float64(r.docs), r.bulks, r.count)
	}
	_ = tw.Flush()
}

// countingOutput is esout.Writer counting acknowledgements, and leaving
// out the _id in the auto-id variant.
type countingOutput struct {
	*esout.Writer
	autoID      bool
	idShape     func(*esout.Doc)
	body        func([]byte) []byte
	total       int64
	acked, dups atomic.Int64
	done        chan struct{}
}

func (c *countingOutput) Write(ctx context.Context, docs []esout.Doc, ack func([]esout.Result)) error {
	for i := range docs {
		switch {
		case c.autoID:
			docs[i].ID = ""
		case c.idShape != nil:
			c.idShape(&docs[i])
		}
		if c.body != nil {
			docs[i].Body = c.body(docs[i].Body)
		}
	}
	return c.Writer.Write(ctx, docs, func(rs []esout.Result) {
		var d int64
		for _, r := range rs {
			if r.Outcome == esout.Duplicate {
				d++
			}
		}
		c.dups.Add(d)
		ack(rs)
		if c.acked.Add(int64(len(rs))) == c.total {
			close(c.done)
		}
	})
}

func runVariant(ctx context.Context, o options, root string, ids []string, f esschema.Features, v variant) (result, error) {
	es := esschema.HTTP{URL: o.es}
	ns := "escost" + strings.ReplaceAll(v.name, "-", "")
	stream := "logs-docker.container-" + ns
	cfg := shipper.DefaultConfig()
	cfg.ContainersRoot = filepath.Join(root, "containers")
	benchkit.Isolate(&cfg, ns, "escost-"+ns, 420) // apart from the default templates (200, 201), whose patterns overlap
	if v.output != nil {
		v.output(&cfg.Output.Config)
	}
	opts := cfg.SchemaOptions(f)
	if _, err := opts.Install(ctx, es, false); err != nil {
		return result{}, fmt.Errorf("install templates: %w", err)
	}
	if v.main {
		v.mappings = mainMappings(f)
	}
	if err := installOverride(ctx, es, opts, stream, v); err != nil {
		return result{}, err
	}
	// A fresh, empty write index with the variant's mapping.
	if err := emptyStream(ctx, es, stream); err != nil {
		return result{}, err
	}

	dataDir := filepath.Join(root, "data-"+ns)
	_ = os.RemoveAll(dataDir)
	defer os.RemoveAll(dataDir)
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{o.es}})
	if err != nil {
		return result{}, err
	}
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	outCfg := cfg.Output.Config
	outCfg.MaxInflightBytes = 0
	outCfg.ExternalTemplates = true
	w, err := esout.New(outCfg, client, esout.Options{Logger: logger, Registerer: reg})
	if err != nil {
		return result{}, err
	}
	total := int64(o.lines / o.containers * o.containers)
	out := &countingOutput{Writer: w, autoID: v.autoID, idShape: v.idShape, body: v.body, total: total, done: make(chan struct{})}

	shipCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	inv := inventory.New(&benchkit.Fake{IDs: ids}, inventory.Options{})
	wg.Go(func() { _ = inv.Run(shipCtx) })
	<-inv.Synced()
	s, err := shipper.New(cfg, shipper.Deps{Source: inv, Output: out, DataDir: dataDir, NodeName: "bench", AgentVersion: "bench",
		Logger: logger, Registerer: reg})
	if err != nil {
		return result{}, err
	}

	node0, err := nodeStats(ctx, es)
	if err != nil {
		return result{}, err
	}
	if o.cpuProfile != "" {
		pf, err := os.OpenFile(o.cpuProfile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return result{}, err
		}
		if err := pprof.StartCPUProfile(pf); err != nil {
			return result{}, err
		}
		defer pf.Close()
	}
	cpu0 := benchkit.SelfCPU().Seconds()
	t0 := time.Now()
	wg.Go(func() { _ = s.Run(shipCtx) })
	select {
	case <-out.done:
	case <-time.After(30 * time.Minute):
		return result{}, errors.New("not every line acknowledged within 30 minutes")
	}
	r := result{name: v.name, docs: total, wall: time.Since(t0), agentCPU: benchkit.SelfCPU().Seconds() - cpu0, dups: out.dups.Load()}
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	cancel()
	wg.Wait()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			switch mf.GetName() {
			case "heartwood_shipper_es_bulk_request_bytes_total":
				r.wireBytes += mt.GetCounter().GetValue()
			case "heartwood_shipper_es_bulk_requests_total":
				r.bulks += mt.GetCounter().GetValue()
			}
		}
	}

	// The cluster's work is done when its merges are.
	deadline := time.Now().Add(o.settle)
	for {
		st, err := streamStats(ctx, es, stream)
		if err != nil {
			return r, err
		}
		if st.Merges.Current == 0 {
			r.settled = true
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	node1, err := nodeStats(ctx, es)
	if err != nil {
		return r, err
	}
	r.nodeCPU = float64(node1-node0) / 1000
	if _, err := esDo(ctx, es, http.MethodPost, "/"+stream+"/_flush", nil); err != nil {
		return r, err
	}
	if _, err := esDo(ctx, es, http.MethodPost, "/"+stream+"/_refresh", nil); err != nil {
		return r, err
	}
	st, err := streamStats(ctx, es, stream)
	if err != nil {
		return r, err
	}
	r.count = st.Docs.Count
	r.indexMS, r.refreshMS, r.mergeMS, r.flushMS = st.Indexing.IndexTimeMS, st.Refresh.TotalTimeMS, st.Merges.TotalTimeMS, st.Flush.TotalTimeMS
	r.segments = st.Segments.Count
	// The store size in _stats is cached (index.store.stats_refresh_interval):
	// add up the segments instead.
	if r.storeBytes, err = segmentBytes(ctx, es, stream); err != nil {
		return r, err
	}
	if r.count != total {
		return r, fmt.Errorf("%s has %d documents, want %d", stream, r.count, total)
	}
	if !o.keep {
		if err := emptyStream(ctx, es, stream); err != nil {
			return r, err
		}
	}
	return r, nil
}

// installOverride puts an index template for exactly stream, composed of
// the agent's logs components and the variant's own, above the agent's.
func installOverride(ctx context.Context, es esschema.HTTP, opts esschema.Options, stream string, v variant) error {
	var settings m
	for _, t := range opts.ComponentTemplates() {
		if t.Name == opts.Prefix+"-logs@settings" {
			var body struct {
				Template struct {
					Settings struct {
						Index m `json:"index"`
					} `json:"settings"`
				} `json:"template"`
			}
			if err := json.Unmarshal(t.Body, &body); err != nil {
				return err
			}
			settings = body.Template.Settings.Index
		}
	}
	if settings == nil {
		return errors.New("no logs settings component")
	}
	for k, val := range v.settings {
		if val == nil {
			delete(settings, k)
		} else {
			settings[k] = val
		}
	}
	tpl := m{"settings": m{"index": settings}}
	if len(v.mappings) > 0 {
		tpl["mappings"] = m{"properties": v.mappings}
	}
	comp := opts.Prefix + "-variant"
	if err := putJSON(ctx, es, "/_component_template/"+comp, m{"template": tpl}); err != nil {
		return err
	}
	return putJSON(ctx, es, "/_index_template/"+opts.Prefix+"-variant", m{
		"index_patterns": []string{stream},
		"priority":       opts.Priority + 10,
		"data_stream":    m{},
		"composed_of":    []string{opts.Prefix + "@base", opts.Prefix + "-logs@mappings", comp},
	})
}

// emptyStream leaves stream with a fresh, empty write index (creating the
// stream if it does not exist) and deletes its older backing indices.
func emptyStream(ctx context.Context, es esschema.HTTP, stream string) error {
	st, body, err := es.Do(ctx, http.MethodPost, "/"+stream+"/_rollover", nil)
	if err != nil {
		return err
	}
	if st == http.StatusNotFound || st == http.StatusBadRequest && bytes.Contains(body, []byte("does not exist")) {
		// This build has no create-data-stream API: create it with one
		// document, then start over with an empty write index.
		if _, err := esDo(ctx, es, http.MethodPost, "/"+stream+"/_doc", []byte(`{"@timestamp":"2026-01-01T00:00:00Z"}`)); err != nil {
			return err
		}
		return emptyStream(ctx, es, stream)
	}
	if st != http.StatusOK {
		return fmt.Errorf("rollover %s: %d %s", stream, st, body)
	}
	var ro struct {
		OldIndex string `json:"old_index"`
	}
	_ = json.Unmarshal(body, &ro)
	// Every backing index but the new write index.
	body, err = esDo(ctx, es, http.MethodGet, "/_cat/indices/.ds-"+stream+"-*?h=index&format=json", nil)
	if err != nil {
		return err
	}
	var idx []struct{ Index string }
	if err := json.Unmarshal(body, &idx); err != nil {
		return err
	}
	var newest string
	for _, i := range idx {
		newest = max(newest, i.Index)
	}
	for _, i := range idx {
		if i.Index != newest {
			if _, err := esDo(ctx, es, http.MethodDelete, "/"+i.Index, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

type indexStats struct {
	Docs     struct{ Count int64 }
	Indexing struct {
		IndexTimeMS int64 `json:"index_time_in_millis"`
	}
	Refresh struct {
		TotalTimeMS int64 `json:"total_time_in_millis"`
	}
	Merges struct {
		Current     int64
		TotalTimeMS int64 `json:"total_time_in_millis"`
	}
	Flush struct {
		TotalTimeMS int64 `json:"total_time_in_millis"`
	}
	Segments struct{ Count int64 }
}

func streamStats(ctx context.Context, es esschema.HTTP, stream string) (indexStats, error) {
	body, err := esDo(ctx, es, http.MethodGet, "/"+stream+"/_stats/docs,indexing,refresh,merge,flush,segments", nil)
	if err != nil {
		return indexStats{}, err
	}
	var s struct {
		All struct{ Primaries indexStats } `json:"_all"`
	}
	err = json.Unmarshal(body, &s)
	return s.All.Primaries, err
}

// segmentBytes returns the size of stream's segments.
func segmentBytes(ctx context.Context, es esschema.HTTP, stream string) (int64, error) {
	body, err := esDo(ctx, es, http.MethodGet, "/"+stream+"/_segments?filter_path=indices.*.shards.*.segments.*.size_in_bytes", nil)
	if err != nil {
		return 0, err
	}
	var s struct {
		Indices map[string]struct {
			Shards map[string][]struct {
				Segments map[string]struct {
					Size int64 `json:"size_in_bytes"`
				}
			}
		}
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return 0, err
	}
	var n int64
	for _, i := range s.Indices {
		for _, copies := range i.Shards {
			for _, c := range copies {
				for _, seg := range c.Segments {
					n += seg.Size
				}
			}
		}
	}
	return n, nil
}

// nodeStats returns the node's process CPU in milliseconds (a single-node
// cluster: the sum over nodes).
func nodeStats(ctx context.Context, es esschema.HTTP) (int64, error) {
	body, err := esDo(ctx, es, http.MethodGet, "/_nodes/stats/process?filter_path=nodes.*.process.cpu.total_in_millis", nil)
	if err != nil {
		return 0, err
	}
	var s struct {
		Nodes map[string]struct {
			Process struct {
				CPU struct {
					TotalMS int64 `json:"total_in_millis"`
				}
			}
		}
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return 0, err
	}
	var n int64
	for _, nd := range s.Nodes {
		n += nd.Process.CPU.TotalMS
	}
	return n, nil
}

func putJSON(ctx context.Context, es esschema.HTTP, path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = esDo(ctx, es, http.MethodPut, path, b)
	return err
}

func esDo(ctx context.Context, es esschema.HTTP, method, path string, body []byte) ([]byte, error) {
	st, resp, err := es.Do(ctx, method, path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if st/100 != 2 {
		return nil, fmt.Errorf("%s %s: %d %s", method, path, st, resp)
	}
	return resp, nil
}

// writeLogs writes each container's json-file log (unless -dir already
// holds it) and returns the container IDs.
func writeLogs(root string, o options) ([]string, error) {
	var ids []string
	per := o.lines / o.containers
	for c := range o.containers {
		id := fmt.Sprintf("%012x%052d", c+1, 0)
		ids = append(ids, id)
		dir := filepath.Join(root, "containers", id)
		file := filepath.Join(dir, id+"-json.log")
		marker := file + ".lines"
		if b, err := os.ReadFile(marker); err == nil && string(b) == fmt.Sprint(per, o.lineBytes) {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		if err := writeLog(file, c, per, o.lineBytes); err != nil {
			return nil, err
		}
		if err := os.WriteFile(marker, []byte(fmt.Sprint(per, o.lineBytes)), 0o644); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// writeLog writes n json-file records of lineBytes-long lines of
// pseudo-random log words and numbers (so that compression and the terms
// dictionary see log-like text).
func writeLog(file string, c, n, lineBytes int) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	base := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	rng := uint64(c+1) * 0x9E3779B97F4A7C15
	var buf, msg []byte
	for i := range n {
		msg = append(msg[:0], "2026-11-28 10:57:28 INFO "...)
		for len(msg) < lineBytes-1 {
			rng ^= rng << 13
			rng ^= rng >> 7
			rng ^= rng << 17
			msg = append(msg, ' ')
			if rng%5 == 0 {
				msg = strconv.AppendUint(msg, rng%100000, 10)
			} else {
				msg = append(msg, benchkit.Words[rng%uint64(len(benchkit.Words))]...)
			}
		}
		msg = append(msg[:lineBytes-1], '\n')
		rec, _ := json.Marshal(struct {
			Log    string `json:"log"`
			Stream string `json:"stream"`
			Time   string `json:"time"`
		}{string(msg), "stdout", base.Add(time.Duration(i) * time.Microsecond).Format(time.RFC3339Nano)})
		buf = append(append(buf, rec...), '\n')
		if len(buf) > 1<<20 {
			if _, err := f.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	if _, err := f.Write(buf); err != nil {
		return err
	}
	return f.Close()
}
