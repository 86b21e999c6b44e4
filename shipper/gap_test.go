package shipper

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestGapAndHeadroomUnderBackpressure: the output accepts documents but
// never acknowledges them (Elasticsearch down), so the reader waits on the
// in-flight budget while Docker rotates; a generation deleted before it
// could be read is reported as a gap with its size, and the headroom
// warning fires first. It runs on synctest's fake clock: the waits for the
// reader to notice rotations take no real time.
func TestGapAndHeadroomUnderBackpressure(t *testing.T) {
	synctest.Test(t, testGapAndHeadroomUnderBackpressure)
}

func testGapAndHeadroomUnderBackpressure(t *testing.T) {
	e := newEnv(t)
	id := "ffffffffffff0000000000000000000000000000000000000000000000000006"
	base := e.addContainer(id, nil)
	c, _ := e.inv.Get(id)
	c.LogConfig = map[string]string{"max-size": "2k", "max-file": "2"}
	e.cfgMut = func(c *Config) {
		c.BatchBytes, c.MaxInflightBytes, c.MaxDeletedFiles = 1024, 2048, 0
	}
	lines := func(tag string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s line %d\n", tag, i))
		}
		return out
	}
	rotate := func(next string, n int) {
		_ = os.Remove(base + ".1")
		if err := os.Rename(base, base+".1"); err != nil {
			t.Fatal(err)
		}
		appendLines(t, base, lines(next, n)...)
	}
	appendLines(t, base, lines("a", 50)...)
	out := newFakeOutput()
	out.stopAcks = true
	s, stop := e.start(out)
	defer stop()
	short := id[:12]
	poll.UntilTrue(t, 20*time.Second, "reader blocked on the budget", func() bool { return s.budget.inUse() > 0 })
	rotate("b", 20)
	time.Sleep(1500 * time.Millisecond) // the waiting reader sees and holds b
	st, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	bSize := st.Size()
	rotate("c", 20) // a (being read) deleted, b -> .1
	time.Sleep(1500 * time.Millisecond)
	rotate("d", 20) // b deleted unread: over the bound of 0 held deleted files
	poll.UntilTrue(t, 20*time.Second, "gap reported", func() bool { return testutil.ToFloat64(s.m.gaps.WithLabelValues(short)) >= 1 })
	if lost := testutil.ToFloat64(s.m.lostBytes.WithLabelValues(short)); lost != float64(bSize) {
		t.Fatalf("lost bytes = %v, want %d (the size of the deleted generation)", lost, bSize)
	}
	if w := testutil.ToFloat64(s.m.headroomWarns.WithLabelValues(short)); w < 1 {
		t.Fatalf("no rotation headroom warning (unread data exceeded 80%% of max-size x max-file)")
	}
}

// TestRemovedReadersBoundedByCount: while Elasticsearch is down, removed
// containers' readers hold their deleted log files open until the removal
// grace passes. With more removed readers than max-removed-readers, the
// longest-removed give up at once, as when their grace passes: the one
// already draining its handed-over events stops waiting, the one still
// reading releases its files and reports its unread bytes as a gap, and
// the newest stay. It runs on synctest's fake clock, so "at once" is
// checked against an hour-long grace without waiting for it.
func TestRemovedReadersBoundedByCount(t *testing.T) {
	synctest.Test(t, testRemovedReadersBoundedByCount)
}

func testRemovedReadersBoundedByCount(t *testing.T) {
	e := newEnv(t)
	drainer := "d1d1d1d1d1d10000000000000000000000000000000000000000000000000001"
	busy := []string{
		"b1b1b1b1b1b10000000000000000000000000000000000000000000000000002",
		"b2b2b2b2b2b20000000000000000000000000000000000000000000000000003",
		"b3b3b3b3b3b30000000000000000000000000000000000000000000000000004",
	}
	paths := map[string]string{drainer: e.addContainer(drainer, nil)}
	appendLines(t, paths[drainer], "last words 1\n", "last words 2\n")
	e.cfgMut = func(c *Config) {
		c.BatchBytes, c.MaxInflightBytes = 1024, 4096
		c.RemovalGrace, c.MaxRemovedReaders = time.Hour, 2
	}
	out := newFakeOutput()
	out.stopAcks = true
	s, stop := e.start(out)
	defer stop()
	remove := func(id string) {
		if err := os.RemoveAll(filepath.Dir(paths[id])); err != nil {
			t.Fatal(err)
		}
		e.inv.Remove(id)
	}
	gapsOf := func(id string) (n int) {
		out.mu.Lock()
		defer out.mu.Unlock()
		for _, g := range out.gaps {
			if strings.Contains(g, id) {
				n++
			}
		}
		return n
	}
	// The drainer hands its two lines over; once removed it waits for
	// their acknowledgements.
	poll.UntilTrue(t, 20*time.Second, "the drainer's lines handed over", func() bool { return s.budget.inUse() > 0 })
	time.Sleep(2 * time.Second)
	remove(drainer)
	time.Sleep(2 * time.Second)
	// The busy ones wait on the budget with most of their lines unread.
	for _, id := range busy {
		paths[id] = e.addContainer(id, nil)
		var lines []string
		for i := range 400 {
			lines = append(lines, fmt.Sprintf("%s held line %d\n", id[:4], i))
		}
		appendLines(t, paths[id], lines...)
	}
	time.Sleep(2 * time.Second)
	// Two removed readers: within the bound.
	remove(busy[0])
	time.Sleep(2 * time.Second)
	if n := testutil.ToFloat64(s.m.readers); n != 4 {
		t.Fatalf("readers = %v with 2 removed containers (the bound), want all 4", n)
	}
	// A third removal: the drainer (removed first) gives up at once.
	remove(busy[1])
	start := time.Now()
	poll.UntilTrue(t, 30*time.Second, "the longest-removed reader to give up", func() bool {
		return testutil.ToFloat64(s.m.readers) == 3
	})
	if d := time.Since(start); d > refreshEvery {
		t.Errorf("the draining reader gave up %v after the removal over the bound, want at once", d)
	}
	if n := gapsOf(drainer); n != 0 {
		t.Errorf("%d gap events for the drainer, which had handed over everything", n)
	}
	// A fourth: the busy reader removed first gives up, releases its files
	// and reports what it had not read as a gap.
	remove(busy[2])
	start = time.Now()
	poll.UntilTrue(t, 30*time.Second, "the next longest-removed reader to give up", func() bool {
		return testutil.ToFloat64(s.m.readers) == 2
	})
	if d := time.Since(start); d > refreshEvery {
		t.Errorf("the waiting reader gave up %v after the removal over the bound, want at once", d)
	}
	if n := gapsOf(busy[0]); n != 1 {
		t.Fatalf("%d gap events for %s, want 1", n, busy[0][:12])
	}
	if lost := gapBytes(t, out, busy[0]); lost <= 0 {
		t.Fatalf("gap event of %s reports %d unread bytes, want > 0", busy[0][:12], lost)
	}
	// The two most recently removed keep draining until their grace.
	for _, id := range busy[1:] {
		if n := gapsOf(id); n != 0 {
			t.Errorf("%d gap events for %s, removed within the bound", n, id[:12])
		}
	}
}

// gapBytes returns heartwood.gap.bytes of the gap event of container id
// (-1 without one).
func gapBytes(t *testing.T, out *fakeOutput, id string) int64 {
	t.Helper()
	out.mu.Lock()
	defer out.mu.Unlock()
	for _, g := range out.gaps {
		var doc struct {
			Container struct{ ID string }
			Heartwood struct{ Gap struct{ Bytes *int64 } }
		}
		if err := json.Unmarshal([]byte(g), &doc); err != nil {
			t.Fatalf("gap event %q: %v", g, err)
		}
		if doc.Container.ID == id && doc.Heartwood.Gap.Bytes != nil {
			return *doc.Heartwood.Gap.Bytes
		}
	}
	return -1
}
