package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/heartwood-ops/heartwood/watchman/kfile"
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

// Part selects the figures a read refreshes. The figures of the parts not
// read keep the values of the last read that refreshed them.
type Part uint8

const (
	// CPU is the CPU usage counter: v1 cpuacct.usage; on v2 cpu.stat, which
	// also holds the CFS throttling counters and the user/system split.
	CPU Part = 1 << iota
	// IO is the block I/O byte counters and, on v1 while a CFS quota is
	// set (without one they cannot move), the CFS throttling counters.
	IO
	// Pressure is the memory and I/O PSI the idle test's pressure signal
	// is computed from.
	Pressure
	// Detail is every other figure: memory, limits, pids, I/O operation
	// counts, CPU user/system split and PSI on v1, freezer state, CPU
	// pressure.
	Detail
	// Activity is what the idle test needs every sample: CPU and IO.
	Activity = CPU | IO
	// All is every figure.
	All = Activity | Pressure | Detail
)

// Reader re-reads one container's cgroup files. It keeps them open and
// reads each with one pread from offset 0, which makes the kernel regenerate
// the contents without a path lookup. It is not safe for concurrent use.
type Reader struct {
	v2    bool
	files [numFiles]*kfile.File
	buf   []byte
	// last holds the figures of the previous read, which a partial read
	// starts from.
	last    Stats
	hasLast bool
	// throttleHot is true when v1 cpu.stat can change: a CFS quota is set
	// (or cpu.cfs_quota_us cannot be read).
	throttleHot bool
	// blk is the v1 blkio directory, open while the non-recursive blkio
	// files are read (the cgroup has no child), and blkNlink its link count
	// then: a new child changes it, and the recursive files are used from
	// then on.
	blk      *kfile.File
	blkNlink uint64
}

const (
	fCPUUsage = iota // v1 cpuacct.usage
	fCPUAcct         // v1 cpuacct.stat
	fCPUStat         // v1 cpu.stat (throttling) / v2 cpu.stat (everything)
	fCPUQuota        // v1 cpu.cfs_quota_us
	fMemUsage        // v1 memory.usage_in_bytes / v2 memory.current
	fMemLimit        // v1 memory.limit_in_bytes / v2 memory.max
	fMemStat         // memory.stat
	fBlkBytes        // v1 blkio.*io_service_bytes* / v2 io.stat
	fBlkOps          // v1 blkio.*io_serviced*
	fPids            // pids.current
	fPidsMax         // pids.max
	fFreezer         // v1 freezer.state / v2 cgroup.events
	fPSICPU          // cpu.pressure
	fPSIMem          // memory.pressure
	fPSIIO           // io.pressure
	numFiles
)

// Block I/O files in order of preference, as containerd chooses them: the
// CFQ files when the kernel has them, then the throttle files, which count
// I/O under every scheduler. A cgroup without children (every container
// that does not make cgroups of its own) reads the non-recursive file,
// which holds the same figures without walking descendants.
var (
	blkBytesLeaf = []string{"blkio.io_service_bytes", "blkio.throttle.io_service_bytes", "blkio.throttle.io_service_bytes_recursive"}
	blkOpsLeaf   = []string{"blkio.io_serviced", "blkio.throttle.io_serviced", "blkio.throttle.io_serviced_recursive"}
	blkBytesTree = []string{"blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"}
	blkOpsTree   = []string{"blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced"}
)

// Open opens the files of the cgroup at p. CPU and memory usage are
// required; every other file is optional and silently skipped when absent.
func Open(p Paths) (*Reader, error) {
	r := &Reader{v2: p.Unified(), buf: make([]byte, 8192), throttleHot: true}
	r.last.MemoryLimit, r.last.PidsMax = Unlimited, Unlimited
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
		bytesNames, opsNames := blkBytesTree, blkOpsTree
		if d := p.V1["blkio"]; d != "" {
			if f, n, ok := openLeaf(d); ok {
				r.blk, r.blkNlink = f, n
				bytesNames, opsNames = blkBytesLeaf, blkOpsLeaf
			}
		}
		ws = []want{
			{fCPUUsage, p.V1["cpuacct"], []string{"cpuacct.usage"}, true},
			{fCPUAcct, p.V1["cpuacct"], []string{"cpuacct.stat"}, false},
			{fCPUStat, p.V1["cpu"], []string{"cpu.stat"}, false},
			{fCPUQuota, p.V1["cpu"], []string{"cpu.cfs_quota_us"}, false},
			{fMemUsage, p.V1["memory"], []string{"memory.usage_in_bytes"}, true},
			{fMemLimit, p.V1["memory"], []string{"memory.limit_in_bytes"}, false},
			{fMemStat, p.V1["memory"], []string{"memory.stat"}, false},
			{fBlkBytes, p.V1["blkio"], bytesNames, false},
			{fBlkOps, p.V1["blkio"], opsNames, false},
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
		if err := r.open(w.slot, w.dir, w.names); err != nil && w.required {
			r.Close()
			return nil, fmt.Errorf("open cgroup: %w", classify(err))
		}
	}
	return r, nil
}

// open opens the first of names in dir that exists into slot.
func (r *Reader) open(slot int, dir string, names []string) error {
	var err error
	for _, n := range names {
		var f *kfile.File
		if f, err = kfile.Open(filepath.Join(dir, n)); err == nil {
			r.files[slot] = f
			return nil
		}
	}
	return err
}

// openLeaf opens the cgroup directory d and returns it with its link
// count if d has no child cgroup.
func openLeaf(d string) (*kfile.File, uint64, bool) {
	ents, err := os.ReadDir(d)
	if err != nil {
		return nil, 0, false
	}
	for _, e := range ents {
		if e.IsDir() {
			return nil, 0, false
		}
	}
	f, err := kfile.Open(d)
	if err != nil {
		return nil, 0, false
	}
	var st syscall.Stat_t
	if f.Stat(&st) != nil {
		_ = f.Close()
		return nil, 0, false
	}
	return f, uint64(st.Nlink), true
}

// checkLeaf switches the v1 blkio files to the recursive ones once the
// cgroup gets a child.
func (r *Reader) checkLeaf() {
	var st syscall.Stat_t
	if r.blk.Stat(&st) == nil && uint64(st.Nlink) == r.blkNlink {
		return
	}
	dir := r.blk.Name()
	_ = r.blk.Close()
	r.blk = nil
	if f, _, ok := openLeaf(dir); ok {
		_ = f.Close()
		return // still no child: keep the non-recursive files
	}
	for _, x := range []struct {
		slot  int
		names []string
	}{{fBlkBytes, blkBytesTree}, {fBlkOps, blkOpsTree}} {
		if f := r.files[x.slot]; f != nil {
			_ = f.Close()
			r.files[x.slot] = nil
		}
		_ = r.open(x.slot, dir, x.names)
	}
}

// Close closes every open file.
func (r *Reader) Close() error {
	if r.blk != nil {
		_ = r.blk.Close()
		r.blk = nil
	}
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

// classify wraps errors that mean "the cgroup is gone" with ErrVanished.
func classify(err error) error {
	if errors.Is(err, syscall.ENODEV) || errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: %w", ErrVanished, err)
	}
	return err
}

// Read fills s with the current figures from every file. An error
// wrapping ErrVanished means the cgroup was removed; s is then incomplete.
func (r *Reader) Read(s *Stats) error { return r.ReadParts(s, All) }

// ReadHot re-reads only the Activity figures and fills the others from the
// last read (ReadParts(s, Activity)).
func (r *Reader) ReadHot(s *Stats) error { return r.ReadParts(s, Activity) }

// ReadParts re-reads the files of parts and fills the other figures from
// the last read. The first read of a Reader reads everything.
func (r *Reader) ReadParts(s *Stats, parts Part) error {
	if !r.hasLast {
		parts = All
	}
	if parts&Detail != 0 && r.blk != nil {
		r.checkLeaf()
	}
	devs := s.BlkIO[:0]
	if parts&IO == 0 || !r.v2 && parts&Detail == 0 {
		// Not every block I/O file is read: keep the other counters.
		devs = append(devs, r.last.BlkIO...)
	}
	*s = r.last
	s.BlkIO = devs
	for slot, f := range r.files {
		if f == nil || r.part(slot)&parts == 0 {
			continue
		}
		b, err := f.Read(&r.buf)
		if err != nil {
			return classify(err)
		}
		if err := r.parse(slot, b, s); err != nil {
			return fmt.Errorf("%s: %w", f.Name(), err)
		}
	}
	s.MemoryWorkingSet = 0
	if s.MemoryInactiveFile < s.MemoryUsage {
		s.MemoryWorkingSet = s.MemoryUsage - s.MemoryInactiveFile
	}
	r.last.BlkIO = append(r.last.BlkIO[:0], s.BlkIO...)
	blk := r.last.BlkIO
	r.last = *s
	r.last.BlkIO = blk
	r.hasLast = true
	return nil
}

// part returns the part file slot belongs to.
func (r *Reader) part(slot int) Part {
	switch slot {
	case fCPUUsage:
		return CPU
	case fBlkBytes:
		return IO
	case fCPUStat:
		if r.v2 {
			return CPU
		}
		if r.throttleHot {
			return IO
		}
	case fPSIMem, fPSIIO:
		return Pressure
	}
	return Detail
}

// Keys of the flat keyed files, in the order of the fields parseFields
// stores them in.
var (
	keysCPUAcct   = []string{"user", "system"}
	keysCPUStatV1 = []string{"nr_periods", "nr_throttled", "throttled_time"}
	keysMemStatV1 = []string{"total_inactive_file", "total_rss", "total_cache"}
	keysMemStatV2 = []string{"inactive_file", "anon", "file"}
	keysEvents    = []string{"frozen"}
)

// userHZ is the unit of cpuacct.stat (USER_HZ is 100 on every Linux ABI).
const userHZ = 100

// parse stores the figures of file slot's contents b in s.
func (r *Reader) parse(slot int, b []byte, s *Stats) error {
	var err error
	switch slot {
	case fCPUUsage:
		s.CPUUsage, err = parseSingle(b)
	case fCPUAcct:
		var user, system uint64
		err = parseFields(b, keysCPUAcct, &user, &system)
		s.CPUUser, s.CPUSystem = user*(1e9/userHZ), system*(1e9/userHZ)
	case fCPUStat:
		if r.v2 {
			return parseFlatKeyed(b, func(k []byte, v uint64) { cpuStatV2(s, k, v) })
		}
		err = parseFields(b, keysCPUStatV1, &s.CFSPeriods, &s.CFSThrottled, &s.CFSThrottledTime)
	case fCPUQuota:
		// -1 (no quota) is not an unsigned number.
		_, quota := parseUint(b)
		r.throttleHot = quota
	case fMemUsage:
		s.MemoryUsage, err = parseSingle(b)
	case fMemLimit:
		if s.MemoryLimit, err = parseSingle(b); err == nil && !r.v2 && s.MemoryLimit >= v1Unlimited {
			s.MemoryLimit = Unlimited
		}
	case fMemStat:
		keys := keysMemStatV1
		if r.v2 {
			keys = keysMemStatV2
		}
		err = parseFields(b, keys, &s.MemoryInactiveFile, &s.MemoryRSS, &s.MemoryCache)
	case fBlkBytes:
		if r.v2 {
			s.BlkIO, err = parseIOStatV2(b, s.BlkIO)
		} else {
			s.BlkIO, err = parseBlkioV1(b, s.BlkIO, true)
		}
	case fBlkOps:
		s.BlkIO, err = parseBlkioV1(b, s.BlkIO, false)
	case fPids:
		s.Pids, err = parseSingle(b)
	case fPidsMax:
		s.PidsMax, err = parseSingle(b)
	case fFreezer:
		if r.v2 {
			var frozen uint64
			err = parseFields(b, keysEvents, &frozen)
			s.Frozen = frozen == 1
			break
		}
		s.Frozen, err = parseFreezerV1(b)
	case fPSICPU, fPSIMem, fPSIIO:
		dst := [...]*PSI{&s.CPUPressure, &s.MemoryPressure, &s.IOPressure}[slot-fPSICPU]
		if err = parsePSI(b, dst); err == nil {
			s.HasPSI = true
		}
	}
	return err
}

// cpuStatV2 stores one line of v2 cpu.stat.
func cpuStatV2(s *Stats, k []byte, v uint64) {
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
}
