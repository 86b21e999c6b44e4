package watchman

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/policy"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// Sample is one reading of a container's figures.
type Sample struct {
	At     time.Time
	Cgroup cgroup.Stats
	Net    []procfs.Iface
	// HasNet is false when the network namespace was not read (host
	// network, or the process is gone).
	HasNet bool
	// GPU figures, when a GPU reader is present.
	HasGPU      bool
	GPUUtil     float64
	GPUMemBytes uint64
	// FromDocker marks a sample taken through the Docker stats API fallback.
	FromDocker bool
	// Pressure is the larger PSI "some" stall ratio (0–1) of memory and
	// I/O over the last detail period (PSI is read with the detail files,
	// so the ratio covers up to detailPeriod and holds until the next
	// one). CPU pressure is left out: it measures contention from other
	// cgroups, and a busy container shows in its CPU use.
	Pressure    float64
	HasPressure bool
}

// Rates are the activity between two samples.
type Rates struct {
	Interval time.Duration `json:"interval"`
	CPU      float64       `json:"cpu_cores"`
	NetBps   float64       `json:"net_bytes_per_second"`
	DiskBps  float64       `json:"disk_bytes_per_second"`
	// ThrottledPeriods is the number of CFS periods throttled.
	ThrottledPeriods uint64  `json:"throttled_periods"`
	Pressure         float64 `json:"pressure"`
	HasPressure      bool    `json:"has_pressure"`
	GPU              float64 `json:"gpu_percent"`
	HasGPU           bool    `json:"has_gpu"`
}

// Signals converts the rates to the policy's input.
func (r Rates) Signals() policy.Signals {
	return policy.Signals{
		CPU: r.CPU, Net: r.NetBps, Disk: r.DiskBps, GPU: r.GPU, HasGPU: r.HasGPU,
		Throttled: r.ThrottledPeriods > 0, Pressure: r.Pressure, HasPressure: r.HasPressure,
	}
}

// delta returns b-a, or 0 when the counter went backwards (reset).
func delta(a, b uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}

// computeRates compares two consecutive samples of the same cgroup.
func computeRates(prev, cur *Sample) Rates {
	dt := cur.At.Sub(prev.At)
	r := Rates{Interval: dt}
	if dt <= 0 {
		return r
	}
	sec := dt.Seconds()
	r.CPU = float64(delta(prev.Cgroup.CPUUsage, cur.Cgroup.CPUUsage)) / 1e9 / sec
	r.ThrottledPeriods = delta(prev.Cgroup.CFSThrottled, cur.Cgroup.CFSThrottled)
	var disk uint64
	for _, d := range cur.Cgroup.BlkIO {
		for _, p := range prev.Cgroup.BlkIO {
			if p.Major == d.Major && p.Minor == d.Minor {
				disk += delta(p.ReadBytes, d.ReadBytes) + delta(p.WriteBytes, d.WriteBytes)
				break
			}
		}
	}
	r.DiskBps = float64(disk) / sec
	if cur.HasNet && prev.HasNet {
		var n uint64
		for _, i := range cur.Net {
			if i.Name == "lo" {
				continue
			}
			for _, p := range prev.Net {
				if p.Name == i.Name {
					n += delta(p.RxBytes, i.RxBytes) + delta(p.TxBytes, i.TxBytes)
					break
				}
			}
		}
		r.NetBps = float64(n) / sec
	}
	r.Pressure, r.HasPressure = cur.Pressure, cur.HasPressure
	if cur.HasGPU {
		r.HasGPU, r.GPU = true, cur.GPUUtil
	}
	return r
}

// sampler reads one container's figures from its cgroup and network
// namespace, keeping the files open between reads.
type sampler struct {
	pid int
	// detailEvery: every detailEvery-th read is a full read; the others
	// re-read only the files the idle decision needs (cgroup.ReadHot).
	detailEvery int
	reads       int
	// PSI totals (µs) and time of the last full read, and the stall ratio
	// computed then.
	psiAt       time.Time
	psiMem      uint64
	psiIO       uint64
	pressure    float64
	hasPressure bool
	cg          *cgroup.Reader
	netdev      *procfs.File
	cgPath      string // cAdvisor-style id label: the cgroup path
}

// errNoCgroup means the cgroup could not be opened: fall back to Docker.
var errNoCgroup = errors.New("cgroup not readable")

// openSampler resolves pid's cgroup and opens its files. hostNet disables
// network sampling (the namespace is the host's).
func openSampler(procRoot, cgroupRoot string, pid int, hostNet bool, detailEvery int) (*sampler, error) {
	gone := func(err error) error {
		if _, serr := os.Stat(filepath.Join(procRoot, strconv.Itoa(pid))); errors.Is(serr, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", procfs.ErrVanished, err) // the process exited
		}
		return fmt.Errorf("%w: %w", errNoCgroup, err)
	}
	paths, err := cgroup.ForPID(procRoot, cgroupRoot, pid)
	if err != nil {
		return nil, gone(err)
	}
	cg, err := cgroup.Open(paths)
	if err != nil {
		return nil, gone(err)
	}
	s := &sampler{pid: pid, cg: cg, cgPath: cgroupID(cgroupRoot, paths), detailEvery: max(1, detailEvery)}
	if !hostNet {
		if f, err := procfs.OpenPID(procRoot, pid, "net/dev"); err == nil {
			s.netdev = f
		}
	}
	return s, nil
}

// cgroupID returns the cgroup path relative to its hierarchy, as cAdvisor
// puts it in the id label (/docker/<id> or /system.slice/docker-<id>.scope).
func cgroupID(root string, p cgroup.Paths) string {
	var dir string
	var bases []string
	switch {
	case p.V1["cpuacct"] != "":
		dir = p.V1["cpuacct"]
		bases = []string{root + "/cpuacct", root + "/cpu,cpuacct", root + "/cpuacct,cpu"}
	case p.V2 != "":
		dir = p.V2
		bases = []string{root + "/unified", root}
	}
	for _, b := range bases {
		if len(dir) > len(b) && dir[:len(b)] == b && dir[len(b)] == '/' {
			return dir[len(b):]
		}
	}
	return dir
}

// read fills s. An error wrapping cgroup.ErrVanished or procfs.ErrVanished
// means the container went away: skip the sample.
func (sm *sampler) read(s *Sample, now time.Time) error {
	s.At = now
	s.FromDocker = false
	full := sm.reads%sm.detailEvery == 0
	read := sm.cg.ReadHot
	if full {
		read = sm.cg.Read
	}
	sm.reads++
	if err := read(&s.Cgroup); err != nil {
		return err
	}
	if full && s.Cgroup.HasPSI {
		mem, io := s.Cgroup.MemoryPressure.Some.Total, s.Cgroup.IOPressure.Some.Total
		if !sm.psiAt.IsZero() {
			if us := float64(now.Sub(sm.psiAt).Microseconds()); us > 0 {
				sm.pressure = max(float64(delta(sm.psiMem, mem)), float64(delta(sm.psiIO, io))) / us
				sm.hasPressure = true
			}
		}
		sm.psiAt, sm.psiMem, sm.psiIO = now, mem, io
	}
	s.Pressure, s.HasPressure = sm.pressure, sm.hasPressure
	s.HasNet = false
	if sm.netdev != nil {
		b, err := sm.netdev.Read()
		if err == nil {
			s.Net, err = procfs.ParseNetDev(b, s.Net)
		}
		if err == nil {
			s.HasNet = true
		}
	}
	return nil
}

func (sm *sampler) close() {
	if sm == nil {
		return
	}
	sm.cg.Close()
	if sm.netdev != nil {
		sm.netdev.Close()
	}
}

// vanished reports whether err means the container's cgroup or process is
// gone.
func vanished(err error) bool {
	return errors.Is(err, cgroup.ErrVanished) || errors.Is(err, procfs.ErrVanished)
}
