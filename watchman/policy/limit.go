package policy

import "time"

// Limiter caps actions per sliding minute across the node.
type Limiter struct {
	max  int
	past []time.Time
}

// NewLimiter allows at most max actions in any 60-second window; max <= 0
// allows none.
func NewLimiter(max int) *Limiter { return &Limiter{max: max} }

// Allow reports whether n more actions fit at now and, if so, records them.
func (l *Limiter) Allow(now time.Time, n int) bool {
	cut := 0
	for cut < len(l.past) && now.Sub(l.past[cut]) >= time.Minute {
		cut++
	}
	l.past = append(l.past[:0], l.past[cut:]...)
	if len(l.past)+n > l.max {
		return false
	}
	for range n {
		l.past = append(l.past, now)
	}
	return true
}
