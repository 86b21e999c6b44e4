package shipper

import (
	"context"
	"encoding/base64"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/ecs"
	"github.com/heartwood-ops/heartwood/shipper/esout"
	"github.com/heartwood-ops/heartwood/shipper/jsonlog"
	"github.com/heartwood-ops/heartwood/shipper/logline"
)

// refreshEvery is how often a reader waiting for budget looks at its source
// (rotation, headroom, gaps) and how often a busy reader refreshes.
const refreshEvery = time.Second

// batch is the half of a reader that both kinds share: it encodes events
// into a batch, takes the batch's bytes from the in-flight budget, hands it
// to the output, and turns acknowledgements into checkpoints, metrics and
// lag. Only the reader's goroutine calls its methods, except acked.
type batch struct {
	batchConfig
	lifecycle
	// appendID appends the raw (unencoded) _id of the event to dst.
	appendID func(dst []byte, l *logline.Line) []byte
	// waiting is called about once a second while the budget is full.
	waiting func(ctx context.Context)
	// abandon reports what a removed container loses when its reader
	// gives up (see acquire).
	abandon func(ctx context.Context)
	// abandoned is set once the reader gave up.
	abandoned bool

	trk tracker
	seq uint64

	docs     []esout.Doc
	pend     []pendingDoc
	slab     []byte
	ids      []byte
	idEnds   []int
	rawID    []byte
	nEmit    int   // events emitted since the last resume
	reserved int64 // budget taken for the batch being built
	bytesIn  int64
	// sizes of the previous batch, to size the next one
	slabHint, docsHint int
}

// batchConfig is what a batch is built from.
type batchConfig struct {
	c     collaborators
	p     readerParams
	id    string // container ID
	short string // its short form, the metrics' container label
	slot  uint32
	index string // the data stream
	meta  *ecs.Meta
	json  bool
}

type pendingDoc struct {
	size int64
	cp   checkpoint.Entry
}

// restore starts from the container's checkpoint, if it has one.
func (b *batch) restore() (checkpoint.Entry, bool) {
	cp, ok := b.c.store.Get(b.id)
	if ok {
		b.seq = cp.Seq
		b.trk.cp, b.trk.hasCP = cp, true
	}
	return cp, ok
}

// emit encodes one event into the batch. Its resume point is set by resume
// once the record that completed it is fully processed.
func (b *batch) emit(ctx context.Context, l *logline.Line) {
	ev := ecs.Event{Line: l, Seq: b.seq}
	if b.json {
		res, ok, err := jsonlog.Decode(l.Text)
		switch {
		case err != nil:
			ev.Tags = []string{"json_error"}
		case ok:
			ev.Message, ev.Level, ev.Fields = res.Message, res.Level, res.Fields
			if ev.Message == nil {
				ev.Message = []byte{}
			}
		}
	}
	b.seq++
	if l.Truncated {
		b.c.m.truncated.Inc()
	}
	// Body, then the raw text for the dead-letter stream, in one slab that
	// is sized for a whole batch (it is handed to the output with it).
	if b.slab == nil {
		// Memory for the batch comes from the in-flight budget before it
		// is built, so that readers building batches are bounded too.
		b.reserve(ctx, b.p.batchBytes)
		// Sized from the previous batch: busy readers get whole-batch
		// slabs (no regrowth), mostly idle ones small ones.
		size := min(max(b.slabHint+b.slabHint/4, 4<<10), int(b.p.batchBytes)+8<<10)
		b.slab = make([]byte, 0, size)
		b.docs = make([]esout.Doc, 0, max(b.docsHint, 16))
	}
	off := len(b.slab)
	b.slab = b.meta.Append(b.slab, &ev)
	bodyEnd := len(b.slab)
	b.slab = append(b.slab, l.Text...)
	b.rawID = b.appendID(b.rawID[:0], l)
	b.ids = base64.RawURLEncoding.AppendEncode(b.ids, b.rawID)
	b.idEnds = append(b.idEnds, len(b.ids))
	b.docs = append(b.docs, esout.Doc{Index: b.index,
		Body: b.slab[off:bodyEnd:bodyEnd], Raw: b.slab[bodyEnd:len(b.slab):len(b.slab)]})
	size := int64(len(b.slab) - off)
	b.pend = append(b.pend, pendingDoc{size: size, cp: checkpoint.Entry{Time: l.Time}})
	b.bytesIn += size
	b.nEmit++
}

// resume gives the events emitted since the last call their resume point:
// set fills in where reading resumes once they are acknowledged.
func (b *batch) resume(set func(cp *checkpoint.Entry)) {
	if b.nEmit == 0 {
		return
	}
	for i := len(b.pend) - b.nEmit; i < len(b.pend); i++ {
		set(&b.pend[i].cp)
		b.pend[i].cp.Seq = b.seq
	}
	b.nEmit = 0
}

// full reports whether the batch reached its size.
func (b *batch) full() bool { return b.bytesIn >= b.p.batchBytes }

// pending reports whether events wait to be submitted.
func (b *batch) pending() bool { return len(b.docs) > 0 }

// submit hands the batch to the output, after settling its bytes with the
// in-flight budget. It returns false if the reader must stop (ctx ended
// or the output refused).
func (b *batch) submit(ctx context.Context) bool {
	if len(b.docs) == 0 {
		return true
	}
	// Settle the reservation against the batch's real size.
	if b.bytesIn > b.reserved {
		// Larger than reserved (a big last event): trade the reservation
		// for the whole size, which may exceed the budget and is then
		// granted alone.
		b.c.budget.release(b.slot, b.reserved)
		b.reserved = 0
		if !b.acquire(ctx, b.bytesIn) {
			return false
		}
	} else {
		b.c.budget.release(b.slot, b.reserved-b.bytesIn)
	}
	b.reserved = 0
	ids := string(b.ids)
	prev := 0
	for i := range b.docs {
		b.docs[i].ID = ids[prev:b.idEnds[i]]
		prev = b.idEnds[i]
		idx := b.trk.add(b.pend[i].size, b.pend[i].cp)
		b.docs[i].Token = uint64(b.slot)<<40 | idx&(1<<40-1)
	}
	docs := b.docs
	b.slabHint, b.docsHint = len(b.slab), len(b.docs)
	b.c.m.events.Add(float64(len(docs)))
	err := b.c.out.Write(ctx, docs, b.c.ack)
	// The output keeps docs and the slab: start fresh ones.
	b.docs, b.pend, b.slab, b.ids, b.idEnds = nil, b.pend[:0], nil, b.ids[:0], b.idEnds[:0]
	b.bytesIn = 0
	if err != nil {
		// Not accepted: give the bytes back; the checkpoint has not moved
		// past them, so the next run reads them again.
		b.c.budget.release(b.slot, sumSizes(docs))
		return false
	}
	return true
}

// acquire takes n bytes from the in-flight budget. While it waits
// (Elasticsearch slow or down) it calls waiting about once a second.
//
// A removed container's reader that still waits when the removal grace
// has passed, or that is told to give up (expire), gives up: it reports
// its unread data as lost and stops, so that the deleted files it holds
// open are released.
func (b *batch) acquire(ctx context.Context, n int64) bool {
	for !b.abandoned {
		if b.isExpired() {
			b.quit(ctx)
			return false
		}
		actx, cancel := context.WithTimeout(ctx, refreshEvery)
		err := b.c.budget.acquireUnless(actx, b.slot, n, b.expired)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if b.graceOver(b.p.removalGrace) {
			b.quit(ctx)
			return false
		}
		if b.waiting != nil {
			b.waiting(ctx)
		}
	}
	return false
}

// quit abandons a removed container's logs: the reader reports what it
// loses (abandon), forgets the container's checkpoint and stops.
func (b *batch) quit(ctx context.Context) {
	if b.abandoned {
		return
	}
	b.abandoned = true
	if b.abandon != nil {
		b.abandon(ctx)
	}
	b.c.store.Delete(b.id)
}

// reserve takes n bytes for the batch about to be built. If the reader is
// stopping it goes on without: nothing more will be submitted.
func (b *batch) reserve(ctx context.Context, n int64) {
	if b.acquire(ctx, n) {
		b.reserved = n
	}
}

// release gives back the reservation of a batch that is not submitted.
func (b *batch) release() {
	b.c.budget.release(b.slot, b.reserved)
	b.reserved = 0
}

func sumSizes(docs []esout.Doc) int64 {
	var n int64
	for _, d := range docs {
		n += int64(len(d.Body) + len(d.Raw))
	}
	return n
}

// acked handles the acknowledgement of event idx: budget, metrics,
// checkpoint and lag.
func (b *batch) acked(idx uint64, outcome esout.Outcome) {
	size, cp, advanced := b.trk.ack(idx)
	b.c.budget.release(b.slot, size)
	label := outcomeLabel(outcome)
	b.c.m.eventsAcked.WithLabelValues(label).Inc()
	b.c.m.bytesAcked.WithLabelValues(label).Add(float64(size))
	if advanced {
		b.c.store.Set(b.id, cp)
		if cp.Time > 0 {
			b.c.m.lag.WithLabelValues(b.short).Set(time.Since(time.Unix(0, cp.Time)).Seconds())
		}
	}
}

// caughtUp sets the lag to zero: everything read is acknowledged.
func (b *batch) caughtUp() { b.c.m.lag.WithLabelValues(b.short).Set(0) }

// handOver submits what is left of a removed container's events and waits
// for their acknowledgements (see drain). It returns false if the reader
// stopped first.
func (b *batch) handOver(ctx context.Context, log interface{ Warn(string, ...any) }) bool {
	if b.pending() && !b.submit(ctx) {
		return false
	}
	return b.drain(ctx, b.graceDeadline(b.p.removalGrace), log)
}

// drain waits, bounded by deadline (and by expire), for the
// acknowledgements of what was handed over, then forgets the container's
// checkpoint. It returns false if ctx ended first: the checkpoint stays
// for the next run.
func (b *batch) drain(ctx context.Context, deadline time.Time, log interface{ Warn(string, ...any) }) bool {
	t := time.NewTimer(b.p.pollInterval)
	defer t.Stop()
	for b.trk.inflight() > 0 && time.Now().Before(deadline) && !b.isExpired() && ctx.Err() == nil {
		t.Reset(b.p.pollInterval)
		select {
		case <-ctx.Done():
		case <-b.expired:
		case <-t.C:
		}
	}
	if ctx.Err() != nil {
		return false
	}
	if n := b.trk.inflight(); n > 0 {
		log.Warn("removed container's last events not acknowledged; it stopped waiting "+b.whyGiveUp(), "events", n)
	}
	b.c.store.Delete(b.id)
	return true
}

func outcomeLabel(o esout.Outcome) string {
	switch o {
	case esout.Delivered:
		return "delivered"
	case esout.Duplicate:
		return "duplicate"
	case esout.DeadLettered:
		return "dead_lettered"
	}
	return "unknown"
}
