// Package promvalue reads the current value of a subsystem's own
// Prometheus collectors, so that a figure counted once for /metrics can be
// reported elsewhere (the agent's health documents) without a second
// count.
package promvalue

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// values calls f with the value of every counter, gauge or untyped series
// c collects now.
func values(c prometheus.Collector, f func(float64)) {
	ch := make(chan prometheus.Metric, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Collect(ch)
		close(ch)
	}()
	for m := range ch {
		var d dto.Metric
		if m.Write(&d) != nil {
			continue
		}
		switch {
		case d.Counter != nil:
			f(d.Counter.GetValue())
		case d.Gauge != nil:
			f(d.Gauge.GetValue())
		case d.Untyped != nil:
			f(d.Untyped.GetValue())
		}
	}
	<-done
}

// Sum returns the sum of c's series (0 when it has none).
func Sum(c prometheus.Collector) float64 {
	var s float64
	values(c, func(v float64) { s += v })
	return s
}

// Max returns the largest of c's series (0 when it has none).
func Max(c prometheus.Collector) float64 {
	var out float64
	first := true
	values(c, func(v float64) {
		if first || v > out {
			out, first = v, false
		}
	})
	return out
}
