package cgroup

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// ErrVanished is returned (wrapped) when a cgroup disappears: the container
// stopped between two samples. Callers skip the sample.
var ErrVanished = errors.New("cgroup vanished")

// Stats is one sample of a container's cgroup figures. Counters are
// cumulative since the cgroup was created.
type Stats struct {
	// CPUUsage, CPUUser and CPUSystem are CPU time in nanoseconds.
	CPUUsage, CPUUser, CPUSystem uint64
	// CFS bandwidth control: periods, throttled periods and throttled time
	// in nanoseconds.
	CFSPeriods, CFSThrottled, CFSThrottledTime uint64

	// Memory in bytes. MemoryLimit is Unlimited when no limit is set.
	MemoryUsage, MemoryLimit, MemoryWorkingSet uint64
	MemoryRSS, MemoryCache, MemoryInactiveFile uint64

	// BlkIO holds per-device block I/O counters. The slice is reused
	// between reads into the same Stats.
	BlkIO []BlkDev

	// Pids is the number of tasks; PidsMax is Unlimited without a limit.
	Pids, PidsMax uint64

	// Frozen is true while the freezer holds the cgroup (docker pause).
	Frozen bool

	// HasPSI is true when the pressure figures below were read.
	HasPSI                      bool
	CPUPressure, MemoryPressure PSI
	IOPressure                  PSI
}

// Reader re-reads one container's cgroup files. It keeps them open and
// reads each from offset 0, which makes the kernel regenerate the contents
// without a path lookup. It is not safe for concurrent use.
type Reader struct {
	v2    bool
	files [numFiles]*os.File
	buf   []byte
	// detail caches the figures of the last full read for ReadHot.
	detail    Stats
	hasDetail bool
}

const (
	fCPUUsage = iota // v1 cpuacct.usage
	fCPUAcct         // v1 cpuacct.stat
	fCPUStat         // v1 cpu.stat (throttling) / v2 cpu.stat (everything)
	fMemUsage        // v1 memory.usage_in_bytes / v2 memory.current
	fMemLimit        // v1 memory.limit_in_bytes / v2 memory.max
	fMemStat         // memory.stat
	fBlkBytes        // v1 blkio.*io_service_bytes_recursive / v2 io.stat
	fBlkOps          // v1 blkio.*io_serviced_recursive
	fPids            // pids.current
	fPidsMax         // pids.max
	fFreezer         // v1 freezer.state / v2 cgroup.events
	fPSICPU          // cpu.pressure
	fPSIMem          // memory.pressure
	fPSIIO           // io.pressure
	numFiles
)

// Open opens the files of the cgroup at p. CPU and memory usage are
// required; every other file is optional and silently skipped when absent.
func Open(p Paths) (*Reader, error) {
	r := &Reader{v2: p.Unified(), buf: make([]byte, 8192)}
	type want struct {
		slot     int
		dir      string
		names    []string
		required bool
	}
	var ws []want
	if r.v2 {
		d := p.V2
		ws = []want{
			{fCPUStat, d, []string{"cpu.stat"}, true},
			{fMemUsage, d, []string{"memory.current"}, true},
			{fMemLimit, d, []string{"memory.max"}, false},
			{fMemStat, d, []string{"memory.stat"}, false},
			{fBlkBytes, d, []string{"io.stat"}, false},
			{fPids, d, []string{"pids.current"}, false},
			{fPidsMax, d, []string{"pids.max"}, false},
			{fFreezer, d, []string{"cgroup.events"}, false},
		}
	} else {
		ws = []want{
			{fCPUUsage, p.V1["cpuacct"], []string{"cpuacct.usage"}, true},
			{fCPUAcct, p.V1["cpuacct"], []string{"cpuacct.stat"}, false},
			{fCPUStat, p.V1["cpu"], []string{"cpu.stat"}, false},
			{fMemUsage, p.V1["memory"], []string{"memory.usage_in_bytes"}, true},
			{fMemLimit, p.V1["memory"], []string{"memory.limit_in_bytes"}, false},
			{fMemStat, p.V1["memory"], []string{"memory.stat"}, false},
			// containerd prefers the recursive CFQ/BFQ files when the
			// kernel has them, then the throttle files, which count I/O
			// under every scheduler.
			{fBlkBytes, p.V1["blkio"], []string{"blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"}, false},
			{fBlkOps, p.V1["blkio"], []string{"blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced"}, false},
			{fPids, p.V1["pids"], []string{"pids.current"}, false},
			{fPidsMax, p.V1["pids"], []string{"pids.max"}, false},
			{fFreezer, p.V1["freezer"], []string{"freezer.state"}, false},
		}
	}
	if p.V2 != "" { // pure v2, or the unified hierarchy of a hybrid host
		ws = append(ws,
			want{fPSICPU, p.V2, []string{"cpu.pressure"}, false},
			want{fPSIMem, p.V2, []string{"memory.pressure"}, false},
			want{fPSIIO, p.V2, []string{"io.pressure"}, false},
		)
	}
	for _, w := range ws {
		if w.dir == "" {
			if w.required {
				r.Close()
				return nil, fmt.Errorf("open cgroup: no directory for %s: %w", w.names[0], ErrVanished)
			}
			continue
		}
		var lastErr error
		for _, n := range w.names {
			f, err := os.Open(filepath.Join(w.dir, n))
			if err == nil {
				r.files[w.slot] = f
				break
			}
			lastErr = err
		}
		if r.files[w.slot] == nil && w.required {
			r.Close()
			return nil, fmt.Errorf("open cgroup: %w", classify(lastErr))
		}
	}
	return r, nil
}

// Close closes every open file.
func (r *Reader) Close() error {
	for i, f := range r.files {
		if f != nil {
			_ = f.Close()
			r.files[i] = nil
		}
	}
	return nil
}

// HasPSI reports whether the cgroup has pressure files.
func (r *Reader) HasPSI() bool { return r.files[fPSICPU] != nil }

// V2 reports whether the reader reads cgroup v2 files.
func (r *Reader) V2() bool { return r.v2 }

// read returns the current contents of file slot i, or nil if it is not
// open. The result is valid until the next call.
func (r *Reader) read(i int) ([]byte, error) {
	f := r.files[i]
	if f == nil {
		return nil, nil
	}
	for {
		n, err := f.ReadAt(r.buf, 0)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", f.Name(), classify(err))
		}
		if n < len(r.buf) {
			return r.buf[:n], nil
		}
		r.buf = make([]byte, 2*len(r.buf))
	}
}

// classify wraps errors that mean "the cgroup is gone" with ErrVanished.
func classify(err error) error {
	if errors.Is(err, syscall.ENODEV) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: %w", ErrVanished, err)
	}
	return err
}

// Read fills s with the current figures from every file. An error
// wrapping ErrVanished means the cgroup was removed; s is then incomplete.
func (r *Reader) Read(s *Stats) error { return r.read2(s, true) }

// ReadHot re-reads only the counters the idle decision needs every sample
// — CPU usage and throttling and block I/O bytes — and fills the other
// figures (memory, PSI, CPU user/system split, I/O operation counts, pids,
// freezer state) from the last Read. Before the first Read it does a full
// read.
func (r *Reader) ReadHot(s *Stats) error {
	if !r.hasDetail {
		return r.Read(s)
	}
	return r.read2(s, false)
}

func (r *Reader) read2(s *Stats, full bool) error {
	devs := s.BlkIO[:0]
	*s = Stats{BlkIO: devs}
	if !full {
		d := &r.detail
		s.MemoryUsage = d.MemoryUsage
		s.CPUPressure, s.MemoryPressure, s.IOPressure, s.HasPSI = d.CPUPressure, d.MemoryPressure, d.IOPressure, d.HasPSI
		s.CPUUser, s.CPUSystem = d.CPUUser, d.CPUSystem
		s.MemoryLimit, s.MemoryRSS, s.MemoryCache, s.MemoryInactiveFile = d.MemoryLimit, d.MemoryRSS, d.MemoryCache, d.MemoryInactiveFile
		s.Pids, s.PidsMax, s.Frozen = d.Pids, d.PidsMax, d.Frozen
		for _, x := range d.BlkIO {
			var dev *BlkDev
			s.BlkIO, dev = findDev(s.BlkIO, x.Major, x.Minor)
			dev.Reads, dev.Writes = x.Reads, x.Writes
		}
	}
	if r.v2 {
		if err := r.readV2(s, full); err != nil {
			return err
		}
	} else if err := r.readV1(s, full); err != nil {
		return err
	}
	if s.MemoryInactiveFile < s.MemoryUsage {
		s.MemoryWorkingSet = s.MemoryUsage - s.MemoryInactiveFile
	}
	for i, dst := range [...]*PSI{&s.CPUPressure, &s.MemoryPressure, &s.IOPressure} {
		if !full {
			break
		}
		b, err := r.read(fPSICPU + i)
		if err != nil {
			return err
		}
		if b == nil {
			continue
		}
		if err := parsePSI(b, dst); err != nil {
			return fmt.Errorf("%s: %w", r.files[fPSICPU+i].Name(), err)
		}
		s.HasPSI = true
	}
	if full {
		r.detail.BlkIO = append(r.detail.BlkIO[:0], s.BlkIO...)
		blk := r.detail.BlkIO
		r.detail = *s
		r.detail.BlkIO = blk
		r.hasDetail = true
	}
	return nil
}

func (r *Reader) single(i int) (uint64, bool, error) {
	b, err := r.read(i)
	if err != nil || b == nil {
		return 0, false, err
	}
	n, err := parseSingle(b)
	if err != nil {
		return 0, false, fmt.Errorf("%s: %w", r.files[i].Name(), err)
	}
	return n, true, nil
}

func (r *Reader) flat(i int, fn func(k []byte, v uint64)) error {
	b, err := r.read(i)
	if err != nil || b == nil {
		return err
	}
	if err := parseFlatKeyed(b, fn); err != nil {
		return fmt.Errorf("%s: %w", r.files[i].Name(), err)
	}
	return nil
}

// userHZ is the unit of cpuacct.stat (USER_HZ is 100 on every Linux ABI).
const userHZ = 100

func (r *Reader) readV1(s *Stats, full bool) error {
	var err error
	if s.CPUUsage, _, err = r.single(fCPUUsage); err != nil {
		return err
	}
	if err := r.flat(fCPUStat, func(k []byte, v uint64) {
		switch string(k) {
		case "nr_periods":
			s.CFSPeriods = v
		case "nr_throttled":
			s.CFSThrottled = v
		case "throttled_time":
			s.CFSThrottledTime = v
		}
	}); err != nil {
		return err
	}
	if b, err := r.read(fBlkBytes); err != nil {
		return err
	} else if b != nil {
		if s.BlkIO, err = parseBlkioV1(b, s.BlkIO, true); err != nil {
			return fmt.Errorf("%s: %w", r.files[fBlkBytes].Name(), err)
		}
	}
	if !full {
		return nil
	}
	if s.MemoryUsage, _, err = r.single(fMemUsage); err != nil {
		return err
	}
	if err := r.flat(fCPUAcct, func(k []byte, v uint64) {
		switch string(k) {
		case "user":
			s.CPUUser = v * (1e9 / userHZ)
		case "system":
			s.CPUSystem = v * (1e9 / userHZ)
		}
	}); err != nil {
		return err
	}
	var ok bool
	if s.MemoryLimit, ok, err = r.single(fMemLimit); err != nil {
		return err
	}
	if !ok || s.MemoryLimit >= v1Unlimited {
		s.MemoryLimit = Unlimited
	}
	if err := r.flat(fMemStat, func(k []byte, v uint64) {
		switch string(k) {
		case "total_inactive_file":
			s.MemoryInactiveFile = v
		case "total_rss":
			s.MemoryRSS = v
		case "total_cache":
			s.MemoryCache = v
		}
	}); err != nil {
		return err
	}
	if b, err := r.read(fBlkOps); err != nil {
		return err
	} else if b != nil {
		if s.BlkIO, err = parseBlkioV1(b, s.BlkIO, false); err != nil {
			return fmt.Errorf("%s: %w", r.files[fBlkOps].Name(), err)
		}
	}
	if err := r.pids(s); err != nil {
		return err
	}
	if b, err := r.read(fFreezer); err != nil {
		return err
	} else if b != nil {
		if s.Frozen, err = parseFreezerV1(b); err != nil {
			return fmt.Errorf("%s: %w", r.files[fFreezer].Name(), err)
		}
	}
	return nil
}

func (r *Reader) pids(s *Stats) error {
	var err error
	if s.Pids, _, err = r.single(fPids); err != nil {
		return err
	}
	var ok bool
	if s.PidsMax, ok, err = r.single(fPidsMax); err != nil {
		return err
	}
	if !ok {
		s.PidsMax = Unlimited
	}
	return nil
}

func (r *Reader) readV2(s *Stats, full bool) error {
	if err := r.flat(fCPUStat, func(k []byte, v uint64) {
		switch string(k) {
		case "usage_usec":
			s.CPUUsage = v * 1000
		case "user_usec":
			s.CPUUser = v * 1000
		case "system_usec":
			s.CPUSystem = v * 1000
		case "nr_periods":
			s.CFSPeriods = v
		case "nr_throttled":
			s.CFSThrottled = v
		case "throttled_usec":
			s.CFSThrottledTime = v * 1000
		}
	}); err != nil {
		return err
	}
	var err error
	if b, err := r.read(fBlkBytes); err != nil {
		return err
	} else if b != nil {
		if s.BlkIO, err = parseIOStatV2(b, s.BlkIO); err != nil {
			return fmt.Errorf("%s: %w", r.files[fBlkBytes].Name(), err)
		}
	}
	if !full {
		return nil
	}
	if s.MemoryUsage, _, err = r.single(fMemUsage); err != nil {
		return err
	}
	var ok bool
	if s.MemoryLimit, ok, err = r.single(fMemLimit); err != nil {
		return err
	}
	if !ok {
		s.MemoryLimit = Unlimited
	}
	var anon, file uint64
	if err := r.flat(fMemStat, func(k []byte, v uint64) {
		switch string(k) {
		case "inactive_file":
			s.MemoryInactiveFile = v
		case "anon":
			anon = v
		case "file":
			file = v
		}
	}); err != nil {
		return err
	}
	s.MemoryRSS, s.MemoryCache = anon, file
	if err := r.pids(s); err != nil {
		return err
	}
	return r.flat(fFreezer, func(k []byte, v uint64) {
		if string(k) == "frozen" {
			s.Frozen = v == 1
		}
	})
}
