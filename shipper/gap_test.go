package shipper

import (
	"fmt"
	"os"
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
