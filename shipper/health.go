package shipper

import (
	"github.com/heartwood-ops/heartwood/internal/promvalue"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// Health is the shipper's part of the agent's health document.
type Health struct {
	// LagSeconds is the largest, over the containers followed, of now
	// minus the Docker timestamp of the newest acknowledged line.
	LagSeconds float64
	// BehindBytes is log data not yet acknowledged by Elasticsearch: read
	// and in flight, plus unread in the containers' log files.
	BehindBytes int64
	// Running totals since the shipper started: send attempts retried,
	// documents dead-lettered, dead letters rejected too, gaps and the
	// log bytes they lost.
	Retries, DeadLetters, DeadLetterFailures, Gaps, LostBytes uint64
}

// figurer is the output's running totals; the Elasticsearch writer has
// them.
type figurer interface{ Figures() esout.Figures }

// Health returns the shipper's current figures.
func (s *Shipper) Health() Health {
	h := Health{
		LagSeconds:  promvalue.Max(s.m.lag),
		BehindBytes: int64(promvalue.Sum(s.m.inflightBytes)),
		Gaps:        uint64(promvalue.Sum(s.m.gaps)) + s.m.retiredGaps.Load(),
		LostBytes:   uint64(promvalue.Sum(s.m.lostBytes)) + s.m.retiredLostBytes.Load(),
	}
	s.mu.Lock()
	readers := make([]logReader, 0, len(s.readers)+len(s.removed))
	for _, r := range s.readers {
		readers = append(readers, r)
	}
	readers = append(readers, s.removed...)
	s.mu.Unlock()
	for _, r := range readers {
		if st, ok := r.describe().(readerStatus); ok && st.UnreadBytes > 0 {
			h.BehindBytes += st.UnreadBytes
		}
	}
	if f, ok := s.out.(figurer); ok {
		fig := f.Figures()
		h.Retries, h.DeadLetters, h.DeadLetterFailures = fig.Retried, fig.DeadLettered, fig.DeadLetterFailures
	}
	return h
}
