package supervisor

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRestartsFailingUnitAndStopsOnCancel(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(Options{Registerer: reg, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	var runs atomic.Int32
	s.Add("flaky", UnitFunc(func(ctx context.Context) error {
		if runs.Add(1) < 3 {
			return errors.New("boom")
		}
		<-ctx.Done()
		return ctx.Err()
	}))
	s.Add("panicky", UnitFunc(func(ctx context.Context) error {
		if runs.Load() < 2 {
			panic("bug")
		}
		<-ctx.Done()
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()

	deadline := time.Now().Add(5 * time.Second)
	for runs.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("unit ran %d times, want 3", runs.Load())
		}
		time.Sleep(time.Millisecond)
	}
	waitFor(t, func() bool { return s.States()[0].Running && s.States()[1].Running })
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	states := s.States()
	if got, want := states[0].Name, "flaky"; got != want {
		t.Fatalf("states[0].Name = %q, want %q", got, want)
	}
	if got := states[0].Restarts; got != 2 {
		t.Errorf("flaky restarts = %d, want 2", got)
	}
	if got := states[0].LastErr; got != "boom" {
		t.Errorf("flaky last error = %q, want boom", got)
	}
	if got := testutil.ToFloat64(s.restarts.WithLabelValues("flaky")); got != 2 {
		t.Errorf("restart metric = %v, want 2", got)
	}
	if states[1].Restarts < 1 || states[1].LastErr != "panic: bug" {
		t.Errorf("panicky state = %+v, want at least one restart after panic: bug", states[1])
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}
