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
	dev := func(rx int) string {
		return "Inter-|   Receive                                                |  Transmit\n" +
			" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
			fmt.Sprintf("  eth0: %d 1 0 0 0 0 0 0 200 2 0 0 0 0 0 0\n", rx)
	}
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
	write("4", "net/dev", dev(400))
	if err := os.Link(filepath.Join(proc, "1", "ns/net"), filepath.Join(proc, "2", "ns/net")); err != nil {
		t.Fatal(err) // pid 2 shares pid 1's namespace
	}
	write("1", "net/dev", dev(100))
	write("2", "net/dev", dev(999)) // never read: the namespace is open through pid 1
	write("3", "net/dev", dev(300))

	set := newNetnsSet(proc)
	a, b, c := set.acquire(1), set.acquire(2), set.acquire(3)
	if a == nil || a != b || a == c || len(set.m) != 2 || a.refs != 2 {
		t.Fatalf("namespaces: a=%p b=%p c=%p, %d open, refs %d", a, b, c, len(set.m), a.refs)
	}
	rx := func(n *netns, at time.Time) uint64 {
		t.Helper()
		ifs, err := n.read(at)
		if err != nil || len(ifs) != 1 {
			t.Fatalf("read: %v %+v", err, ifs)
		}
		return ifs[0].RxBytes
	}
	tick := t0
	if got := rx(a, tick); got != 100 {
		t.Errorf("first container: rx %d", got)
	}
	write("1", "net/dev", dev(150))
	if got := rx(b, tick); got != 100 {
		t.Errorf("second container in the same tick: rx %d, want the tick's reading 100", got)
	}
	tick = tick.Add(time.Second)
	if got := rx(b, tick); got != 150 {
		t.Errorf("next tick: rx %d", got)
	}
	if got := rx(c, tick); got != 300 {
		t.Errorf("own namespace: rx %d", got)
	}
	if d := set.acquire(4); d == nil || d == a || d == c || rx(d, tick) != 400 {
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
