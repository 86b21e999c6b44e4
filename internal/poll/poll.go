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

// Until calls cond every Interval until it reports true, and returns how
// long that took. When timeout passes first, the test fails with what and
// the last detail cond returned.
func Until(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	var last string
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		last = detail
		if time.Since(start) > timeout {
			if last != "" {
				t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
			}
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
			return time.Since(start)
		}
		time.Sleep(Interval)
	}
}

// UntilTrue is Until for a condition without detail.
func UntilTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Until(t, timeout, what, func() (bool, string) { return cond(), "" })
}
