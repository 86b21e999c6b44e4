package shipper

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// figuringOutput is a fake output with the Elasticsearch writer's totals.
type figuringOutput struct {
	*fakeOutput
	fig esout.Figures
}

func (o figuringOutput) Figures() esout.Figures { return o.fig }

// The health figures count a removed container's gaps and lost bytes after
// its series are deleted, and take the output's totals.
func TestHealthKeepsTotalsOfRemovedContainers(t *testing.T) {
	e := newEnv(t)
	id := "9999999999990000000000000000000000000000000000000000000000000009"
	p := e.containerWithGap(id, "one\n", "two\n")
	out := figuringOutput{newFakeOutput(), esout.Figures{Retried: 3, DeadLettered: 2, DeadLetterFailures: 1}}
	s, stop := e.start(out)
	defer stop()
	poll.UntilTrue(t, 20*time.Second, "2 lines and the gap event", func() bool { return len(out.messages()) == 3 })
	s.m.lostBytes.WithLabelValues(id[:12]).Add(42)
	h := s.Health()
	if h.Gaps != 1 || h.LostBytes != 42 || h.Retries != 3 || h.DeadLetters != 2 || h.DeadLetterFailures != 1 || h.LagSeconds < 0 || h.BehindBytes < 0 {
		t.Errorf("with the container: %+v", h)
	}
	if err := os.RemoveAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	e.inv.Remove(id)
	poll.UntilTrue(t, 20*time.Second, "the removed container's reader to finish", func() bool { return testutil.ToFloat64(s.m.readers) == 0 })
	if h := s.Health(); h.Gaps != 1 || h.LostBytes != 42 || h.BehindBytes != 0 || h.LagSeconds != 0 {
		t.Errorf("after the container was removed: %+v", h)
	}
}

// Lines read and not acknowledged are behind.
func TestHealthBehindBytes(t *testing.T) {
	e := newEnv(t)
	p := e.addContainer("7777777777770000000000000000000000000000000000000000000000000007", nil)
	appendLines(t, p, "one\n", "two\n", "three\n")
	out := newFakeOutput()
	out.stopAcks = true
	s, stop := e.start(out)
	defer stop()
	poll.UntilTrue(t, 20*time.Second, "unacknowledged lines counted as behind", func() bool { return s.Health().BehindBytes > 0 })
}
