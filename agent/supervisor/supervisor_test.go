package supervisor

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRestartsFailingUnitAndStopsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
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

		time.Sleep(time.Second) // far beyond every backoff
		synctest.Wait()
		if n := runs.Load(); n != 3 {
			t.Fatalf("unit ran %d times, want 3", n)
		}
		if st := s.States(); !st[0].Running || !st[1].Running {
			t.Fatalf("states after the restarts = %+v, want both running", st)
		}
		cancel()
		<-done
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
	})
}

// TestFailingUnitDoesNotHoldBackOthers: a unit that fails at every start
// (the shipper on a checkpoint it cannot parse) keeps being retried while
// the others start and keep running.
func TestFailingUnitDoesNotHoldBackOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New(Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
		var started sync.Map
		steady := func(name string) UnitFunc {
			return func(ctx context.Context) error {
				started.Store(name, true)
				<-ctx.Done()
				return nil
			}
		}
		s.Add("registrar", steady("registrar"))
		s.Add("shipper", UnitFunc(func(context.Context) error {
			return errors.New("checkpoint /var/lib/heartwood/x.json: invalid character")
		}))
		s.Add("watchman", steady("watchman"))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { s.Run(ctx); close(done) }()
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, st := range s.States() {
			switch st.Name {
			case "shipper":
				if st.Running || st.Restarts < 5 || !strings.Contains(st.LastErr, "checkpoint") {
					t.Errorf("shipper state = %+v, want down, retried, with its error", st)
				}
			default:
				if _, ok := started.Load(st.Name); !ok || !st.Running || st.Restarts != 0 {
					t.Errorf("%s state = %+v, want started and running", st.Name, st)
				}
			}
		}
		cancel()
		<-done
	})
}
