package poll

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the message and stops the
// calling function the way t.Fatalf does, by unwinding.
type recorder struct {
	testing.TB
	msg string
}

type fatal struct{}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	panic(fatal{})
}

func run(f func(tb testing.TB)) (msg string) {
	r := &recorder{}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(fatal); !ok {
				panic(v)
			}
			msg = r.msg
		}
	}()
	f(r)
	return ""
}

func TestUntil(t *testing.T) {
	tests := []struct {
		name    string
		okAfter int // calls before cond is true; -1 never
		wantMsg string
	}{
		{name: "at once", okAfter: 0},
		{name: "after a few polls", okAfter: 3},
		{name: "never", okAfter: -1, wantMsg: "waiting for the thing; last: call"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			msg := run(func(tb testing.TB) {
				Until(tb, 50*time.Millisecond, "the thing", func() (bool, string) {
					calls++
					return tc.okAfter >= 0 && calls > tc.okAfter, fmt.Sprintf("call %d", calls)
				})
			})
			if tc.wantMsg == "" && msg != "" {
				t.Fatalf("failed: %s", msg)
			}
			if tc.wantMsg != "" && !strings.Contains(msg, tc.wantMsg) {
				t.Fatalf("message %q does not contain %q", msg, tc.wantMsg)
			}
			if tc.okAfter > 0 && calls != tc.okAfter+1 {
				t.Fatalf("cond called %d times, want %d", calls, tc.okAfter+1)
			}
		})
	}
}

func TestUntilTrueReportsWhat(t *testing.T) {
	msg := run(func(tb testing.TB) { UntilTrue(tb, 20*time.Millisecond, "nothing", func() bool { return false }) })
	if !strings.Contains(msg, "waiting for nothing") || strings.Contains(msg, "last:") {
		t.Fatalf("message %q", msg)
	}
}

func TestEveryWait(t *testing.T) {
	calls := 0
	took, err := Every(time.Millisecond).Wait(time.Second, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if err != nil || calls != 3 || took <= 0 {
		t.Fatalf("Wait = %s, %v after %d calls", took, err, calls)
	}
	_, err = Every(time.Millisecond).Wait(5*time.Millisecond, func() error { return fmt.Errorf("never") })
	if err == nil || err.Error() != "never" {
		t.Fatalf("Wait on a condition never met = %v, want its last error", err)
	}
}
