// Package metricset declares a component's Prometheus collectors in one list
// and registers them together, so that a metric cannot be declared and then
// forgotten at registration.
package metricset

import "github.com/prometheus/client_golang/prometheus"

// Set makes collectors whose names share a prefix and remembers them for
// Register. The zero value is not usable; call New.
type Set struct {
	prefix     string
	collectors []prometheus.Collector
}

// New returns an empty set whose metric names start with prefix, for example
// "heartwood_shipper_" (the prefix is used as is: end it with an underscore).
func New(prefix string) *Set {
	return &Set{prefix: prefix}
}

// Counter declares a counter.
func (s *Set) Counter(name, help string) prometheus.Counter {
	return add(s, prometheus.NewCounter(prometheus.CounterOpts{Name: s.prefix + name, Help: help}))
}

// CounterVec declares a counter with labels.
func (s *Set) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return add(s, prometheus.NewCounterVec(prometheus.CounterOpts{Name: s.prefix + name, Help: help}, labels))
}

// Gauge declares a gauge.
func (s *Set) Gauge(name, help string) prometheus.Gauge {
	return add(s, prometheus.NewGauge(prometheus.GaugeOpts{Name: s.prefix + name, Help: help}))
}

// GaugeVec declares a gauge with labels.
func (s *Set) GaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return add(s, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: s.prefix + name, Help: help}, labels))
}

// Histogram declares a histogram with the given bucket upper bounds.
func (s *Set) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	return add(s, prometheus.NewHistogram(prometheus.HistogramOpts{Name: s.prefix + name, Help: help, Buckets: buckets}))
}

// HistogramVec declares a histogram with labels.
func (s *Set) HistogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return add(s, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: s.prefix + name, Help: help, Buckets: buckets}, labels))
}

// Add puts a collector made elsewhere (for example one that reads state at
// scrape time) into the set.
func (s *Set) Add(c prometheus.Collector) {
	s.collectors = append(s.collectors, c)
}

// Register registers the set's collectors with reg in the order they were
// declared and returns the first error. A nil reg registers nothing, for
// components built without metrics exposition (tests, tools).
func (s *Set) Register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range s.collectors {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// MustRegister is Register for collectors whose registration can only fail by
// a programming error (a name used twice); it panics on an error.
func (s *Set) MustRegister(reg prometheus.Registerer) {
	if err := s.Register(reg); err != nil {
		panic(err)
	}
}

func add[C prometheus.Collector](s *Set, c C) C {
	s.collectors = append(s.collectors, c)
	return c
}
