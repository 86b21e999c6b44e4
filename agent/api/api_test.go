package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeInventory struct {
	containers []*inventory.Container
	connected  bool
}

func (f *fakeInventory) List() []*inventory.Container { return f.containers }
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
func (f *fakeController) Wake(_ context.Context, id, trigger string, force bool) error {
	if id == "gone" {
		return fmt.Errorf("watchman: %w", inventory.ErrNotFound)
	}
	f.calls = append(f.calls, fmt.Sprintf("wake %s %s force=%t", id, trigger, force))
	return nil
}

// newRequest is a request as the CLI sends it to a loopback API.
func newRequest(method, path string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	req.Host = "127.0.0.1:9321"
	if method == http.MethodPost {
		req.Header.Set(RequestHeader, "1")
	}
	return req
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
		Token:      func() (string, error) { return "s3cret", nil },
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
		{"unknown container", "GET", "/v1/containers/nope", "", 404, []string{"no such container: nope"}, nil},
		{"pause without token", "POST", "/v1/containers/web/pause", "", 401, []string{"bearer token"}, nil},
		{"pause with wrong token", "POST", "/v1/containers/web/pause", "Bearer nope", 401, nil, nil},
		{"pause with token", "POST", "/v1/containers/web/pause?reason=maintenance", "Bearer s3cret", 200, []string{`"paused"`}, nil},
		{"wake with token", "POST", "/v1/containers/abc123/wake", "Bearer s3cret", 200, []string{`"woken"`}, nil},
		{"forced wake", "POST", "/v1/containers/abc1/wake?force=true&reason=ops", "Bearer s3cret", 200, []string{`"woken"`}, nil},
		{"force on pause", "POST", "/v1/containers/web/pause?force=true", "Bearer s3cret", 400, nil, nil},
		{"wake of a container the watchman lost", "POST", "/v1/containers/gone/wake", "Bearer s3cret", 404, nil, nil},
		{"GET on a mutating endpoint", "GET", "/v1/containers/web/pause", "", 405, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req := newRequest(tc.method, tc.path)
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
	if got, want := strings.Join(ctl.calls, "; "), "pause abc123 maintenance; wake abc123 api force=false; wake abc123 ops force=true"; got != want {
		t.Errorf("controller calls = %q, want %q", got, want)
	}
}

func TestReadyzReportsEveryProblem(t *testing.T) {
	h := Handler(Options{
		Inventory: &fakeInventory{},
		Checks:    map[string]Check{"registrar": func() error { return errors.New("registrar: consul unreachable") }},
		Gatherer:  prometheus.NewRegistry(),
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("GET", "/readyz"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d, want 503", rec.Code)
	}
	for _, w := range []string{"connection refused", `"registrar": "consul unreachable"`} {
		if !strings.Contains(rec.Body.String(), w) {
			t.Errorf("readyz body lacks %q: %s", w, rec.Body)
		}
	}
}

func TestControlWithoutWatchman(t *testing.T) {
	h := Handler(Options{Inventory: &fakeInventory{connected: true, containers: []*inventory.Container{{ID: "x", Name: "x"}}}, Gatherer: prometheus.NewRegistry()})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("POST", "/v1/containers/x/wake"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("code = %d, want 503", rec.Code)
	}
}

// secretContainer carries a secret in every place a container owner or the
// Docker daemon can put one that is not the environment.
func secretContainer() *inventory.Container {
	return &inventory.Container{
		ID: "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7", Name: "secretive",
		Env: []string{"DB_PASSWORD=env-secret-1"},
		Labels: map[string]string{
			"SERVICE_NAME":          "web",
			"SERVICE_CHECKS":        `[{"id":"ready","http":"/ready","interval":"5s","header":{"Authorization":["Bearer label-secret-2"]}}]`,
			"SERVICE_CHECK_SCRIPT":  "curl -u admin:label-secret-3 http://localhost/",
			"SERVICE_CHECK_HTTP":    "http://probe:label-secret-4@localhost/health",
			"SERVICE_80_CHECK_CMD":  "check --password label-secret-5",
			"heartwood.logs.enable": "true",
			"com.example.db-url":    "postgres://u:label-secret-6@db/x",
		},
		Healthcheck: &inventory.Healthcheck{Test: []string{"CMD-SHELL", "curl -u user:hc-secret-7 http://localhost/"}},
		LogDriver:   "splunk",
		LogConfig:   map[string]string{"splunk-token": "log-secret-8"},
	}
}

func TestReadEndpointsHideSecrets(t *testing.T) {
	c := secretContainer()
	inv := &fakeInventory{connected: true, containers: []*inventory.Container{c}}
	h := Handler(Options{Inventory: inv, Gatherer: prometheus.NewRegistry()})
	for _, path := range []string{"/v1/containers", "/v1/containers/secretive", "/v1/containers/" + c.ID} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest("GET", path))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s = %d\n%s", path, rec.Code, rec.Body)
		}
		body := rec.Body.String()
		for _, secret := range []string{"env-secret-1", "label-secret-2", "label-secret-3", "label-secret-4", "label-secret-5", "label-secret-6", "hc-secret-7", "log-secret-8", "splunk-token"} {
			if strings.Contains(body, secret) {
				t.Errorf("GET %s exposes %q:\n%s", path, secret, body)
			}
		}
		for _, keep := range []string{`"SERVICE_NAME": "web"`, `"heartwood.logs.enable": "true"`, `"SERVICE_CHECKS"`, `Authorization`, `"healthcheck": true`, `"log_driver": "splunk"`} {
			if !strings.Contains(body, keep) {
				t.Errorf("GET %s lacks %s:\n%s", path, keep, body)
			}
		}
	}
}

func TestMutatingCallsRejectCrossSiteRequests(t *testing.T) {
	inv := &fakeInventory{connected: true, containers: []*inventory.Container{{ID: "abc123", Name: "web"}}}
	h := Handler(Options{Inventory: inv, Controller: &fakeController{}, Gatherer: prometheus.NewRegistry()})
	tests := []struct {
		desc    string
		host    string
		headers map[string]string
		want    int
	}{
		{"plain form post from a web page", "127.0.0.1:9321", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, http.StatusForbidden},
		{"no marker at all", "127.0.0.1:9321", nil, http.StatusForbidden},
		{"foreign origin with the marker", "127.0.0.1:9321", map[string]string{"X-Heartwood-Request": "1", "Origin": "http://evil.example"}, http.StatusForbidden},
		{"rebound host name", "evil.example:9321", map[string]string{"X-Heartwood-Request": "1"}, http.StatusForbidden},
		{"CLI marker", "127.0.0.1:9321", map[string]string{"X-Heartwood-Request": "1"}, http.StatusOK},
		{"JSON body", "localhost:9321", map[string]string{"Content-Type": "application/json"}, http.StatusOK},
		{"same origin", "127.0.0.1:9321", map[string]string{"X-Heartwood-Request": "1", "Origin": "http://127.0.0.1:9321"}, http.StatusOK},
		{"IPv6 loopback", "[::1]:9321", map[string]string{"X-Heartwood-Request": "1"}, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/v1/containers/web/pause", nil)
			req.Host = tc.host
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("POST = %d, want %d\n%s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestUnknownAndAmbiguousContainers(t *testing.T) {
	inv := &fakeInventory{connected: true, containers: []*inventory.Container{
		{ID: "abcd1111", Name: "one"}, {ID: "abcd2222", Name: "two"},
	}}
	h := Handler(Options{Inventory: inv, Controller: &fakeController{}, Gatherer: prometheus.NewRegistry()})
	tests := []struct {
		method, path string
		want         int
		body         string
	}{
		{"GET", "/v1/containers/nope", 404, "no such container"},
		{"GET", "/v1/containers/abcd", 409, "ambiguous"},
		{"POST", "/v1/containers/nope/wake", 404, "no such container"},
		{"POST", "/v1/containers/abcd/wake", 409, "ambiguous"},
		{"POST", "/v1/containers/abcd1/wake", 200, "woken"},
	}
	for _, tc := range tests {
		req := newRequest(tc.method, tc.path)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("%s %s = %d %s, want %d with %q", tc.method, tc.path, rec.Code, rec.Body, tc.want, tc.body)
		}
	}
}

func TestExposedAPIProtectsReads(t *testing.T) {
	inv := &fakeInventory{connected: true, containers: []*inventory.Container{{ID: "abc123", Name: "web"}}}
	token := func() (string, error) { return "0123456789abcdef", nil }
	tests := []struct {
		desc        string
		openMetrics bool
		path, auth  string
		want        int
	}{
		{"health needs no token", false, "/healthz", "", 200},
		{"readiness needs no token", false, "/readyz", "", 200},
		{"containers need the token", false, "/v1/containers", "", 401},
		{"one container needs the token", false, "/v1/containers/web", "", 401},
		{"status needs the token", false, "/v1/status", "", 401},
		{"metrics need the token", false, "/metrics", "", 401},
		{"containers with the token", false, "/v1/containers", "Bearer 0123456789abcdef", 200},
		{"metrics opened for scrapers", true, "/metrics", "", 200},
		{"opening metrics opens nothing else", true, "/v1/containers", "", 401},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h := Handler(Options{Inventory: inv, Gatherer: prometheus.NewRegistry(), Token: token, Exposed: true, OpenMetrics: tc.openMetrics})
			req := httptest.NewRequest("GET", tc.path, nil)
			req.Host = "10.0.0.5:9321" // an exposed API answers to any host name
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("GET %s = %d, want %d\n%s", tc.path, rec.Code, tc.want, rec.Body)
			}
		})
	}
}

func TestUnusableTokenFailsClosed(t *testing.T) {
	inv := &fakeInventory{connected: true, containers: []*inventory.Container{{ID: "abc123", Name: "web"}}}
	ctl := &fakeController{}
	for _, exposed := range []bool{false, true} {
		h := Handler(Options{Inventory: inv, Controller: ctl, Gatherer: prometheus.NewRegistry(), Exposed: exposed,
			Token: func() (string, error) { return "", errors.New("api-token-file /run/token is empty") }})
		for _, auth := range []string{"", "Bearer ", "Bearer x"} {
			req := newRequest("POST", "/v1/containers/web/pause")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "is empty") {
				t.Errorf("exposed=%t auth=%q: pause = %d %s, want 503 naming the problem", exposed, auth, rec.Code, rec.Body)
			}
		}
	}
	// An exposed API without any token refuses too.
	h := Handler(Options{Inventory: inv, Controller: ctl, Gatherer: prometheus.NewRegistry(), Exposed: true})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("POST", "/v1/containers/web/pause"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("exposed API without a token: pause = %d, want 503", rec.Code)
	}
	if len(ctl.calls) != 0 {
		t.Errorf("controller was called: %q", ctl.calls)
	}
}

// blockingGatherer holds every scrape until release is closed.
type blockingGatherer struct {
	entered chan struct{}
	release chan struct{}
}

func (g blockingGatherer) Gather() ([]*dto.MetricFamily, error) {
	g.entered <- struct{}{}
	<-g.release
	return nil, nil
}

func TestConcurrentScrapesAreCapped(t *testing.T) {
	g := blockingGatherer{entered: make(chan struct{}, 4), release: make(chan struct{})}
	h := Handler(Options{Inventory: &fakeInventory{connected: true}, Gatherer: g, MaxScrapes: 1})
	first := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newRequest("GET", "/metrics"))
		first <- rec.Code
	}()
	<-g.entered
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, newRequest("GET", "/metrics"))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("second concurrent scrape = %d, want 503", rec.Code)
	}
	close(g.release)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first scrape = %d, want 200", code)
	}
}

func TestPublicLabels(t *testing.T) {
	tests := []struct {
		key, value, want string
	}{
		{"SERVICE_NAME", "web", "web"},
		{"SERVICE_80_NAME", "web", "web"},
		{"heartwood.watchman.enable", "true", "true"},
		{"SERVICE_CHECK_SCRIPT", "pg_isready -p secret", Redacted},
		{"SERVICE_8080_CHECK_CMD", "x --pass y", Redacted},
		{"SERVICE_CHECK_HTTP", "/health", "/health"},
		{"SERVICE_CHECK_HTTP", "https://u:p@host/h", "https://redacted@host/h"},
		{"SERVICE_CHECKS", `{"http":"/h","header":{"X-Key":["k"]},"args":["sh","-c","x"]}`, `{"args":"[redacted]","header":{"X-Key":["[redacted]"]},"http":"/h"}`},
		{"SERVICE_CHECKS", `[{"id":"a","http":"http://u:p@h/x"}]`, `[{"http":"http://redacted@h/x","id":"a"}]`},
		{"SERVICE_CHECKS", `not json`, Redacted},
		{"SERVICE_CHECK_HEADER", "Authorization: x", Redacted},
	}
	for _, tc := range tests {
		got := PublicLabels(map[string]string{tc.key: tc.value, "other": "dropped"})
		if len(got) != 1 || got[tc.key] != tc.want {
			t.Errorf("PublicLabels(%s=%q) = %q, want only %q", tc.key, tc.value, got, tc.want)
		}
	}
	if got := PublicLabels(map[string]string{"com.example.x": "y"}); got != nil {
		t.Errorf("labels outside the allowlist kept: %v", got)
	}
}

func TestPprof(t *testing.T) {
	inv := &fakeInventory{connected: true}
	token := func() (string, error) { return "0123456789abcdef", nil }
	const bearer = "Bearer 0123456789abcdef"
	tests := []struct {
		desc    string
		pprof   bool
		exposed bool
		token   func() (string, error)
		host    string
		auth    string
		want    int
	}{
		{desc: "off by default", host: "127.0.0.1:9321", want: 404},
		{desc: "loopback without a token configured", pprof: true, host: "127.0.0.1:9321", want: 200},
		{desc: "loopback refuses a foreign host name", pprof: true, host: "attacker.example:9321", want: 403},
		{desc: "loopback with a token needs it", pprof: true, token: token, host: "127.0.0.1:9321", want: 401},
		{desc: "loopback with the token", pprof: true, token: token, host: "127.0.0.1:9321", auth: bearer, want: 200},
		{desc: "exposed needs the token", pprof: true, exposed: true, token: token, host: "10.0.0.5:9321", want: 401},
		{desc: "exposed with the token", pprof: true, exposed: true, token: token, host: "10.0.0.5:9321", auth: bearer, want: 200},
		{desc: "exposed without any token configured", pprof: true, exposed: true, host: "10.0.0.5:9321", want: 503},
		{desc: "exposed and off", exposed: true, token: token, host: "10.0.0.5:9321", auth: bearer, want: 404},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			h := Handler(Options{Inventory: inv, Gatherer: prometheus.NewRegistry(), Token: tc.token, Exposed: tc.exposed, Pprof: tc.pprof})
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/heap?debug=1"} {
				req := httptest.NewRequest("GET", path, nil)
				req.Host = tc.host
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != tc.want {
					t.Fatalf("GET %s = %d, want %d\n%s", path, rec.Code, tc.want, rec.Body)
				}
			}
		})
	}
}
