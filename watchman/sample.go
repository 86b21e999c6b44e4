package watchman

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
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
	// I/O over the last pressure period (PSI is read every pressurePeriod,
	// so the ratio covers up to that period and holds until the next
	// read). CPU pressure is left out: it measures contention from other
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

// pressurePeriod is how often the PSI totals behind the idle test's
// pressure signal are re-read (the signal is the stall ratio over this
// period); detailPeriod is how often the figures the idle decision does not
// need are. The decision's other signals are read every interval.
const (
	pressurePeriod = 5 * time.Second
	detailPeriod   = 15 * time.Second
)

// cadence returns the pressure and detail periods in samples.
func (w *Watchman) cadence() cadence {
	return cadence{pressure: max(1, int(pressurePeriod/w.cfg.Interval)), detail: max(1, int(detailPeriod/w.cfg.Interval))}
}

// cadence says how often the figures outside cgroup.Activity are read, and
// how often a sample reads everything, in samples.
type cadence struct {
	// pressure: memory and I/O PSI, from which the idle test's pressure
	// signal is computed.
	pressure int
	// detail: every other figure (memory, limits, pids, I/O operation
	// counts, ...), which only the metrics and the utilization samples show.
	detail int
}

// sampler reads one container's figures from its cgroup and network
// namespace, keeping the files open between reads.
type sampler struct {
	pid   int
	every cadence
	reads int
	// PSI totals (µs) and time of the last pressure read, and the stall
	// ratio computed then.
	psiAt       time.Time
	psiMem      uint64
	psiIO       uint64
	pressure    float64
	hasPressure bool
	cg          *cgroup.Reader
	// nets shares net/dev per network namespace; nil for a container on
	// the host's network. net is this container's namespace, nil while it
	// could not be opened.
	nets   *netnsSet
	net    *netns
	cgPath string // cAdvisor-style id label: the cgroup path
	// lastCPU is the CPU counter at the last read.
	lastCPU uint64
}

// errNoCgroup means the cgroup could not be opened: fall back to Docker.
var errNoCgroup = errors.New("cgroup not readable")

// openSampler resolves pid's cgroup and opens its files. nets is nil for a
// container on the host's network (its namespace is the host's and is not
// sampled).
func openSampler(procRoot, cgroupRoot string, pid int, nets *netnsSet, every cadence) (*sampler, error) {
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
	every.pressure, every.detail = max(1, every.pressure), max(1, every.detail)
	s := &sampler{pid: pid, cg: cg, cgPath: cgroupID(cgroupRoot, paths), every: every, nets: nets}
	if nets != nil {
		s.net = nets.acquire(pid)
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
// means the container went away: skip the sample. It reports whether the
// sample was quiet (see below).
//
// Every sample reads the CPU counter. When it has moved since the last
// sample, the idle test's other counters (block I/O, and net/dev of the
// container's network namespace) are read too. When it has not moved by a
// single nanosecond, none of the container's processes ran, so none of
// them sent, received or read anything: the block I/O and network figures
// of the last read are carried over. What the kernel handles alone (ARP,
// ICMP, refused connections, write-back of pages written earlier) is
// counted at the next full read. PSI is read every pressure period; every
// detail period a sample reads everything.
func (sm *sampler) read(s *Sample, now time.Time) (quiet bool, err error) {
	s.At = now
	s.FromDocker = false
	pressure := sm.reads%sm.every.pressure == 0
	detail := sm.reads%sm.every.detail == 0
	sm.reads++
	// The first read (reads 0) is a detail read: everything.
	first := cgroup.Activity
	if !detail {
		first = cgroup.CPU
	}
	if pressure {
		first |= cgroup.Pressure
	}
	if detail {
		first |= cgroup.Detail
	}
	if err := sm.cg.ReadParts(&s.Cgroup, first); err != nil {
		return false, err
	}
	if first&cgroup.IO == 0 {
		quiet = s.Cgroup.CPUUsage == sm.lastCPU
		if !quiet {
			if err := sm.cg.ReadParts(&s.Cgroup, cgroup.IO); err != nil {
				return false, err
			}
		}
	}
	sm.lastCPU = s.Cgroup.CPUUsage
	if pressure && s.Cgroup.HasPSI {
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
	if sm.net == nil && sm.nets != nil && detail {
		sm.net = sm.nets.acquire(sm.pid) // retry a namespace that failed
	}
	if sm.net != nil {
		ifs, ok := sm.net.last()
		if !quiet || !ok {
			var err error
			if ifs, err = sm.net.read(); err != nil {
				sm.nets.release(sm.net)
				sm.net = nil
				return quiet, nil
			}
		}
		s.Net = append(s.Net[:0], ifs...)
		s.HasNet = true
	}
	return quiet, nil
}

func (sm *sampler) close() {
	if sm == nil {
		return
	}
	sm.cg.Close()
	if sm.net != nil {
		sm.nets.release(sm.net)
		sm.net = nil
	}
}

// netnsSet shares the net/dev file of each network namespace among the
// containers in it (Swarm tasks and containers started with
// --network container:<name> share one), so that it is opened once and
// read once per tick however many containers are in it. It is used under
// Watchman.mu.
type netnsSet struct {
	procRoot string
	m        map[netnsKey]*netns
	// tick counts the watchman's ticks (nextTick), from 1: a namespace is
	// read once per tick, and one never read has tick 0.
	tick uint64
}

// nextTick starts a tick: the next read of each namespace reads its file.
func (ns *netnsSet) nextTick() { ns.tick++ }

// netnsKey identifies a network namespace: the device and inode of
// /proc/<pid>/ns/net. When that cannot be read (the namespace link needs
// more privilege than net/dev), pid keeps the container's net/dev its own.
type netnsKey struct {
	dev, ino uint64
	pid      int
}

// netns is one namespace's open net/dev and its last reading.
type netns struct {
	set  *netnsSet
	key  netnsKey
	f    *procfs.File
	refs int
	tick uint64 // the set's tick at the last read; 0 before the first
	ifs  []procfs.Iface
	err  error
}

func newNetnsSet(procRoot string) *netnsSet {
	return &netnsSet{procRoot: procRoot, m: map[netnsKey]*netns{}, tick: 1}
}

// acquire returns the namespace of pid, opening its net/dev through pid if
// no other container in it has, or nil if it cannot be read.
func (ns *netnsSet) acquire(pid int) *netns {
	k := netnsKey{pid: pid}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(ns.procRoot, strconv.Itoa(pid), "ns", "net"), &st); err == nil {
		k = netnsKey{dev: uint64(st.Dev), ino: st.Ino}
	}
	if n, ok := ns.m[k]; ok {
		n.refs++
		return n
	}
	f, err := procfs.OpenPID(ns.procRoot, pid, "net/dev")
	if err != nil {
		return nil
	}
	n := &netns{set: ns, key: k, f: f, refs: 1}
	ns.m[k] = n
	return n
}

// release gives up one container's hold on n and closes its file when the
// last one lets go.
func (ns *netnsSet) release(n *netns) {
	n.refs--
	if n.refs > 0 {
		return
	}
	_ = n.f.Close()
	if ns.m[n.key] == n {
		delete(ns.m, n.key)
	}
}

// read returns the namespace's interfaces, reading the file only for the
// first container of the tick. After a failed read the next container of
// the namespace to acquire it opens it afresh (through its own process:
// the one n was opened through may be gone).
func (n *netns) read() ([]procfs.Iface, error) {
	if n.tick == n.set.tick {
		return n.ifs, n.err
	}
	n.tick = n.set.tick
	b, err := n.f.Read()
	if err == nil {
		n.ifs, err = procfs.ParseNetDev(b, n.ifs)
	}
	if n.err = err; err != nil && n.set.m[n.key] == n {
		delete(n.set.m, n.key)
	}
	return n.ifs, err
}

// last returns the namespace's last successful reading, if any.
func (n *netns) last() ([]procfs.Iface, bool) {
	return n.ifs, n.tick != 0 && n.err == nil
}

// vanished reports whether err means the container's cgroup or process is
// gone.
func vanished(err error) bool {
	return errors.Is(err, cgroup.ErrVanished) || errors.Is(err, procfs.ErrVanished)
}
