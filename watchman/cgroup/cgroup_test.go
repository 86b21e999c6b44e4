package cgroup

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

const fixtureID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// TestFixtures resolves and reads the cgroup of pid 4242 in each fixture
// (real file layouts of v1/v2 × cgroupfs/systemd drivers) and compares the
// result with its golden file.
func TestFixtures(t *testing.T) {
	type fixture struct {
		name     string
		unified  bool
		v1Ctrls  []string
		cgroupID string
		// procDir, when set, replaces the fixture's proc directory: the
		// cgroupns-* ones hold /proc/<pid>/cgroup as an agent in its own
		// cgroup namespace (a sibling container) reads it, with paths
		// relative to its namespace root (/../<id>). They resolve to the
		// same files and figures.
		procDir string
	}
	fixtures := []fixture{
		{"v1-cgroupfs", false, []string{"blkio", "cpu", "cpuacct", "freezer", "memory", "pids"}, "/docker/" + fixtureID, ""},
		{"v1-systemd", false, []string{"blkio", "cpu", "cpuacct", "freezer", "memory", "pids"}, "/system.slice/docker-" + fixtureID + ".scope", ""},
		{"v2-cgroupfs", true, nil, "/docker/" + fixtureID, ""},
		{"v2-systemd", true, nil, "/system.slice/docker-" + fixtureID + ".scope", ""},
	}
	for _, f := range fixtures[:4] {
		f.procDir = filepath.Join("testdata", "cgroupns-"+f.name, "proc")
		fixtures = append(fixtures, f)
	}
	for _, tc := range fixtures {
		name := tc.name
		if tc.procDir != "" {
			name = "cgroupns-" + tc.name
		}
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", tc.name)
			root := filepath.Join(dir, "sys/fs/cgroup")
			procDir := filepath.Join(dir, "proc")
			if tc.procDir != "" {
				procDir = tc.procDir
			}
			p, err := ForPID(procDir, root, 4242)
			if err != nil {
				t.Fatal(err)
			}
			if p.Unified() != tc.unified {
				t.Errorf("Unified() = %v", p.Unified())
			}
			var ctrls []string
			for c := range p.V1 {
				ctrls = append(ctrls, c)
			}
			if len(ctrls) != len(tc.v1Ctrls) {
				t.Errorf("v1 controllers %v, want %v", p.V1, tc.v1Ctrls)
			}
			for _, c := range tc.v1Ctrls {
				if _, ok := p.V1[c]; !ok {
					t.Errorf("controller %s not resolved: %v", c, p.V1)
				}
			}
			id, err := ContainerIDOfPID(procDir, 4242)
			if err != nil || id != fixtureID {
				t.Errorf("ContainerIDOfPID = %q, %v", id, err)
			}
			r, s := openRead(t, p)
			// A second read into the same Stats gives the same figures
			// (files are re-read from offset 0).
			var again Stats
			if err := r.Read(&again); err != nil || !reflect.DeepEqual(s, again) {
				t.Fatalf("second read differs: %v\n%+v\n%+v", err, s, again)
			}
			got, _ := json.MarshalIndent(s, "", "  ")
			golden := filepath.Join("testdata", tc.name+".golden.json")
			if *update && tc.procDir == "" {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(want) != string(got)+"\n" {
				t.Errorf("stats differ from %s:\n%s", golden, got)
			}
		})
	}
}

// TestFixtureFigures spells out the figures that matter, so the golden
// files cannot silently drift.
func TestFixtureFigures(t *testing.T) {
	read := func(name string) Stats {
		dir := filepath.Join("testdata", name)
		p, err := ForPID(filepath.Join(dir, "proc"), filepath.Join(dir, "sys/fs/cgroup"), 4242)
		if err != nil {
			t.Fatal(err)
		}
		_, s := openRead(t, p)
		return s
	}
	v2 := read("v2-systemd")
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"cpu usage", v2.CPUUsage, 2563412000},
		{"cpu user", v2.CPUUser, 1800312000},
		{"throttled", v2.CFSThrottled, 7},
		{"throttled time", v2.CFSThrottledTime, 35012000},
		{"memory", v2.MemoryUsage, 52441088},
		{"limit", v2.MemoryLimit, Unlimited},
		{"working set", v2.MemoryWorkingSet, 52441088 - 12582912},
		{"pids", v2.Pids, 7},
		{"pids max", v2.PidsMax, 4096},
		{"io psi total", v2.IOPressure.Some.Total, 889123},
		{"nvme read", v2.BlkIO[0].ReadBytes, 19931136},
		{"nvme writes", v2.BlkIO[0].Writes, 101},
	} {
		if c.got != c.want {
			t.Errorf("v2 %s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if v2.Frozen || !v2.HasPSI {
		t.Errorf("v2 frozen=%v psi=%v", v2.Frozen, v2.HasPSI)
	}
	v1 := read("v1-systemd")
	for _, c := range []struct {
		name      string
		got, want uint64
	}{
		{"cpu usage", v1.CPUUsage, 7310452187},
		{"cpu user", v1.CPUUser, 5120000000},
		{"cpu system", v1.CPUSystem, 2030000000},
		{"throttled", v1.CFSThrottled, 33},
		{"memory", v1.MemoryUsage, 104857600},
		{"limit", v1.MemoryLimit, 536870912},
		{"working set", v1.MemoryWorkingSet, 104857600 - 20971520},
		{"rss", v1.MemoryRSS, 58720256},
		{"sda read bytes", v1.BlkIO[0].ReadBytes, 10485760},
		{"sda writes", v1.BlkIO[0].Writes, 64},
		{"pids max", v1.PidsMax, Unlimited},
	} {
		if c.got != c.want {
			t.Errorf("v1 %s = %d, want %d", c.name, c.got, c.want)
		}
	}
	if !v1.Frozen || v1.HasPSI {
		t.Errorf("v1-systemd frozen=%v psi=%v", v1.Frozen, v1.HasPSI)
	}
	if v1c := read("v1-cgroupfs"); !v1c.HasPSI || v1c.MemoryLimit != Unlimited {
		t.Errorf("v1-cgroupfs (hybrid) psi=%v limit=%d", v1c.HasPSI, v1c.MemoryLimit)
	}
}

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []Entry
		wantErr bool
	}{
		{"0::/docker/abc\n", []Entry{{0, nil, "/docker/abc"}}, false},
		{"4:cpu,cpuacct:/x\n1:name=systemd:/y", []Entry{{4, []string{"cpu", "cpuacct"}, "/x"}, {1, []string{"name=systemd"}, "/y"}}, false},
		{"0::/\n", []Entry{{0, nil, "/"}}, false},
		{"", nil, true},
		{"x::/a", nil, true},
		{"1:cpu", nil, true},
		{"1:cpu:relative", nil, true},
		{"-1::/a", nil, true},
	} {
		got, err := ParseProcCgroup([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestContainerID(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"/docker/" + fixtureID, fixtureID},
		{"/system.slice/docker-" + fixtureID + ".scope", fixtureID},
		{"/mycgroup/" + fixtureID, fixtureID},
		{"/kubepods/burstable/pod1/" + fixtureID, fixtureID},
		{"/user.slice/user-0.slice/session-1.scope", ""},
		{"/", ""},
		{"/docker/" + fixtureID[:63], ""},
	} {
		if got := ContainerID(tc.path); got != tc.want {
			t.Errorf("ContainerID(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func TestParsers(t *testing.T) {
	var p PSI
	if err := parsePSI([]byte("some avg10=1.50 avg60=0.40 avg300=0.10 total=889123\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"), &p); err != nil {
		t.Fatal(err)
	}
	if p.Some.Avg10 != 1.5 || p.Some.Total != 889123 || p.Full.Total != 5 {
		t.Errorf("psi %+v", p)
	}
	for _, bad := range []string{"", "some avg10=x total=1", "some total=-1", "some avg10"} {
		if err := parsePSI([]byte(bad), &PSI{}); err == nil {
			t.Errorf("parsePSI(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{{"12\n", 12, true}, {"max\n", Unlimited, true}, {"", 0, false}, {"1x", 0, false}, {"18446744073709551616", 0, false}, {"18446744073709551615", 1<<64 - 1, true}} {
		got, ok := parseUint([]byte(tc.in))
		if ok != tc.ok || got != tc.want {
			t.Errorf("parseUint(%q) = %d, %v", tc.in, got, ok)
		}
	}
	devs, err := parseBlkioV1([]byte("8:0 Read 10\n8:0 Write 20\n8:0 Total 30\nTotal 30\n"), nil, true)
	if err != nil || len(devs) != 1 || devs[0].ReadBytes != 10 || devs[0].WriteBytes != 20 {
		t.Errorf("blkio v1 %+v %v", devs, err)
	}
	devs, err = parseIOStatV2([]byte("8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0\n"), devs[:0])
	if err != nil || devs[0] != (BlkDev{8, 0, 1, 2, 3, 4}) {
		t.Errorf("io.stat %+v %v", devs, err)
	}
	if _, err := parseIOStatV2([]byte("8:x rbytes=1\n"), nil); err == nil {
		t.Error("bad device accepted")
	}
}

func TestVanishedErrors(t *testing.T) {
	for _, err := range []error{syscall.ENODEV, syscall.ESRCH, os.ErrNotExist, fmt.Errorf("read: %w", syscall.ENOENT)} {
		if !errors.Is(classify(err), ErrVanished) {
			t.Errorf("%v not classified as vanished", err)
		}
	}
	if errors.Is(classify(syscall.EACCES), ErrVanished) {
		t.Error("EACCES classified as vanished")
	}
	// A missing required file is a vanished cgroup, not a crash.
	_, err := Open(Paths{V2: t.TempDir()})
	if !errors.Is(err, ErrVanished) {
		t.Errorf("Open on an empty dir: %v", err)
	}
}

func TestResolveNothing(t *testing.T) {
	if _, err := Resolve(t.TempDir(), []Entry{{0, nil, "/docker/x"}}); err == nil {
		t.Error("resolved a cgroup that does not exist")
	}
}

func BenchmarkReadV1(b *testing.B) {
	benchRead(b, "v1-cgroupfs")
}

func BenchmarkReadV2(b *testing.B) {
	benchRead(b, "v2-systemd")
}

func benchRead(b *testing.B, name string) {
	dir := filepath.Join("testdata", name)
	p, err := ForPID(filepath.Join(dir, "proc"), filepath.Join(dir, "sys/fs/cgroup"), 4242)
	if err != nil {
		b.Fatal(err)
	}
	r, err := Open(p)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	var s Stats
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Read(&s); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReadHotReusesDetail(t *testing.T) {
	src := filepath.Join("testdata", "v2-cgroupfs", "sys/fs/cgroup", "docker", fixtureID)
	dir := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644)
	}
	r, err := Open(Paths{V2: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var full, hot Stats
	if err := r.ReadHot(&hot); err != nil { // first call is a full read
		t.Fatal(err)
	}
	if err := r.Read(&full); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(full, hot) {
		t.Fatalf("hot %+v\nfull %+v", hot, full)
	}
	os.WriteFile(filepath.Join(dir, "memory.current"), []byte("60000000\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "pids.current"), []byte("99\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "io.stat"), []byte("259:0 rbytes=20000000 wbytes=4096000 rios=700 wios=101 dbytes=0 dios=0\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "io.pressure"), []byte("some avg10=0.00 avg60=0.00 avg300=0.00 total=900000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"), 0o644)
	if err := r.ReadHot(&hot); err != nil {
		t.Fatal(err)
	}
	// Hot files are re-read; the others (PSI too) come from the last full
	// read.
	if hot.BlkIO[0].ReadBytes != 20000000 || hot.IOPressure.Some.Total != 889123 {
		t.Errorf("hot read missed hot files: %+v %+v", hot.BlkIO[0], hot.IOPressure)
	}
	if hot.MemoryUsage != 52441088 || hot.MemoryWorkingSet != 52441088-12582912 || hot.Pids != 7 || !hot.HasPSI || hot.CPUPressure.Some.Total != 120034 {
		t.Errorf("hot read: usage %d ws %d pids %d psi %v", hot.MemoryUsage, hot.MemoryWorkingSet, hot.Pids, hot.HasPSI)
	}
	if err := r.Read(&full); err != nil || full.Pids != 99 || full.MemoryUsage != 60000000 {
		t.Errorf("full read: pids %d mem %d %v", full.Pids, full.MemoryUsage, err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = r.ReadHot(&hot) }); n != 0 {
		t.Errorf("%v allocations per hot read", n)
	}
}

// TestLookupDirCgroupNamespace: paths relative to the reader's cgroup
// namespace root resolve against the host hierarchy, and nothing else does.
func TestLookupDirCgroupNamespace(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"docker/aaa", "docker/bbb", "kubepods/pod1/ccc", "x/dup", "y/dup"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		path, want string // want "" when it must not resolve
	}{
		{"/docker/aaa", "docker/aaa"},
		{"/../bbb", "docker/bbb"},                // sibling of the agent in /docker/<agent>
		{"/../../pod1/ccc", "kubepods/pod1/ccc"}, // agent two levels down elsewhere
		{"/../docker/aaa", "docker/aaa"},
		{"/../..", ""},     // an ancestor: not a container
		{"/../dup", ""},    // two candidates at the same depth
		{"/../nope", ""},   // does not exist
		{"/../a/../b", ""}, // never produced by the kernel: refused
		{"/..x/aaa", ""},
	} {
		got, ok := lookupDir(base, tc.path)
		want := ""
		if tc.want != "" {
			want = filepath.Join(base, tc.want)
		}
		if (tc.want != "") != ok || got != want && ok {
			t.Errorf("lookupDir(%q) = %q, %v; want %q", tc.path, got, ok, want)
		}
	}
}

// openRead opens the cgroup at p, closed when the test ends, and reads it
// once.
func openRead(t *testing.T, p Paths) (*Reader, Stats) {
	t.Helper()
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var s Stats
	if err := r.Read(&s); err != nil {
		t.Fatal(err)
	}
	return r, s
}

// copyFixture copies testdata/<name> into a temporary directory and returns
// the Paths of its pid 4242 there.
func copyFixture(t *testing.T, name string) Paths {
	t.Helper()
	src := filepath.Join("testdata", name)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ForPID(filepath.Join(dst, "proc"), filepath.Join(dst, "sys/fs/cgroup"), 4242)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReadPartsV1 checks which files each part re-reads on a v1 host: the
// throttling counters only while a CFS quota is set, the non-recursive
// blkio files for a cgroup without children (the recursive ones once it
// has one), memory and I/O PSI with Pressure, the rest with Detail.
func TestReadPartsV1(t *testing.T) {
	const dev = "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n"
	const devTree = "8:0 Read 40960\n8:0 Write 81920\n8:0 Sync 0\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 122880\nTotal 122880\n"
	const psi = "some avg10=0.00 avg60=0.00 avg300=0.00 total=777\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n"
	type check func(t *testing.T, s Stats)
	for _, tc := range []struct {
		name  string
		quota string // cpu.cfs_quota_us
		child bool   // make a child cgroup in blkio before the second read
		parts Part
		want  check
	}{
		{"no quota: activity keeps cpu.stat", "-1", false, Activity, func(t *testing.T, s Stats) {
			if s.CPUUsage != 99000 || s.CFSThrottled != 0 || s.BlkIO[0].ReadBytes != 4096 {
				t.Errorf("usage %d throttled %d blkio %+v", s.CPUUsage, s.CFSThrottled, s.BlkIO)
			}
			if s.MemoryUsage != 385024 || s.MemoryPressure.Some.Total != 0 {
				t.Errorf("memory %d or PSI %d re-read", s.MemoryUsage, s.MemoryPressure.Some.Total)
			}
		}},
		{"no quota: detail reads cpu.stat", "-1", false, Detail, func(t *testing.T, s Stats) {
			if s.CFSThrottled != 3 || s.MemoryUsage != 1000 || s.CPUUsage != 51597306 || s.BlkIO[0].Reads != 2 {
				t.Errorf("throttled %d memory %d usage %d blkio %+v", s.CFSThrottled, s.MemoryUsage, s.CPUUsage, s.BlkIO)
			}
		}},
		{"quota: activity reads cpu.stat", "50000", false, Activity, func(t *testing.T, s Stats) {
			if s.CFSThrottled != 3 || s.MemoryUsage != 385024 {
				t.Errorf("throttled %d memory %d", s.CFSThrottled, s.MemoryUsage)
			}
		}},
		{"pressure", "-1", false, Pressure, func(t *testing.T, s Stats) {
			if s.MemoryPressure.Some.Total != 777 || s.IOPressure.Some.Total != 777 || s.CPUPressure.Some.Total != 101021 || s.CPUUsage != 51597306 {
				t.Errorf("psi mem %d io %d cpu %d usage %d", s.MemoryPressure.Some.Total, s.IOPressure.Some.Total, s.CPUPressure.Some.Total, s.CPUUsage)
			}
		}},
		{"child cgroup: recursive blkio after a detail read", "-1", true, Detail | Activity, func(t *testing.T, s Stats) {
			if s.BlkIO[0].ReadBytes != 40960 || s.BlkIO[0].Reads != 20 {
				t.Errorf("blkio %+v", s.BlkIO)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := copyFixture(t, "v1-cgroupfs")
			blk, cpu := p.V1["blkio"], p.V1["cpu"]
			write := func(dir, name, data string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(cpu, "cpu.cfs_quota_us", tc.quota+"\n")
			write(blk, "blkio.throttle.io_service_bytes", dev)
			write(blk, "blkio.throttle.io_serviced", "8:0 Read 2\n8:0 Write 1\nTotal 3\n")
			write(blk, "blkio.throttle.io_service_bytes_recursive", devTree)
			write(blk, "blkio.throttle.io_serviced_recursive", "8:0 Read 20\n8:0 Write 10\nTotal 30\n")
			r, s := openRead(t, p)
			write(p.V1["cpuacct"], "cpuacct.usage", "99000\n")
			write(cpu, "cpu.stat", "nr_periods 9\nnr_throttled 3\nthrottled_time 100\n")
			write(p.V1["memory"], "memory.usage_in_bytes", "1000\n")
			write(p.V2, "memory.pressure", psi)
			write(p.V2, "io.pressure", psi)
			if tc.child {
				if err := os.Mkdir(filepath.Join(blk, "child"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := r.ReadParts(&s, Detail); err != nil { // notices the child
					t.Fatal(err)
				}
			}
			if err := r.ReadParts(&s, tc.parts); err != nil {
				t.Fatal(err)
			}
			tc.want(t, s)
			if n := testing.AllocsPerRun(20, func() { _ = r.ReadParts(&s, tc.parts) }); n != 0 {
				t.Errorf("%v allocations per read", n)
			}
		})
	}
}
