package esout

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	kgzip "github.com/klauspost/compress/gzip"
)

// benchDocs returns n ECS-like documents with ~100-byte messages.
func benchDocs(n int) []Doc {
	docs := make([]Doc, n)
	msg := strings.Repeat("x", 80)
	for i := range docs {
		ts := time.Date(2026, 11, 28, 10, 0, 0, i, time.UTC).Format(time.RFC3339Nano)
		docs[i] = Doc{
			Index: "logs-docker.container-default",
			ID:    fmt.Sprintf("3f2a9c1b7d4e-00000000fd01-%012d", i*120),
			Body: []byte(fmt.Sprintf(`{"@timestamp":%q,"message":"request %d %s","stream":"stdout","event":{"sequence":%d},`+
				`"container":{"id":"3f2a9c1b7d4e5f60718293a4b5c6d7e8f9001122334455667788990011223344","name":"web.1.abcdef","image":{"name":"nginx:1.27"}},`+
				`"host":{"name":"node-1"},"service":{"name":"web"},"data_stream":{"type":"logs","dataset":"docker.container","namespace":"default"}}`, ts, i, msg, i)),
			Raw:   []byte(fmt.Sprintf(`{"log":"request %d %s\n","stream":"stdout","time":%q}`, i, msg, ts)),
			Token: uint64(i),
		}
	}
	return docs
}

// BenchmarkEncodeBulk measures building one bulk body of 1000 documents
// (ns/op is per 1000 docs).
func BenchmarkEncodeBulk(b *testing.B) {
	docs := benchDocs(1000)
	var buf []byte
	var size int64
	for i := range docs {
		size += int64(createSize(docs[i].Index, docs[i].ID, docs[i].Body))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range docs {
			buf = appendCreate(buf, docs[i].Index, docs[i].ID, docs[i].Body)
		}
	}
}

// BenchmarkEncodeBulkGzip is BenchmarkEncodeBulk plus gzip level 1, as
// sent (ns/op per 1000 docs).
func BenchmarkEncodeBulkGzip(b *testing.B) {
	docs := benchDocs(1000)
	var buf []byte
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	var size int64
	for i := range docs {
		size += int64(createSize(docs[i].Index, docs[i].ID, docs[i].Body))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var out strings.Builder
	for b.Loop() {
		buf = buf[:0]
		for i := range docs {
			buf = appendCreate(buf, docs[i].Index, docs[i].ID, docs[i].Body)
		}
		out.Reset()
		zw.Reset(&out)
		_, _ = zw.Write(buf)
		_ = zw.Close()
	}
	b.ReportMetric(float64(size)/float64(out.Len()), "ratio")
}

// BenchmarkEncodeBulkGzipCold builds and compresses 2 MiB bulk requests
// (the default flush size) the way a worker meets their documents: written
// long before by the readers and out of the CPU caches (64 MiB of
// documents, cycled). ns/op is per request.
func BenchmarkEncodeBulkGzipCold(b *testing.B) {
	docs := benchDocs(160_000)
	items := make([]*item, len(docs))
	var size int64
	for i := range docs {
		items[i] = &item{doc: docs[i]}
		size += int64(createSize(docs[i].Index, docs[i].ID, docs[i].Body))
	}
	per := 2 << 20 / int(size/int64(len(docs)))
	s := &sender{}
	s.gz, _ = kgzip.NewWriterLevel(io.Discard, kgzip.BestSpeed)
	b.SetBytes(size / int64(len(docs)) * int64(per))
	b.ReportAllocs()
	at := 0
	for b.Loop() {
		if at+per > len(items) {
			at = 0
		}
		_ = encode(s, items[at:at+per], true)
		at += per
	}
}

// bulkResponses are 1000-item responses as Elasticsearch writes them.
func bulkResponses() map[string][]byte {
	full := func(errAt func(i int) bool) []byte {
		var sb strings.Builder
		anyErr := false
		for i := range 1000 {
			if errAt(i) {
				anyErr = true
			}
		}
		fmt.Fprintf(&sb, `{"errors":%v,"took":12,"items":[`, anyErr)
		for i := range 1000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			if errAt(i) {
				fmt.Fprintf(&sb, `{"create":{"_index":".ds-logs-docker.container-default-2026.11.28-000001","_id":"id-%d","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[id-%d]: version conflict, document already exists (current version [1])","index_uuid":"PAJslSz2Qh25xuq365QGqw","shard":"0","index":".ds-logs-docker.container-default-2026.11.28-000001"}}}`, i, i)
			} else {
				fmt.Fprintf(&sb, `{"create":{"_index":".ds-logs-docker.container-default-2026.11.28-000001","_id":"id-%d","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":%d,"_primary_term":1,"status":201}}`, i, i)
			}
		}
		sb.WriteString("]}")
		return []byte(sb.String())
	}
	filtered := func(errAt func(i int) bool) []byte {
		var sb strings.Builder
		sb.WriteString(`{"errors":true,"items":[`)
		for i := range 1000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			if errAt(i) {
				fmt.Fprintf(&sb, `{"create":{"status":409,"error":{"type":"version_conflict_engine_exception","reason":"[id-%d]: version conflict, document already exists (current version [1])"}}}`, i)
			} else {
				sb.WriteString(`{"create":{"status":201}}`)
			}
		}
		sb.WriteString("]}")
		return []byte(sb.String())
	}
	none := func(int) bool { return false }
	tenth := func(i int) bool { return i%10 == 0 }
	all := func(int) bool { return true }
	return map[string][]byte{
		"ok-full":           full(none),
		"ok-filtered":       []byte(`{"errors":false,"items":[` + strings.TrimSuffix(strings.Repeat(`{"create":{"status":201}},`, 1000), ",") + "]}"),
		"10pct409-full":     full(tenth),
		"10pct409-filtered": filtered(tenth),
		"all409-filtered":   filtered(all),
	}
}

// BenchmarkParseBulkResponse measures parsing a 1000-item response (ns/op
// per 1000 items); BenchmarkParseBulkResponseStdlib is encoding/json on
// the same input, for comparison.
func BenchmarkParseBulkResponse(b *testing.B) {
	for name, body := range bulkResponses() {
		b.Run(name, func(b *testing.B) {
			var items []itemResult
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				res, err := parseBulkResponse(body, items)
				if err != nil {
					b.Fatal(err)
				}
				if res.items != nil {
					items = res.items
				}
			}
		})
	}
}

func BenchmarkParseBulkResponseStdlib(b *testing.B) {
	for name, body := range bulkResponses() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var v struct {
					Errors bool `json:"errors"`
					Items  []map[string]struct {
						Status int `json:"status"`
						Error  *struct {
							Type   string `json:"type"`
							Reason string `json:"reason"`
						} `json:"error"`
					} `json:"items"`
				}
				if err := json.Unmarshal(body, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWriter measures the writer end to end (Write, batching,
// encoding, gzip, HTTP, response parsing, acks) against an in-process
// server that answers every item 201 without parsing the request; ns/op is
// per document.
func BenchmarkWriter(b *testing.B) {
	okItem := `{"create":{"status":201}}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		if r.Method != http.MethodPost {
			_, _ = io.WriteString(w, `{"acknowledged":true}`)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{"errors":false,"items":[`+okItem+`]}`)
	}))
	defer srv.Close()
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}, DisableRetry: true})
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	w, err := New(cfg, client, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = w.Run(ctx) }()
	docs := benchDocs(1000)
	acked := make(chan int, 1024)
	ack := func(rs []Result) { acked <- len(rs) }
	b.ReportAllocs()
	b.ResetTimer()
	sent, got := 0, 0
	for sent < b.N {
		n := min(len(docs), b.N-sent)
		if err := w.Write(ctx, docs[:n], ack); err != nil {
			b.Fatal(err)
		}
		sent += n
		for got < sent-50000 { // keep the pipeline full but bounded
			got += <-acked
		}
	}
	_ = w.Flush(ctx)
	for got < sent {
		got += <-acked
	}
}
