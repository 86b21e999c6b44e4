package policy

import (
	"fmt"
	"time"
)

// Signals are a container's activity over one sample interval.
type Signals struct {
	// CPU in cores; Net and Disk in bytes per second (receive+transmit,
	// read+write).
	CPU, Net, Disk float64
	// GPU is utilization in percent; it counts only when HasGPU.
	GPU    float64
	HasGPU bool
	// Throttled is true when CFS throttled the container in the interval.
	Throttled bool
	// Pressure is the largest PSI "some" stall ratio (0–1) of CPU, memory
	// and I/O over the interval; it counts only when HasPressure.
	Pressure    float64
	HasPressure bool
}

// Verdict is what a Tracker concluded after one observation.
type Verdict struct {
	// Idle: every signal was at or below its threshold in this interval.
	Idle bool `json:"idle"`
	// IdleFor is how long the container has been idle without a break.
	IdleFor time.Duration `json:"idle_for"`
	// Due: idle for the whole window and older than the minimum age.
	Due bool `json:"due"`
	// Until is the remaining idle time before Due (0 when Due or active).
	Until time.Duration `json:"until"`
	// Blocker names the first signal that kept the container active, with
	// its value and threshold, or why it is not yet due.
	Blocker string `json:"blocker,omitempty"`
}

// Tracker applies the idle test with hysteresis to one container's samples:
// the container is due only when consecutive idle intervals, with no gap
// between them, cover the whole window. It is not safe for concurrent use.
type Tracker struct {
	idleSince time.Time
	lastEnd   time.Time
}

// Reset forgets the idle streak (after a pause, wake or restart).
func (t *Tracker) Reset() { *t = Tracker{} }

// IdleSince returns when the current idle streak began (zero if active).
func (t *Tracker) IdleSince() time.Time { return t.idleSince }

// Observe records the interval [start, end] with signals s under policy p
// for a container started at started, and returns the verdict. Pressure
// above pressureMax (a ratio) blocks idleness.
func (t *Tracker) Observe(p Policy, pressureMax float64, started, start, end time.Time, s Signals) Verdict {
	blocker := activeSignal(p, pressureMax, s)
	contiguous := !t.lastEnd.IsZero() && start.Equal(t.lastEnd)
	t.lastEnd = end
	if blocker != "" {
		t.idleSince = time.Time{}
		return Verdict{Blocker: blocker}
	}
	if t.idleSince.IsZero() || !contiguous {
		t.idleSince = start
	}
	v := Verdict{Idle: true, IdleFor: end.Sub(t.idleSince)}
	age := end.Sub(started)
	switch {
	case v.IdleFor < p.Window:
		v.Until = p.Window - v.IdleFor
		v.Blocker = fmt.Sprintf("idle %s of window %s", v.IdleFor.Round(time.Millisecond), p.Window)
	case !started.IsZero() && age < p.MinAge:
		v.Until = p.MinAge - age
		v.Blocker = fmt.Sprintf("age %s below min-age %s", age.Round(time.Second), p.MinAge)
	default:
		v.Due = true
	}
	if rem := p.MinAge - age; !started.IsZero() && rem > v.Until {
		v.Until = rem
	}
	return v
}

// activeSignal returns a description of the first signal above its
// threshold, or "" when all are at or below.
func activeSignal(p Policy, pressureMax float64, s Signals) string {
	switch {
	case s.Throttled:
		return "cpu throttled"
	case s.HasPressure && s.Pressure > pressureMax:
		return fmt.Sprintf("pressure %.3f > %.3f", s.Pressure, pressureMax)
	case s.CPU > p.CPU:
		return fmt.Sprintf("cpu %.3f > %g cores", s.CPU, p.CPU)
	case s.Net > p.Net:
		return fmt.Sprintf("net %.0f > %g B/s", s.Net, p.Net)
	case s.Disk > p.Disk:
		return fmt.Sprintf("disk %.0f > %g B/s", s.Disk, p.Disk)
	case s.HasGPU && s.GPU > p.GPU:
		return fmt.Sprintf("gpu %.1f > %g %%", s.GPU, p.GPU)
	}
	return ""
}
