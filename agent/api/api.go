// Package api serves the agent's HTTP API: health and readiness probes,
// Prometheus metrics, the container inventory with each subsystem's view of
// every container, and the pause/wake controls.
//
// Read endpoints never expose secrets (container environments are left out).
// When the API listens beyond loopback, every mutating endpoint requires the
// configured bearer token, compared in constant time.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Inventory is what the API reads of the container inventory.
type Inventory interface {
	List() []*inventory.Container
	Lookup(ref string) (*inventory.Container, bool)
	Connected() (bool, error)
}

// Describer gives one subsystem's view of a container.
type Describer interface {
	DescribeContainer(id string) any
}

// Controller pauses and wakes containers (the watchman).
type Controller interface {
	Pause(ctx context.Context, id, reason string) error
	Wake(ctx context.Context, id, trigger string) error
}

// ErrNotFound is returned by a Controller for a container it does not know;
// the API answers 404.
var ErrNotFound = errors.New("container not found")

// Check reports whether one part of the agent is ready; nil means ready.
type Check func() error

// Options configure the API handler.
type Options struct {
	Inventory Inventory
	// Describers are the subsystems' views, by subsystem name.
	Describers map[string]Describer
	// Controller may be nil when the watchman is disabled.
	Controller Controller
	// Checks decide /readyz, by name.
	Checks map[string]Check
	// Status is served at /v1/status.
	Status func() any
	// Gatherer is served at /metrics.
	Gatherer prometheus.Gatherer
	// Token returns the bearer token mutating requests need; "" disables
	// the check, which the agent allows only on loopback.
	Token  func() string
	Logger *slog.Logger
}

// Handler returns the API's HTTP handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{opts: opts}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slogErrorLog{opts.Logger}}))
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/containers", s.containers)
	mux.HandleFunc("GET /v1/containers/{id}", s.container)
	mux.HandleFunc("POST /v1/containers/{id}/pause", s.authorized(s.control(true)))
	mux.HandleFunc("POST /v1/containers/{id}/wake", s.authorized(s.control(false)))
	return mux
}

type server struct{ opts Options }

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	problems := map[string]string{}
	if ok, err := s.opts.Inventory.Connected(); !ok {
		msg := "not connected"
		if err != nil {
			msg = err.Error()
		}
		problems["docker"] = msg
	}
	for name, check := range s.opts.Checks {
		if err := check(); err != nil {
			problems[name] = err.Error()
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "problems": problems})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *server) status(w http.ResponseWriter, _ *http.Request) {
	var st any = map[string]string{}
	if s.opts.Status != nil {
		st = s.opts.Status()
	}
	writeJSON(w, http.StatusOK, st)
}

// ContainerView is one entry of GET /v1/containers.
type ContainerView struct {
	*inventory.Container
	// Subsystems holds each enabled subsystem's view, by name.
	Subsystems map[string]any `json:"subsystems,omitempty"`
}

func (s *server) view(c *inventory.Container) ContainerView {
	v := ContainerView{Container: c}
	if len(s.opts.Describers) > 0 {
		v.Subsystems = make(map[string]any, len(s.opts.Describers))
		names := make([]string, 0, len(s.opts.Describers))
		for n := range s.opts.Describers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			if d := s.opts.Describers[n].DescribeContainer(c.ID); d != nil {
				v.Subsystems[n] = d
			}
		}
	}
	return v
}

func (s *server) containers(w http.ResponseWriter, _ *http.Request) {
	list := s.opts.Inventory.List()
	out := make([]ContainerView, 0, len(list))
	for _, c := range list {
		out = append(out, s.view(c))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) container(w http.ResponseWriter, r *http.Request) {
	c, ok := s.opts.Inventory.Lookup(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "no container "+r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, s.view(c))
}

func (s *server) control(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Controller == nil {
			writeError(w, http.StatusServiceUnavailable, "the watchman is disabled on this node")
			return
		}
		c, ok := s.opts.Inventory.Lookup(r.PathValue("id"))
		if !ok {
			writeError(w, http.StatusNotFound, "no container "+r.PathValue("id"))
			return
		}
		reason := r.URL.Query().Get("reason")
		if reason == "" {
			reason = "api"
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
		defer cancel()
		var err error
		if pause {
			err = s.opts.Controller.Pause(ctx, c.ID, reason)
		} else {
			err = s.opts.Controller.Wake(ctx, c.ID, reason)
		}
		switch {
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, err.Error())
		case err != nil:
			s.opts.Logger.Warn("api control failed", "container", c.Name, "pause", pause, "err", err)
			writeError(w, http.StatusConflict, err.Error())
		default:
			action := "woken"
			if pause {
				action = "paused"
			}
			writeJSON(w, http.StatusOK, map[string]string{"id": c.ID, "name": c.Name, "result": action})
		}
	}
}

// authorized requires the bearer token when one is configured.
func (s *server) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != nil {
			if want := s.opts.Token(); want != "" {
				got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
					w.Header().Set("WWW-Authenticate", `Bearer realm="heartwood"`)
					writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
					return
				}
			}
		}
		next(w, r)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing left to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// slogErrorLog adapts slog to promhttp's error logger.
type slogErrorLog struct{ l *slog.Logger }

func (e slogErrorLog) Println(v ...any) { e.l.Warn("metrics", "err", v) }
