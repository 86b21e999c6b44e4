// Package supervisor runs the agent's long-lived units (the inventory, the
// registrar, the shipper, the watchman, the HTTP server), restarts a unit
// that fails with exponential backoff instead of bringing the agent down,
// and reports each unit's state for health checks and metrics.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/internal/metricset"
	"github.com/prometheus/client_golang/prometheus"
)

// Unit is one supervised piece of the agent. Run blocks until ctx ends
// (returning nil or ctx's error) or the unit fails (returning the error).
type Unit interface {
	Run(ctx context.Context) error
}

// UnitFunc adapts a function to Unit.
type UnitFunc func(ctx context.Context) error

// Run calls f.
func (f UnitFunc) Run(ctx context.Context) error { return f(ctx) }

// State is a unit's last known state.
type State struct {
	Name     string    `json:"name"`
	Running  bool      `json:"running"`
	Restarts int       `json:"restarts"`
	LastErr  string    `json:"last_error,omitempty"`
	Since    time.Time `json:"since"`
}

// Options tune the supervisor.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// MinBackoff and MaxBackoff bound the wait before a failed unit is
	// restarted; a unit that ran for a minute starts over at MinBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// Supervisor runs units until its context ends.
type Supervisor struct {
	opts  Options
	log   *slog.Logger
	units []named

	mu     sync.Mutex
	states map[string]*State

	restarts *prometheus.CounterVec
	up       *prometheus.GaugeVec
}

type named struct {
	name string
	unit Unit
}

// New returns an empty supervisor.
func New(opts Options) *Supervisor {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	set := metricset.New("heartwood_subsystem_")
	s := &Supervisor{
		opts:     opts,
		log:      opts.Logger,
		states:   make(map[string]*State),
		restarts: set.CounterVec("restarts_total", "Times a failed subsystem was restarted.", "subsystem"),
		up:       set.GaugeVec("up", "1 while the subsystem runs, 0 while it waits to be restarted.", "subsystem"),
	}
	set.MustRegister(opts.Registerer)
	return s
}

// Add registers a unit under a unique name. Call it before Run.
func (s *Supervisor) Add(name string, u Unit) {
	s.units = append(s.units, named{name, u})
	s.mu.Lock()
	s.states[name] = &State{Name: name}
	s.mu.Unlock()
	s.restarts.WithLabelValues(name)
	s.up.WithLabelValues(name)
}

// Run starts every unit and blocks until ctx ends and all units returned.
func (s *Supervisor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range s.units {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.keep(ctx, n)
		}()
	}
	wg.Wait()
}

// keep runs one unit, restarting it after failures, until ctx ends.
func (s *Supervisor) keep(ctx context.Context, n named) {
	retry := backoff.New(s.opts.MinBackoff, s.opts.MaxBackoff)
	for {
		started := time.Now()
		s.update(n.name, func(st *State) { st.Running, st.Since = true, started })
		s.up.WithLabelValues(n.name).Set(1)
		err := runUnit(ctx, n.unit)
		s.up.WithLabelValues(n.name).Set(0)
		if ctx.Err() != nil {
			s.update(n.name, func(st *State) { st.Running, st.Since = false, time.Now() })
			if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warn("subsystem stopped with an error", "subsystem", n.name, "err", err)
			}
			return
		}
		if err == nil {
			err = errors.New("returned before shutdown")
		}
		if time.Since(started) > time.Minute {
			retry.Reset()
		}
		wait := retry.Next()
		s.update(n.name, func(st *State) {
			st.Running, st.Since, st.LastErr = false, time.Now(), err.Error()
			st.Restarts++
		})
		s.restarts.WithLabelValues(n.name).Inc()
		s.log.Error("subsystem failed; restarting", "subsystem", n.name, "err", err, "retry_in", wait.Round(time.Millisecond))
		if backoff.Sleep(ctx, wait) != nil {
			return
		}
	}
}

// runUnit runs u and turns a panic into an error, so one unit's bug is a
// restart, not the end of the agent.
func runUnit(ctx context.Context, u Unit) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return u.Run(ctx)
}

func (s *Supervisor) update(name string, f func(*State)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.states[name])
}

// States returns every unit's state, sorted by name.
func (s *Supervisor) States() []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]State, 0, len(s.states))
	for _, st := range s.states {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
