package shipper

import (
	"context"
	"encoding/json"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/inventory/inventorytest"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// ttyLogs serves, for every container, a TTY log stream (not multiplexed)
// of one timestamped line that never ends: a container printing without
// newlines.
type ttyLogs struct{ served atomic.Int64 }

func (l *ttyLogs) ContainerLogs(ctx context.Context, _ string, _ container.LogsOptions) (io.ReadCloser, error) {
	return &endlessLine{ctx: ctx, served: &l.served, head: []byte("2026-11-30T10:00:00.000000001Z ")}, nil
}

type endlessLine struct {
	ctx    context.Context
	served *atomic.Int64
	head   []byte
}

func (e *endlessLine) Read(p []byte) (int, error) {
	if err := e.ctx.Err(); err != nil {
		return 0, err
	}
	n := copy(p, e.head)
	e.head = e.head[n:]
	for n < len(p) {
		n += copy(p[n:], ys[:])
	}
	e.served.Add(int64(len(p)))
	return len(p), nil
}

func (e *endlessLine) Close() error { return nil }

var ys = func() (b [4096]byte) {
	for i := range b {
		b[i] = 'y'
	}
	return b
}()

// recordingOutput acknowledges every document at once and keeps its body.
type recordingOutput struct {
	mu   sync.Mutex
	docs [][]byte
}

func (o *recordingOutput) Run(ctx context.Context) error { <-ctx.Done(); return nil }
func (o *recordingOutput) Ready() error                  { return nil }
func (o *recordingOutput) Do(_ context.Context, method, _ string, _ []byte) (int, []byte, error) {
	return fakeClusterAnswer(method)
}
func (o *recordingOutput) Write(_ context.Context, docs []esout.Doc, ack func([]esout.Result)) error {
	res := make([]esout.Result, len(docs))
	o.mu.Lock()
	for i, d := range docs {
		o.docs = append(o.docs, append([]byte(nil), d.Body...))
		res[i] = esout.Result{Token: d.Token, Outcome: esout.Delivered}
	}
	o.mu.Unlock()
	ack(res)
	return nil
}

func (o *recordingOutput) bodies() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.docs)
}

// TestAPIReaderTTYLineIsCapped: a TTY container read through the Docker
// logs API prints one line without end. The reader ships its first
// max-event-bytes as one event tagged truncated and skips the rest; its
// memory does not grow with the line.
func TestAPIReaderTTYLineIsCapped(t *testing.T) {
	const maxEvent = 4096
	c := inventorytest.Container("77777777777700000000000000000000000000000000000000000000000000aa", "tty")
	c.LogDriver = "local"
	inv := inventorytest.New(c)
	logs := &ttyLogs{}
	out := &recordingOutput{}
	cfg := DefaultConfig()
	cfg.MaxEventBytes = maxEvent
	cfg.PollInterval = 20 * time.Millisecond
	s, err := New(cfg, Deps{Source: inv, Docker: logs, Output: out, DataDir: t.TempDir(), NodeName: "n", AgentVersion: "test",
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	wg.Go(func() { _ = s.Run(ctx) })

	poll.UntilTrue(t, 20*time.Second, "the endless line shipped as a truncated event", func() bool { return len(out.bodies()) > 0 })
	var doc struct {
		Message string   `json:"message"`
		Tags    []string `json:"tags"`
	}
	if err := json.Unmarshal(out.bodies()[0], &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Message) != maxEvent || !slices.Contains(doc.Tags, "truncated") {
		t.Fatalf("event of %d bytes with tags %v, want %d bytes tagged truncated", len(doc.Message), doc.Tags, maxEvent)
	}
	// The reader goes on skipping the rest of the line without keeping it.
	poll.UntilTrue(t, time.Minute, "32 MiB of the line skipped", func() bool { return logs.served.Load() > 32<<20 })
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 8<<20 {
		t.Fatalf("heap grew by %d bytes while skipping a 32 MiB line", grew)
	}
	if n := len(out.bodies()); n != 1 {
		t.Fatalf("%d events from one line, want 1", n)
	}
}
