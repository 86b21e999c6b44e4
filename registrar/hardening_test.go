package registrar

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// skippedFor returns the skip reasons the registrar reports for a
// container's service ID.
func skippedFor(h *harness, c *inventory.Container, sid string) []string {
	v, _ := h.r.DescribeContainer(c.ID).(ContainerView)
	var out []string
	for _, s := range v.Skipped {
		if s.ServiceID == sid {
			out = append(out, s.Reason)
		}
	}
	return out
}

// TestForeignServiceIDNotTakenOver: a SERVICE_ID naming a service that
// Heartwood did not register on the agent (found by the full read, or
// registered between reads) is neither overwritten nor, when the
// container goes, deleted; the container's view says why.
func TestForeignServiceIDNotTakenOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		// early registers the foreign service before the full read;
		// otherwise it appears after it, before the container starts.
		early bool
		meta  map[string]string
	}{
		{"found by the full read", true, nil},
		{"registered after the read", false, nil},
		{"another node's Heartwood", true, map[string]string{"managed_by": "heartwood", "heartwood_node": "n2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			foreign := &consulapi.AgentServiceRegistration{ID: "billing", Name: "billing-db", Port: 5432, Meta: tc.meta}
			if tc.early {
				h.agent.services["billing"] = foreign
			}
			h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: ctr("web")}}, map[string]time.Time{})
			if err := h.full(); err != nil {
				t.Fatal(err)
			}
			if !tc.early {
				h.agent.mu.Lock()
				h.agent.services["billing"] = foreign
				h.agent.mu.Unlock()
			}
			thief := ctr("thief", "SERVICE_ID=billing")
			h.change(inventory.Added, "start", thief)
			if got := h.agent.services["billing"]; got != foreign {
				t.Fatalf("foreign service replaced by %+v", got)
			}
			reasons := skippedFor(h, thief, "billing")
			if len(reasons) != 1 || !strings.Contains(reasons[0], "billing-db") || !strings.Contains(reasons[0], "not taken over") {
				t.Fatalf("skip reasons for billing = %q, want one naming the holder", reasons)
			}
			if n := testutil.ToFloat64(h.r.m.conflicts); n != 1 {
				t.Errorf("conflicts gauge = %v, want 1", n)
			}
			// Reconciles keep it that way, and the container's removal
			// does not delete the foreign service.
			if err := h.full(); err != nil {
				t.Fatal(err)
			}
			h.change(inventory.Removed, "destroy", thief)
			if err := h.full(); err != nil {
				t.Fatal(err)
			}
			if got := h.agent.services["billing"]; got != foreign {
				t.Fatalf("foreign service gone or replaced after the container was removed: %+v", got)
			}
			if n := testutil.ToFloat64(h.r.m.conflicts); n != 0 {
				t.Errorf("conflicts gauge = %v after removal, want 0", n)
			}
			// Once the foreign service is gone, the next full reconcile
			// finds the ID free.
			h.change(inventory.Added, "start", thief)
			h.agent.mu.Lock()
			delete(h.agent.services, "billing")
			h.agent.mu.Unlock()
			if err := h.full(); err != nil {
				t.Fatal(err)
			}
			if s := h.agent.services["billing"]; s == nil || s.Meta[translate.MetaManagedBy] != translate.ManagedByValue {
				t.Fatalf("free ID not registered: %+v", s)
			}
		})
	}
}

// TestRegistratorServiceTakenOverOnlyWithCleanup: Registrator's own
// registration of the same container (same <node>:<name>:<port> ID) is
// taken over when cleanup-registrator is on, the migration path; without
// it, it is left alone like any foreign service.
func TestRegistratorServiceTakenOverOnlyWithCleanup(t *testing.T) {
	for _, cleanup := range []bool{false, true} {
		h := newHarness(t, func(c *Config) { c.CleanupRegistrator = cleanup })
		old := &consulapi.AgentServiceRegistration{ID: "n1:web:80", Name: "web"}
		h.agent.services["n1:web:80"] = old
		h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: ctr("web")}}, map[string]time.Time{})
		if err := h.full(); err != nil {
			t.Fatal(err)
		}
		got := h.agent.services["n1:web:80"]
		if taken := got.Meta[translate.MetaManagedBy] == translate.ManagedByValue; taken != cleanup {
			t.Errorf("cleanup-registrator=%v: taken over = %v", cleanup, taken)
		}
	}
}

// TestPanickingWriteFailsOnlyThatService: a registration that panics in the
// Consul writer is reported for its service and not retried until it
// changes; the other services are registered and the registrar goes on.
func TestPanickingWriteFailsOnlyThatService(t *testing.T) {
	h := newHarness(t, nil)
	h.agent.panicOn = "poison"
	h.r.ingest([]inventory.Change{
		{Kind: inventory.Added, Container: ctr("web")},
		{Kind: inventory.Added, Container: ctr("bad", "SERVICE_NAME=poison")},
	}, map[string]time.Time{})
	if err := h.full(); err != nil {
		t.Fatalf("full reconcile: %v", err)
	}
	h.wantIDs("n1:web:80")
	if n := testutil.ToFloat64(h.r.m.errors.WithLabelValues("panic")); n != 1 {
		t.Fatalf("panic errors = %v, want 1", n)
	}
	v := h.r.DescribeContainer(ctr("bad").ID).(ContainerView)
	if len(v.Desired) != 1 || !strings.Contains(v.Desired[0].Error, "internal error") {
		t.Fatalf("panic not reported for the service: %+v", v.Desired)
	}
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if n := testutil.ToFloat64(h.r.m.errors.WithLabelValues("panic")); n != 1 {
		t.Fatalf("poison registration retried: panic errors = %v", n)
	}
	h.change(inventory.Updated, "update", ctr("bad", "SERVICE_NAME=fixed"))
	h.wantIDs("n1:bad:80", "n1:web:80")
}

// TestPanickingTranslationSkipsOnlyThatContainer: a container whose
// settings make the translation panic yields no service, with the reason,
// and does not stop the others.
func TestPanickingTranslationSkipsOnlyThatContainer(t *testing.T) {
	h := newHarness(t, nil)
	h.r.translate = func(c *inventory.Container, o translate.Options) translate.Result {
		if c.Name == "bad" {
			var m map[string]int
			m["boom"]++ // nil map write: a runtime panic
		}
		return translate.Translate(c, o)
	}
	h.r.ingest([]inventory.Change{
		{Kind: inventory.Added, Container: ctr("web")},
		{Kind: inventory.Added, Container: ctr("bad")},
	}, map[string]time.Time{})
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	h.wantIDs("n1:web:80")
	v := h.r.DescribeContainer(ctr("bad").ID).(ContainerView)
	if len(v.Skipped) != 1 || !strings.Contains(v.Skipped[0].Reason, "internal error") {
		t.Fatalf("skipped = %+v", v.Skipped)
	}
	if n := testutil.ToFloat64(h.r.m.errors.WithLabelValues("translate")); n != 1 {
		t.Fatalf("translate errors = %v, want 1", n)
	}
}

// TestScriptChecksDroppedByDefault: the registrar registers the service of
// a container asking for a script check without that check, reports it per
// service and in a gauge; with allow-script-checks it is kept.
func TestScriptChecksDroppedByDefault(t *testing.T) {
	for _, allow := range []bool{false, true} {
		h := newHarness(t, func(c *Config) { c.AllowScriptChecks = allow })
		c := ctr("web", "SERVICE_CHECK_SCRIPT=touch /tmp/pwned", `SERVICE_CHECKS=[{"id":"x","args":["/bin/id"]}]`)
		h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: c}}, map[string]time.Time{})
		err := h.full()
		if allow {
			// The fake agent, as Consul's default, refuses script checks.
			v := h.r.DescribeContainer(c.ID).(ContainerView)
			if err != nil || len(v.Desired) != 1 || !strings.Contains(v.Desired[0].Error, "Scripts are disabled") {
				t.Fatalf("allowed: err %v, desired %+v", err, v.Desired)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		h.wantIDs("n1:web:80")
		for _, ch := range h.agent.services["n1:web:80"].Checks {
			if len(ch.Args) > 0 {
				t.Fatalf("script check registered: %+v", ch)
			}
		}
		if n := testutil.ToFloat64(h.r.m.scriptsDropped); n != 2 {
			t.Errorf("script checks dropped gauge = %v, want 2", n)
		}
		v := h.r.DescribeContainer(c.ID).(ContainerView)
		if w := strings.Join(v.Desired[0].Warnings, "\n"); strings.Count(w, "registrar.allow-script-checks") != 2 {
			t.Errorf("warnings = %q", w)
		}
	}
}

// countHandler counts log records by message.
type countHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n[r.Message]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

// TestConflictLoggedOnce: a conflict that persists is logged once, not at
// every reconcile; after it is resolved and comes back, it is logged again.
func TestConflictLoggedOnce(t *testing.T) {
	h := newHarness(t, nil)
	logs := &countHandler{n: map[string]int{}}
	h.r.log = slog.New(logs)
	const msg = "service ID held by another service on the agent; not registered"
	h.agent.services["billing"] = &consulapi.AgentServiceRegistration{ID: "billing", Name: "billing-db"}
	h.r.ingest([]inventory.Change{{Kind: inventory.Added, Container: ctr("thief", "SERVICE_ID=billing")}}, map[string]time.Time{})
	for range 3 {
		if err := h.full(); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.n[msg]; n != 1 {
		t.Fatalf("conflict logged %d times over 3 reconciles, want 1", n)
	}
	// The foreign service goes: the container gets the ID. Another tool
	// then registers over it: that is a new conflict, logged again.
	h.agent.mu.Lock()
	delete(h.agent.services, "billing")
	h.agent.mu.Unlock()
	if err := h.full(); err != nil {
		t.Fatal(err)
	}
	if s := h.agent.services["billing"]; s == nil || s.Meta[translate.MetaManagedBy] != translate.ManagedByValue {
		t.Fatalf("free ID not registered: %+v", s)
	}
	h.agent.mu.Lock()
	h.agent.services["billing"] = &consulapi.AgentServiceRegistration{ID: "billing", Name: "billing-db"}
	h.agent.mu.Unlock()
	for range 2 {
		if err := h.full(); err != nil {
			t.Fatal(err)
		}
	}
	if n := logs.n[msg]; n != 2 {
		t.Fatalf("conflict logged %d times in all, want 2 (once per occurrence)", n)
	}
}
