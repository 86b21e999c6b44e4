package watchman

import (
	"time"

	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// ContainerView is the watchman's state for one container, as shown by
// GET /v1/containers. It never holds environment values.
type ContainerView struct {
	State       string         `json:"state"`
	Managed     bool           `json:"managed"`
	Policy      *policy.Policy `json:"policy,omitempty"`
	PolicyError string         `json:"policy_error,omitempty"`
	Group       string         `json:"group,omitempty"`
	DryRun      bool           `json:"dry_run"`
	// IdleSeconds is how long the container has been idle without a break.
	IdleSeconds float64 `json:"idle_seconds"`
	// SecondsUntilAction is the idle time left before the action.
	SecondsUntilAction float64 `json:"seconds_until_action,omitempty"`
	// Blocker says what keeps the container from being acted on.
	Blocker     string      `json:"blocker,omitempty"`
	PausedAt    *time.Time  `json:"paused_at,omitempty"`
	Maintenance bool        `json:"maintenance"`
	LastSample  *SampleView `json:"last_sample,omitempty"`
	SampleError string      `json:"sample_error,omitempty"`
}

// SampleView summarizes the last sample.
type SampleView struct {
	At               time.Time `json:"at"`
	Source           string    `json:"source"` // cgroup or docker
	CPUCores         float64   `json:"cpu_cores"`
	NetBytesPerSec   float64   `json:"net_bytes_per_second"`
	DiskBytesPerSec  float64   `json:"disk_bytes_per_second"`
	ThrottledPeriods uint64    `json:"throttled_periods"`
	Pressure         *float64  `json:"pressure,omitempty"`
	GPUPercent       *float64  `json:"gpu_percent,omitempty"`
	MemoryBytes      uint64    `json:"memory_usage_bytes"`
	WorkingSetBytes  uint64    `json:"memory_working_set_bytes"`
	Pids             uint64    `json:"pids"`
}

// DescribeContainer returns a *ContainerView for the container with the
// given ID (or name, or ID prefix), or nil if the watchman does not know it.
func (w *Watchman) DescribeContainer(id string) any {
	w.mu.Lock()
	defer w.mu.Unlock()
	t, ok := w.lookupLocked(id)
	if !ok {
		return nil
	}
	v := &ContainerView{
		State:       t.state,
		Managed:     t.managed,
		DryRun:      w.dryRunLocked(t),
		IdleSeconds: t.verdict.IdleFor.Seconds(),
		Blocker:     t.verdict.Blocker,
		Maintenance: t.maintenance,
	}
	if t.polErr != nil {
		v.PolicyError = t.polErr.Error()
	} else if t.pol.Enabled {
		p := t.pol
		v.Policy = &p
		v.Group = groupKey(t)
	}
	if t.verdict.Idle && !t.verdict.Due {
		v.SecondsUntilAction = t.verdict.Until.Seconds()
	}
	if t.ours() {
		at := t.since
		v.PausedAt = &at
	}
	if t.openErr != nil {
		v.SampleError = t.openErr.Error()
	}
	if t.hasCur {
		s := &SampleView{
			At:              t.cur.At,
			Source:          "cgroup",
			MemoryBytes:     t.cur.Cgroup.MemoryUsage,
			WorkingSetBytes: t.cur.Cgroup.MemoryWorkingSet,
			Pids:            t.cur.Cgroup.Pids,
		}
		if t.cur.FromDocker {
			s.Source = "docker"
		}
		if t.hasRates {
			r := t.rates
			s.CPUCores, s.NetBytesPerSec, s.DiskBytesPerSec, s.ThrottledPeriods = r.CPU, r.NetBps, r.DiskBps, r.ThrottledPeriods
			if r.HasPressure {
				p := r.Pressure
				s.Pressure = &p
			}
			if r.HasGPU {
				g := r.GPU
				s.GPUPercent = &g
			}
		}
		v.LastSample = s
	}
	return v
}
