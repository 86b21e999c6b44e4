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
	// expire tells a removed container's reader to give up at once, as
	// when its removal grace has passed (too many removed readers).
	expire()
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
// It is made by newLifecycle.
type lifecycle struct {
	removed    atomic.Bool
	removedAt  atomic.Int64
	expiredSet atomic.Bool
	// expired is closed by expire.
	expired chan struct{}
}

// newLifecycle returns the state of a reader whose container is present.
func newLifecycle() lifecycle { return lifecycle{expired: make(chan struct{})} }

func (l *lifecycle) markRemoved(at time.Time) {
	if l.removed.Load() {
		return
	}
	l.removedAt.Store(at.UnixNano())
	l.removed.Store(true)
}

func (l *lifecycle) isRemoved() bool { return l.removed.Load() }

// expire ends the removal grace of a removed container's reader now.
func (l *lifecycle) expire() {
	if l.expiredSet.CompareAndSwap(false, true) {
		close(l.expired)
	}
}

// isExpired reports whether expire was called.
func (l *lifecycle) isExpired() bool { return l.expiredSet.Load() }

// graceOver reports whether a removed container's reader must stop
// waiting: its removal grace has passed or it was told to give up.
func (l *lifecycle) graceOver(grace time.Duration) bool {
	return l.isExpired() || (l.isRemoved() && time.Now().After(l.graceDeadline(grace)))
}

// graceDeadline is when a removed container's reader stops waiting for its
// last acknowledgements.
func (l *lifecycle) graceDeadline(grace time.Duration) time.Time {
	return time.Unix(0, l.removedAt.Load()).Add(grace)
}

// whyGiveUp says why a removed container's reader gives up, for its logs
// and gap events.
func (l *lifecycle) whyGiveUp() string {
	if l.isExpired() {
		return "to bound the removed containers whose log files are held open (max-removed-readers)"
	}
	return "after the removal grace"
}
