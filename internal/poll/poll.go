// Package poll is the one polling helper of the integration tests: wait for
// a condition on a real service, with a deadline, and say what was last seen
// when it is not met. Unit tests use testing/synctest instead.
package poll

import (
	"testing"
	"time"
)

// Interval is how often Until re-evaluates its condition.
const Interval = 10 * time.Millisecond

// Every polls at its own interval, for conditions that are costly to check
// (a command, a query across a cluster).
type Every time.Duration

// Until calls cond every Interval until it reports true, and returns how
// long that took. When timeout passes first, the test fails with what and
// the last detail cond returned.
func Until(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	return Every(Interval).Until(t, timeout, what, cond)
}

// UntilTrue is Until for a condition without detail.
func UntilTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Every(Interval).UntilTrue(t, timeout, what, cond)
}

// Until is the package's Until at interval e.
func (e Every) Until(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	var last string
	took, err := e.Wait(timeout, func() error {
		ok, detail := cond()
		last = detail
		if ok {
			return nil
		}
		return errNotYet
	})
	if err != nil {
		if last != "" {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
	return took
}

// UntilTrue is Until for a condition without detail.
func (e Every) UntilTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return e.Until(t, timeout, what, func() (bool, string) { return cond(), "" })
}

// Wait calls cond at interval e until it returns nil or timeout passes, and
// returns how long it waited and cond's last error (nil on success). It
// does not fail the test, for measurements that report the time either way.
func (e Every) Wait(timeout time.Duration, cond func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := cond()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), err
		}
		time.Sleep(time.Duration(e))
	}
}

type notYet struct{}

func (notYet) Error() string { return "condition not met" }

var errNotYet error = notYet{}
