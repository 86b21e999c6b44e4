package metricset

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestSetDeclaresAndRegisters(t *testing.T) {
	set := New("heartwood_test_")
	c := set.Counter("things_total", "Things.")
	cv := set.CounterVec("errors_total", "Errors, by kind.", "kind")
	g := set.Gauge("queue", "Queued things.")
	gv := set.GaugeVec("lag_seconds", "Lag, per container.", "container")
	h := set.Histogram("duration_seconds", "Durations.", []float64{1, 2})
	hv := set.HistogramVec("op_duration_seconds", "Durations, by op.", []float64{1}, "op")
	extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "heartwood_test_extra", Help: "Made elsewhere."})
	set.Add(extra)

	c.Inc()
	cv.WithLabelValues("read").Add(2)
	g.Set(3)
	gv.WithLabelValues("web").Set(4)
	h.Observe(1.5)
	hv.WithLabelValues("write").Observe(0.5)
	extra.Set(5)

	reg := prometheus.NewPedanticRegistry()
	if err := set.Register(reg); err != nil {
		t.Fatalf("Register: %v", err)
	}
	want := `
# HELP heartwood_test_duration_seconds Durations.
# TYPE heartwood_test_duration_seconds histogram
heartwood_test_duration_seconds_bucket{le="1"} 0
heartwood_test_duration_seconds_bucket{le="2"} 1
heartwood_test_duration_seconds_bucket{le="+Inf"} 1
heartwood_test_duration_seconds_sum 1.5
heartwood_test_duration_seconds_count 1
# HELP heartwood_test_errors_total Errors, by kind.
# TYPE heartwood_test_errors_total counter
heartwood_test_errors_total{kind="read"} 2
# HELP heartwood_test_extra Made elsewhere.
# TYPE heartwood_test_extra gauge
heartwood_test_extra 5
# HELP heartwood_test_lag_seconds Lag, per container.
# TYPE heartwood_test_lag_seconds gauge
heartwood_test_lag_seconds{container="web"} 4
# HELP heartwood_test_op_duration_seconds Durations, by op.
# TYPE heartwood_test_op_duration_seconds histogram
heartwood_test_op_duration_seconds_bucket{op="write",le="1"} 1
heartwood_test_op_duration_seconds_bucket{op="write",le="+Inf"} 1
heartwood_test_op_duration_seconds_sum{op="write"} 0.5
heartwood_test_op_duration_seconds_count{op="write"} 1
# HELP heartwood_test_queue Queued things.
# TYPE heartwood_test_queue gauge
heartwood_test_queue 3
# HELP heartwood_test_things_total Things.
# TYPE heartwood_test_things_total counter
heartwood_test_things_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterErrors(t *testing.T) {
	tests := []struct {
		name    string
		reg     func() prometheus.Registerer
		wantErr bool
	}{
		{"nil registerer registers nothing", func() prometheus.Registerer { return nil }, false},
		{"fresh registry", func() prometheus.Registerer { return prometheus.NewRegistry() }, false},
		{"name already taken", func() prometheus.Registerer {
			r := prometheus.NewRegistry()
			r.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "heartwood_test_things_total", Help: "Taken."}))
			return r
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := New("heartwood_test_")
			set.Counter("things_total", "Things.")
			err := set.Register(tt.reg())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Register error = %v, want error: %v", err, tt.wantErr)
			}
			panicked := func() (p bool) {
				defer func() { p = recover() != nil }()
				set.MustRegister(tt.reg())
				return false
			}()
			if panicked != tt.wantErr {
				t.Fatalf("MustRegister panicked = %v, want %v", panicked, tt.wantErr)
			}
		})
	}
}
