package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/prometheus/client_golang/prometheus"
)

type fakeInventory struct {
	containers []*inventory.Container
	connected  bool
}

func (f *fakeInventory) List() []*inventory.Container { return f.containers }
func (f *fakeInventory) Lookup(ref string) (*inventory.Container, bool) {
	for _, c := range f.containers {
		if c.ID == ref || c.Name == ref {
			return c, true
		}
	}
	return nil, false
}
func (f *fakeInventory) Connected() (bool, error) {
	if f.connected {
		return true, nil
	}
	return false, errors.New("dial unix /var/run/docker.sock: connection refused")
}

type fakeController struct{ calls []string }

func (f *fakeController) Pause(_ context.Context, id, reason string) error {
	f.calls = append(f.calls, "pause "+id+" "+reason)
	return nil
}
func (f *fakeController) Wake(_ context.Context, id, trigger string) error {
	if id == "gone" {
		return ErrNotFound
	}
	f.calls = append(f.calls, "wake "+id+" "+trigger)
	return nil
}

type describer map[string]any

func (d describer) DescribeContainer(id string) any { return d[id] }

func TestHandler(t *testing.T) {
	inv := &fakeInventory{connected: true, containers: []*inventory.Container{
		{ID: "abc123", Name: "web", Env: []string{"DB_PASSWORD=hunter2"}, Labels: map[string]string{"a": "b"}},
		{ID: "gone", Name: "gone"},
	}}
	ctl := &fakeController{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "heartwood_test_total", Help: "test"}))
	h := Handler(Options{
		Inventory:  inv,
		Describers: map[string]Describer{"registrar": describer{"abc123": map[string]string{"service": "web-80"}}},
		Controller: ctl,
		Checks:     map[string]Check{"shipper": func() error { return nil }},
		Gatherer:   reg,
		Token:      func() string { return "s3cret" },
	})
	tests := []struct {
		desc, method, path, auth string
		wantCode                 int
		wantBody                 []string
		notBody                  []string
	}{
		{"health", "GET", "/healthz", "", 200, []string{`"ok"`}, nil},
		{"ready", "GET", "/readyz", "", 200, []string{`"ready"`}, nil},
		{"metrics", "GET", "/metrics", "", 200, []string{"heartwood_test_total 0"}, nil},
		{"containers hide env", "GET", "/v1/containers", "", 200, []string{`"web"`, `"service": "web-80"`}, []string{"hunter2", "DB_PASSWORD"}},
		{"one container", "GET", "/v1/containers/web", "", 200, []string{`"abc123"`}, []string{"hunter2"}},
		{"unknown container", "GET", "/v1/containers/nope", "", 404, []string{"no container nope"}, nil},
		{"pause without token", "POST", "/v1/containers/web/pause", "", 401, []string{"bearer token"}, nil},
		{"pause with wrong token", "POST", "/v1/containers/web/pause", "Bearer nope", 401, nil, nil},
		{"pause with token", "POST", "/v1/containers/web/pause?reason=maintenance", "Bearer s3cret", 200, []string{`"paused"`}, nil},
		{"wake with token", "POST", "/v1/containers/abc123/wake", "Bearer s3cret", 200, []string{`"woken"`}, nil},
		{"wake of a container the watchman lost", "POST", "/v1/containers/gone/wake", "Bearer s3cret", 404, nil, nil},
		{"GET on a mutating endpoint", "GET", "/v1/containers/web/pause", "", 405, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tc.wantCode {
				t.Fatalf("%s %s = %d, want %d\n%s", tc.method, tc.path, rec.Code, tc.wantCode, body)
			}
			for _, w := range tc.wantBody {
				if !strings.Contains(string(body), w) {
					t.Errorf("body lacks %q:\n%s", w, body)
				}
			}
			for _, n := range tc.notBody {
				if strings.Contains(string(body), n) {
					t.Errorf("body exposes %q:\n%s", n, body)
				}
			}
		})
	}
	if got, want := strings.Join(ctl.calls, "; "), "pause abc123 maintenance; wake abc123 api"; got != want {
		t.Errorf("controller calls = %q, want %q", got, want)
	}
}

func TestReadyzReportsEveryProblem(t *testing.T) {
	h := Handler(Options{
		Inventory: &fakeInventory{},
		Checks:    map[string]Check{"registrar": func() error { return errors.New("consul unreachable") }},
		Gatherer:  prometheus.NewRegistry(),
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d, want 503", rec.Code)
	}
	for _, w := range []string{"connection refused", "consul unreachable"} {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("readyz body lacks %q: %s", w, rec.Body)
		}
	}
}

func TestControlWithoutWatchman(t *testing.T) {
	h := Handler(Options{Inventory: &fakeInventory{connected: true, containers: []*inventory.Container{{ID: "x", Name: "x"}}}, Gatherer: prometheus.NewRegistry()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/containers/x/wake", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d, want 503", rec.Code)
	}
}
