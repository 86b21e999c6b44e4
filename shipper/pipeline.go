package shipper

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// logReader ships one container's logs. The json-file reader and the
// Docker-logs-API reader are the two kinds; both build, hand over and
// acknowledge their batches through a batch (batch.go).
type logReader interface {
	// run reads until ctx ends or the removed container is drained.
	run(ctx context.Context)
	// acked handles the acknowledgement of event idx.
	acked(idx uint64, outcome esout.Outcome)
	// markRemoved says the container is gone: drain what is left.
	markRemoved(at time.Time)
	// isRemoved reports whether markRemoved was called.
	isRemoved() bool
	// describe returns the reader's state for the API.
	describe() any
}

// checkpointStore holds the acknowledged positions; *checkpoint.Store
// satisfies it.
type checkpointStore interface {
	Get(container string) (checkpoint.Entry, bool)
	Set(container string, e checkpoint.Entry)
	Delete(container string)
}

// writer is the part of the output a reader uses.
type writer interface {
	Write(ctx context.Context, docs []esout.Doc, ack func([]esout.Result)) error
}

// collaborators are what a reader works with: it gets them, not the
// shipper.
type collaborators struct {
	out    writer
	store  checkpointStore
	budget *budget
	m      *metrics
	// ack is the callback the output acknowledges with; it routes results
	// to their readers by slot.
	ack func([]esout.Result)
	// gap writes a gap event for the container (best effort).
	gap func(ctx context.Context, g gapEvent)
	log *slog.Logger
}

// readerParams are the settings a reader needs, from the shipper's config.
type readerParams struct {
	batchBytes    int64
	maxEventBytes int
	pollInterval  time.Duration
	removalGrace  time.Duration
}

// lifecycle is the removal state a reader shares with the shipper's loop.
type lifecycle struct {
	removed   atomic.Bool
	removedAt atomic.Int64
}

func (l *lifecycle) markRemoved(at time.Time) {
	if l.removed.Load() {
		return
	}
	l.removedAt.Store(at.UnixNano())
	l.removed.Store(true)
}

func (l *lifecycle) isRemoved() bool { return l.removed.Load() }

// graceDeadline is when a removed container's reader stops waiting for its
// last acknowledgements.
func (l *lifecycle) graceDeadline(grace time.Duration) time.Time {
	return time.Unix(0, l.removedAt.Load()).Add(grace)
}
