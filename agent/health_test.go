package agent

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heartwood-ops/heartwood/agent/supervisor"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/registrar"
	"github.com/heartwood-ops/heartwood/shipper"
	"github.com/heartwood-ops/heartwood/watchman"
)

func fullHealthInput() healthInput {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	in := healthInput{at: t0.Add(90 * time.Second), started: t0, node: "node-1", swarm: "swarmnode1", docker: true, containers: 3,
		shipper:   &shipper.Health{LagSeconds: 1.5, BehindBytes: 4096, Retries: 2, DeadLetters: 1, DeadLetterFailures: 0, Gaps: 1, LostBytes: 300},
		registrar: &registrar.Health{Desired: 4, Registered: 3, InSync: 2, Drift: 1, ConsulErrors: 5},
		watchman:  &watchman.Health{KVErrors: 1},
	}
	for i, u := range esschema.AgentUnits {
		in.units = append(in.units, supervisor.State{Name: u, Running: true, Restarts: i})
	}
	return in
}

// leaves returns the dotted names of a mapping's typed fields below prefix.
func leaves(prefix string, props map[string]any, out map[string]bool) {
	for k, v := range props {
		p, _ := v.(map[string]any)
		name := prefix + k
		if sub, ok := p["properties"].(map[string]any); ok {
			leaves(name+".", sub, out)
			continue
		}
		out[name] = true
	}
}

func docLeaves(prefix string, doc map[string]any, out map[string]bool) {
	for k, v := range doc {
		if sub, ok := v.(map[string]any); ok {
			docLeaves(prefix+k+".", sub, out)
			continue
		}
		out[prefix+k] = true
	}
}

// The health document and the template are one description: every field
// written is mapped with a type its value fits, and every field the
// template has for the health document is written.
func TestHealthDocFitsTheTemplate(t *testing.T) {
	doc := testenv.JSON(t, healthDoc(fullHealthInput()))
	for _, f := range []esschema.Features{{}, {TimeSeries: true, MapperExtras: true, ConstantKeyword: true}} {
		props := testenv.JSON(t, esschema.Mappings(esschema.Agent, f))
		if bad := esschema.CheckDocument(props, doc); len(bad) > 0 {
			t.Errorf("features %+v: %v", f, bad)
		}
		mapped, written := map[string]bool{}, map[string]bool{}
		leaves("", props["heartwood"].(map[string]any)["properties"].(map[string]any), mapped)
		docLeaves("", doc["heartwood"].(map[string]any), written)
		var unwritten []string
		for name := range mapped {
			if !written[name] {
				unwritten = append(unwritten, name)
			}
		}
		sort.Strings(unwritten)
		if len(unwritten) > 0 {
			t.Errorf("features %+v: the template maps fields the health document never has: %v", f, unwritten)
		}
	}
}

func TestHealthDoc(t *testing.T) {
	full := fullHealthInput()
	tests := []struct {
		name  string
		in    healthInput
		check func(t *testing.T, ag map[string]any, doc map[string]any)
	}{
		{"figures", full, func(t *testing.T, ag, doc map[string]any) {
			if ag["uptime_seconds"] != 90.0 || ag["started"] != "2026-01-01T00:00:00Z" {
				t.Errorf("uptime %v started %v", ag["uptime_seconds"], ag["started"])
			}
			// Restarts 0+1+2+3+4 over the five units.
			if r := ag["restarts"].(map[string]any); r["total"] != 10.0 || r["watchman"] != 3.0 {
				t.Errorf("restarts %v", r)
			}
			if r := ag["registrar"].(map[string]any); r["desired"] != 4.0 || r["registered"] != 3.0 || r["consul_errors"] != 5.0 {
				t.Errorf("registrar %v", r)
			}
			if s := ag["shipper"].(map[string]any); s["lag_seconds"] != 1.5 || s["behind_bytes"] != 4096.0 || s["lost_bytes"] != 300.0 {
				t.Errorf("shipper %v", s)
			}
			if doc["host"].(map[string]any)["name"] != "node-1" || doc["swarm"].(map[string]any)["node"].(map[string]any)["id"] != "swarmnode1" {
				t.Errorf("host %v swarm %v", doc["host"], doc["swarm"])
			}
		}},
		{"subsystems off, no swarm", healthInput{at: full.at, started: full.started, node: "n"}, func(t *testing.T, ag, doc map[string]any) {
			for _, k := range []string{"shipper", "registrar", "watchman"} {
				if _, ok := ag[k]; ok {
					t.Errorf("%s written although off", k)
				}
			}
			if _, ok := doc["swarm"]; ok {
				t.Error("swarm written without a node ID")
			}
			if r := ag["restarts"].(map[string]any); r["total"] != 0.0 {
				t.Errorf("restarts %v", r)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := testenv.JSON(t, healthDoc(tc.in))
			tc.check(t, doc["heartwood"].(map[string]any)["agent"].(map[string]any), doc)
		})
	}
}

// fakeSink records the documents; it fails while fail is set.
type fakeSink struct {
	mu   sync.Mutex
	docs []map[string]any
	fail bool
	sets []string
}

func (s *fakeSink) SendMetrics(ctx context.Context, dataset string, docs []map[string]any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sets = append(s.sets, dataset)
	if s.fail {
		return errors.New("elasticsearch unreachable")
	}
	s.docs = append(s.docs, docs...)
	return nil
}

func (s *fakeSink) count() (int, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.docs), append([]string(nil), s.sets...)
}

func TestHealthWriterWritesEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sink := &fakeSink{}
		var logs strings.Builder
		var logMu sync.Mutex
		n := 0
		h := &healthWriter{interval: 30 * time.Second, sink: sink,
			log: slog.New(slog.NewTextHandler(lockedWriter{&logMu, &logs}, nil)),
			gather: func() healthInput {
				n++
				in := fullHealthInput()
				in.at = in.started.Add(time.Duration(n) * time.Second)
				return in
			}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- h.run(ctx) }()
		synctest.Wait()
		if n, _ := sink.count(); n != 1 {
			t.Fatalf("at start: %d documents, want 1", n)
		}
		time.Sleep(60 * time.Second)
		synctest.Wait()
		if n, sets := sink.count(); n != 3 || sets[0] != esschema.AgentDataset {
			t.Fatalf("after two intervals: %d documents to %v, want 3", n, sets)
		}
		sink.mu.Lock()
		sink.fail = true
		sink.mu.Unlock()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		logMu.Lock()
		if !strings.Contains(logs.String(), "health document not written") {
			t.Errorf("failed write not logged: %q", logs.String())
		}
		logMu.Unlock()
		sink.mu.Lock()
		sink.fail = false
		sink.mu.Unlock()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n, _ := sink.count(); n != 4 {
			t.Errorf("after a failed write: %d documents, want 4 (it goes on)", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run = %v after cancel", err)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
