package esout

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// itemOverhead approximates an item's bookkeeping memory, counted in the
// in-flight budget on top of its bytes.
const itemOverhead = 160

// group is one Write call's acknowledgement callback.
type group struct {
	ack func([]Result)
}

// item is one accepted document.
type item struct {
	doc  Doc
	grp  *group
	cost int64         // bytes taken from the budget
	size int64         // encoded size, for batching
	enq  time.Duration // when queued, since Writer.epoch
	dl   *deadLetter   // set once the document is to be dead-lettered
	done bool          // acknowledged
}

// target returns what is sent for the item: the document, or its dead
// letter.
func (it *item) target() (index, id string, body []byte) {
	if it.dl != nil {
		return it.dl.index, it.dl.id, it.dl.body
	}
	return it.doc.Index, it.doc.ID, it.doc.Body
}

// Write queues docs. It blocks, honouring ctx, while the in-flight byte
// budget is full (backpressure). ack is called asynchronously, exactly once
// per document, after it is Delivered, Duplicate or DeadLettered; one call
// may carry several documents of this Write, and the documents of one
// Write may be acknowledged over several calls, in any order. Ack calls
// are never concurrent with each other (for the whole Writer); ack must not
// block and must not call Write. The slice passed to ack is the callee's.
// Retryable failures are retried without limit, so an ack may come much
// later. If Write returns an error (ctx ended), a prefix of docs may have
// been accepted: those are acknowledged as usual, the rest never are.
// Body and Raw are referenced, not copied: the caller must not modify them
// until the document is acknowledged.
func (w *Writer) Write(ctx context.Context, docs []Doc, ack func([]Result)) error {
	if ack == nil {
		return errors.New("esout write: nil ack")
	}
	if len(docs) == 0 {
		return nil
	}
	g := &group{ack: ack}
	items := make([]item, len(docs))
	now := time.Now()
	for i := range docs {
		it := &items[i]
		it.doc, it.grp = docs[i], g
		w.checkBody(it, now)
		index, id, body := it.target()
		it.size = int64(createSize(index, id, body))
		// The budget counts the memory the document keeps alive: its
		// buffers' capacity, not just their length.
		it.cost = int64(cap(it.doc.Body)+cap(it.doc.Raw)+len(index)+len(id)) + itemOverhead
	}
	flush := int64(w.cfg.FlushBytes)
	for start := 0; start < len(items); {
		end, sum := start+1, items[start].cost
		for end < len(items) && sum+items[end].cost <= flush {
			sum += items[end].cost
			end++
		}
		if c := w.budget.clamp(sum); c != sum { // a single document larger than the budget
			items[start].cost, sum = c, c
		}
		if err := w.budget.acquire(ctx, sum); err != nil {
			return fmt.Errorf("esout write: %w", err)
		}
		w.enqueue(items[start:end])
		start = end
	}
	return nil
}

// checkBody makes sure the body is one line of JSON, compacting it if it
// spans lines, and dead-letters it otherwise.
func (w *Writer) checkBody(it *item, now time.Time) {
	switch {
	case it.doc.Index == "":
		it.dl = w.cfg.newDeadLetter(&it.doc, 0, "invalid_document", "empty index name", now)
	case len(it.doc.Body) == 0:
		it.dl = w.cfg.newDeadLetter(&it.doc, 0, "invalid_document", "empty document body", now)
	case bytes.IndexByte(it.doc.Body, '\n') >= 0:
		var buf bytes.Buffer
		if err := json.Compact(&buf, it.doc.Body); err != nil {
			it.dl = w.cfg.newDeadLetter(&it.doc, 0, "invalid_document", "document body is not valid JSON: "+err.Error(), now)
			return
		}
		it.doc.Body = buf.Bytes()
	}
	if it.dl != nil {
		w.log.Warn("document dead-lettered before sending", "index", it.doc.Index, "id", it.doc.ID, "reason", it.dl.reason())
	}
}

// enqueue appends accepted items to the pending queue.
func (w *Writer) enqueue(items []item) {
	now := time.Since(w.epoch)
	w.mu.Lock()
	wasEmpty := len(w.pending) == 0
	for i := range items {
		items[i].enq = now
		w.pending = append(w.pending, &items[i])
		w.pendingBytes += items[i].size
	}
	w.outstanding += len(items)
	full := w.pendingBytes >= int64(w.cfg.FlushBytes)
	w.mu.Unlock()
	w.m.queueDocs.Add(float64(len(items)))
	if wasEmpty || full {
		w.wake()
	}
}

// requeue puts unfinished items back at the front of the queue (Run ended
// while they were in flight).
func (w *Writer) requeue(items []*item) {
	if len(items) == 0 {
		return
	}
	w.mu.Lock()
	var size int64
	for _, it := range items {
		size += it.size
	}
	w.pending = append(append(make([]*item, 0, len(items)+len(w.pending)), items...), w.pending...)
	w.pendingBytes += size
	w.mu.Unlock()
}

func (w *Writer) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Flush asks for queued documents to be sent now and waits until no
// accepted document is unacknowledged (or ctx ends). It needs Run.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	if w.outstanding == 0 {
		w.mu.Unlock()
		return nil
	}
	w.flushNow = true
	ch := make(chan struct{})
	w.idle = append(w.idle, ch)
	w.mu.Unlock()
	w.wake()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("esout flush: %w", ctx.Err())
	}
}

// batcher cuts the pending queue into bulk requests of up to FlushBytes,
// when FlushBytes are pending, the oldest document has waited
// FlushInterval, or Flush asked, and hands them to the workers.
func (w *Writer) batcher(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		batch, wait := w.cut(time.Since(w.epoch))
		if batch != nil {
			select {
			case w.batches <- batch:
			case <-ctx.Done():
				w.requeue(batch)
				return
			}
			continue
		}
		if wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// cut takes the next batch if one is due, or says how long until one is.
func (w *Writer) cut(now time.Duration) (batch []*item, wait time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		w.flushNow = false
		return nil, 0
	}
	flush := int64(w.cfg.FlushBytes)
	age := now - w.pending[0].enq
	if w.pendingBytes < flush && !w.flushNow && age < w.cfg.FlushInterval {
		return nil, w.cfg.FlushInterval - age
	}
	n, size := 1, w.pending[0].size
	for n < len(w.pending) && size+w.pending[n].size <= flush {
		size += w.pending[n].size
		n++
	}
	// Copy the batch out and clear the queue's slots, so that the queue's
	// backing array does not keep sent (soon acknowledged) documents alive.
	batch = make([]*item, n)
	copy(batch, w.pending[:n])
	clear(w.pending[:n])
	w.pending = w.pending[n:]
	w.pendingBytes -= size
	if len(w.pending) == 0 {
		w.pending = nil
		w.flushNow = false
	}
	return batch, 0
}
