package promvalue

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSumMax(t *testing.T) {
	cv := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"l"})
	gv := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g"}, []string{"l"})
	cv.WithLabelValues("a").Add(2)
	cv.WithLabelValues("b").Add(3)
	gv.WithLabelValues("a").Set(-4)
	gv.WithLabelValues("b").Set(-1.5)
	hist := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h"})
	hist.Observe(7)
	for _, tc := range []struct {
		name     string
		c        prometheus.Collector
		sum, max float64
	}{
		{"counter vector", cv, 5, 3},
		{"negative gauges", gv, -5.5, -1.5},
		{"empty vector", prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "e"}, []string{"l"}), 0, 0},
		{"histogram is not a value", hist, 0, 0},
	} {
		if got := Sum(tc.c); got != tc.sum {
			t.Errorf("%s: Sum = %v, want %v", tc.name, got, tc.sum)
		}
		if got := Max(tc.c); got != tc.max {
			t.Errorf("%s: Max = %v, want %v", tc.name, got, tc.max)
		}
	}
}
