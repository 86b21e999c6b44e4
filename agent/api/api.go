// Package api serves the agent's HTTP API: health and readiness probes,
// Prometheus metrics, the container inventory with each subsystem's view of
// every container, and the pause/wake controls.
//
// Read endpoints return an explicit view of each container that never holds
// its environment, health-check command, log options or labels the agent does
// not act on. Mutating calls need a marker header (or a JSON content type) and
// a same-origin request, so that a web page cannot send them; when a token is
// configured they need it as a bearer token, compared in constant time. When
// the API listens beyond loopback, reads other than /healthz and /readyz need
// the token too. On loopback, requests must name a loopback host, which
// defeats DNS rebinding.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	// Imported for its handlers, which are mounted on the API's own mux
	// only when Options.Pprof is set; the package also registers them on
	// http.DefaultServeMux, which the agent never serves.
	"net/http/pprof"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Inventory is what the API reads of the container inventory.
type Inventory interface {
	List() []*inventory.Container
	Connected() (bool, error)
}

// Describer gives one subsystem's view of a container.
type Describer interface {
	DescribeContainer(id string) any
}

// Controller pauses and wakes containers (the watchman). Errors that wrap
// inventory.ErrNotFound make the API answer 404. force asks to wake a
// container that the watchman did not pause itself.
type Controller interface {
	Pause(ctx context.Context, id, reason string) error
	Wake(ctx context.Context, id, reason string, force bool) error
}

// Check reports whether one part of the agent is ready; nil means ready.
type Check func() error

// RequestHeader is the header every mutating call must carry (or a JSON
// content type instead): a browser cannot add it to a cross-site request
// without a CORS preflight, which the API never grants.
const RequestHeader = "X-Heartwood-Request"

// DefaultMaxScrapes is how many /metrics requests are served at once unless
// Options.MaxScrapes says otherwise.
const DefaultMaxScrapes = 2

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
	// Token returns the bearer token that protected requests need. ("",
	// nil) means no token is configured, which only a loopback API allows;
	// an error means one is configured but unusable, and protected
	// requests are refused with 503 until it is fixed.
	Token func() (string, error)
	// Exposed is set when the API listens beyond loopback: reads other
	// than /healthz and /readyz need the token as well, and the Host
	// header is not restricted to loopback names.
	Exposed bool
	// OpenMetrics serves /metrics without the token even when Exposed.
	OpenMetrics bool
	// Pprof serves Go's runtime profiles under /debug/pprof/. They always
	// need the bearer token when one is configured, on loopback too: a
	// CPU profile costs CPU and shows the agent's internals.
	Pprof bool
	// MaxScrapes caps concurrent /metrics requests; 0 means
	// DefaultMaxScrapes. Requests beyond it get 503.
	MaxScrapes int
	Logger     *slog.Logger
}

// Handler returns the API's HTTP handler.
func Handler(opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxScrapes <= 0 {
		opts.MaxScrapes = DefaultMaxScrapes
	}
	s := &server{opts: opts}
	read := s.authorized
	if !opts.Exposed {
		read = func(h http.HandlerFunc) http.HandlerFunc { return h }
	}
	metrics := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
		ErrorLog:            slogErrorLog{opts.Logger},
		MaxRequestsInFlight: opts.MaxScrapes,
		Timeout:             30 * time.Second,
	})
	metricsRead := read
	if opts.OpenMetrics {
		metricsRead = func(h http.HandlerFunc) http.HandlerFunc { return h }
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.HandleFunc("GET /metrics", metricsRead(metrics.ServeHTTP))
	mux.HandleFunc("GET /v1/status", read(s.status))
	mux.HandleFunc("GET /v1/containers", read(s.containers))
	mux.HandleFunc("GET /v1/containers/{id}", read(s.container))
	mux.HandleFunc("POST /v1/containers/{id}/pause", s.mutating(s.authorized(s.control(true))))
	mux.HandleFunc("POST /v1/containers/{id}/wake", s.mutating(s.authorized(s.control(false))))
	if opts.Pprof {
		mux.HandleFunc("GET /debug/pprof/", s.authorized(pprof.Index))
		mux.HandleFunc("GET /debug/pprof/cmdline", s.authorized(pprof.Cmdline))
		mux.HandleFunc("GET /debug/pprof/profile", s.authorized(pprof.Profile))
		mux.HandleFunc("GET /debug/pprof/symbol", s.authorized(pprof.Symbol))
		mux.HandleFunc("GET /debug/pprof/trace", s.authorized(pprof.Trace))
	}
	if opts.Exposed {
		return mux
	}
	return s.loopbackHost(mux)
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
			// The problem is listed under the name: say it once.
			problems[name] = strings.TrimPrefix(err.Error(), name+": ")
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

func (s *server) view(c *inventory.Container) ContainerView {
	v := newContainerView(c)
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

// find resolves the request's {id} by the inventory's reference rules, or
// answers the request itself and returns nil.
func (s *server) find(w http.ResponseWriter, r *http.Request) *inventory.Container {
	ref := r.PathValue("id")
	c, err := inventory.Find(s.opts.Inventory.List(), func(c *inventory.Container) *inventory.Container { return c }, ref)
	switch {
	case errors.Is(err, inventory.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error()+": "+ref)
		return nil
	case errors.Is(err, inventory.ErrAmbiguous):
		writeError(w, http.StatusConflict, err.Error()+": "+ref+" matches several containers; give more of the ID or the name")
		return nil
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return nil
	}
	return c
}

func (s *server) container(w http.ResponseWriter, r *http.Request) {
	if c := s.find(w, r); c != nil {
		writeJSON(w, http.StatusOK, s.view(c))
	}
}

func (s *server) control(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Controller == nil {
			writeError(w, http.StatusServiceUnavailable, "the watchman is disabled on this node")
			return
		}
		force := false
		if v := r.URL.Query().Get("force"); v != "" {
			f, err := strconv.ParseBool(v)
			if err != nil || pause {
				writeError(w, http.StatusBadRequest, "force: want true or false, and only on wake")
				return
			}
			force = f
		}
		c := s.find(w, r)
		if c == nil {
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
			err = s.opts.Controller.Wake(ctx, c.ID, reason, force)
		}
		switch {
		case errors.Is(err, inventory.ErrNotFound):
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

// authorized requires the bearer token when one is configured, and refuses
// the request when the configured token is unusable or, on an exposed API,
// missing.
func (s *server) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var want string
		var err error
		if s.opts.Token != nil {
			want, err = s.opts.Token()
		}
		if err == nil && want == "" && s.opts.Exposed {
			err = errors.New("no API token is configured")
		}
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "the API token is unusable, so protected calls are refused: "+err.Error())
			return
		}
		if want != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="heartwood"`)
				writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
				return
			}
		}
		next(w, r)
	}
}

// mutating refuses requests a web page could have sent: without the marker
// header or a JSON content type (a browser sends neither cross-site without
// a preflight), or from a foreign Origin.
func (s *server) mutating(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if r.Header.Get(RequestHeader) == "" && mt != "application/json" {
			writeError(w, http.StatusForbidden, "mutating calls need the "+RequestHeader+" header or a JSON content type")
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" {
			u, err := url.Parse(origin)
			if err != nil || u.Host == "" || !strings.EqualFold(u.Host, r.Host) {
				writeError(w, http.StatusForbidden, "cross-origin calls are refused")
				return
			}
		}
		next(w, r)
	}
}

// loopbackHost refuses requests whose Host is not a loopback name, so that
// a DNS name rebound to 127.0.0.1 cannot reach a loopback API from a browser.
func (s *server) loopbackHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !IsLoopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "this API answers only to loopback host names")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// IsLoopbackHost reports whether host (with or without a port) is
// localhost or a loopback IP address. An empty host (HTTP/1.0) counts.
func IsLoopbackHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
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
