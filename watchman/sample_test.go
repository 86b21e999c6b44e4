package watchman

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestNetnsShared: containers in one network namespace share one open
// net/dev, read once per tick; the file closes with the last of them.
func TestNetnsShared(t *testing.T) {
	proc := t.TempDir()
	for _, pid := range []string{"1", "2", "3"} {
		if err := os.MkdirAll(filepath.Join(proc, pid, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(proc, pid, "net"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(pid, name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(proc, pid, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1", "ns/net", "")
	write("3", "ns/net", "") // a namespace of its own
	// pid 4's namespace link cannot be read: its net/dev is its own.
	if err := os.MkdirAll(filepath.Join(proc, "4", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("4", "net/dev", netDevEth0(400, 1))
	if err := os.Link(filepath.Join(proc, "1", "ns/net"), filepath.Join(proc, "2", "ns/net")); err != nil {
		t.Fatal(err) // pid 2 shares pid 1's namespace
	}
	write("1", "net/dev", netDevEth0(100, 1))
	write("2", "net/dev", netDevEth0(999, 1)) // never read: the namespace is open through pid 1
	write("3", "net/dev", netDevEth0(300, 1))

	set := newNetnsSet(proc)
	a, b, c := set.acquire(1), set.acquire(2), set.acquire(3)
	if a == nil || a != b || a == c || len(set.m) != 2 || a.refs != 2 {
		t.Fatalf("namespaces: a=%p b=%p c=%p, %d open, refs %d", a, b, c, len(set.m), a.refs)
	}
	rx := func(n *netns) uint64 {
		t.Helper()
		ifs, err := n.read()
		if err != nil || len(ifs) != 1 {
			t.Fatalf("read: %v %+v", err, ifs)
		}
		return ifs[0].RxBytes
	}
	set.nextTick()
	if got := rx(a); got != 100 {
		t.Errorf("first container: rx %d", got)
	}
	write("1", "net/dev", netDevEth0(150, 1))
	if got := rx(b); got != 100 {
		t.Errorf("second container in the same tick: rx %d, want the tick's reading 100", got)
	}
	set.nextTick()
	if got := rx(b); got != 150 {
		t.Errorf("next tick: rx %d", got)
	}
	if got := rx(c); got != 300 {
		t.Errorf("own namespace: rx %d", got)
	}
	if d := set.acquire(4); d == nil || d == a || d == c || rx(d) != 400 {
		t.Errorf("namespace without a readable link: %p", d)
	} else {
		set.release(d)
	}
	set.release(a)
	if len(set.m) != 2 {
		t.Errorf("closed while still held: %d open", len(set.m))
	}
	set.release(b)
	set.release(c)
	if len(set.m) != 0 {
		t.Errorf("%d namespaces open after the last release", len(set.m))
	}
}

// TestSamplerQuietCarriesOver: a sample whose CPU counter has not moved
// reads only that counter and carries block I/O and network over from the
// last read; one whose counter moved, and every detail sample, read them.
func TestSamplerQuietCarriesOver(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	root, cg, dir := fakeContainerTree(t, id)
	proc := filepath.Join(root, "proc")
	write := func(path, data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(proc, "4242", "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(filepath.Join(proc, "4242", "net", "dev"), netDevEth0(100, 1))
	cpu := func(usec int) {
		write(filepath.Join(dir, "cpu.stat"), fmt.Sprintf("usage_usec %d\nuser_usec 1\nsystem_usec 1\n", usec))
	}
	io := func(rbytes int) {
		write(filepath.Join(dir, "io.stat"), fmt.Sprintf("8:0 rbytes=%d wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n", rbytes))
	}
	cpu(1000)
	io(4096)

	nets := newNetnsSet(proc)
	sm, err := openSampler(proc, cg, 4242, nets, cadence{pressure: 100, detail: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer sm.close()
	steps := []struct {
		name            string
		cpuUsec, rb, rx int // the files before the sample
		wantQuiet       bool
		wantRB, wantRx  uint64
	}{
		{"first sample reads everything", 1000, 4096, 100, false, 4096, 100},
		{"CPU still: block I/O and network carried over", 1000, 8192, 200, true, 4096, 100},
		{"CPU moved: everything read", 1001, 12288, 300, false, 12288, 300},
		{"CPU still again", 1001, 16384, 400, true, 12288, 300},
		{"detail sample: everything read although CPU is still", 1001, 20480, 500, false, 20480, 500},
	}
	var s Sample
	at := t0
	for _, st := range steps {
		cpu(st.cpuUsec)
		io(st.rb)
		write(filepath.Join(proc, "4242", "net", "dev"), netDevEth0(st.rx, 1))
		nets.nextTick()
		at = at.Add(time.Second)
		quiet, err := sm.read(&s, at)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		var rb uint64
		for _, d := range s.Cgroup.BlkIO {
			rb += d.ReadBytes
		}
		var rx uint64
		if s.HasNet && len(s.Net) == 1 {
			rx = s.Net[0].RxBytes
		}
		if quiet != st.wantQuiet || rb != st.wantRB || rx != st.wantRx || !s.HasNet {
			t.Errorf("%s: quiet %v, read bytes %d, rx %d, has net %v; want %v, %d, %d, true",
				st.name, quiet, rb, rx, s.HasNet, st.wantQuiet, st.wantRB, st.wantRx)
		}
	}
}
