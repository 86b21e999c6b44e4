package esout

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/heartwood-ops/heartwood/internal/backoff"
)

// sender is one worker's reusable buffers.
type sender struct {
	raw   []byte
	zbuf  bytes.Buffer
	gz    *gzip.Writer // compatible with compress/gzip, about 1.5× less CPU at level 1
	resp  bytes.Buffer
	items []itemResult
	done  []doneItem
}

type doneItem struct {
	it      *item
	outcome Outcome
}

func (w *Writer) worker(ctx context.Context) {
	s := &sender{}
	if w.cfg.Compression {
		s.gz, _ = gzip.NewWriterLevel(io.Discard, w.cfg.CompressionLevel) // level validated
	}
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-w.batches:
			w.requeue(w.processSafely(ctx, s, batch))
		}
	}
}

// processSafely is process with a panic turned into a loss, not a crash:
// the batch's unfinished documents are acknowledged as dead-lettered
// (counted in heartwood_shipper_es_dead_letter_failures_total and
// heartwood_shipper_es_worker_panics_total, and logged), so that a poison
// document cannot crash the agent or be retried forever.
func (w *Writer) processSafely(ctx context.Context, s *sender, batch []*item) (unfinished []*item) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		w.m.workerPanics.Inc()
		var lost []doneItem
		for _, it := range batch {
			if !it.done {
				lost = append(lost, doneItem{it, DeadLettered})
			}
		}
		w.m.deadLetterFail.Add(float64(len(lost)))
		w.log.Error("bulk worker panicked; the batch's documents are lost", "docs", len(lost), "panic", fmt.Sprint(v))
		unfinished = nil
		w.complete(&sender{}, lost)
	}()
	return w.process(ctx, s, batch)
}

// process sends a batch until every item is acknowledged, retrying
// retryable failures and dead-lettering permanent ones. It returns the
// unfinished items if ctx ends first.
func (w *Writer) process(ctx context.Context, s *sender, batch []*item) (unfinished []*item) {
	stack := [][]*item{batch} // sub-batches still to send (bisection on whole-request rejections)
	var pending []*item
	defer func() {
		if ctx.Err() != nil {
			unfinished = append(unfinished, pending...)
			for i := len(stack) - 1; i >= 0; i-- {
				unfinished = append(unfinished, stack[i]...)
			}
		}
	}()
	for len(stack) > 0 {
		pending, stack = stack[len(stack)-1], stack[:len(stack)-1]
		attempt := 0
		for len(pending) > 0 {
			if ctx.Err() != nil {
				return nil
			}
			if needsDeadLetterStream(pending) && !w.waitDeadLetterTemplate(ctx) {
				return nil
			}
			out := w.send(ctx, s, pending)
			switch out.kind {
			case sendAgain:
			case sendRetry:
				if ctx.Err() != nil {
					return nil
				}
				w.m.retried.Add(float64(len(pending)))
				w.log.Warn("bulk request failed, retrying", "docs", len(pending), "attempt", attempt+1, "error", out.err)
				if !w.sleep(ctx, attempt) {
					return nil
				}
				attempt++
			case sendRejected:
				if len(pending) > 1 { // find the culprit by halves
					h := len(pending) / 2
					stack = append(stack, pending[h:], pending[:h])
					pending = nil
					continue
				}
				it := pending[0]
				if it.dl == nil {
					w.reject(it, out.status, out.errType, out.reason)
					continue
				}
				w.deadLetterFailed(it, out.status, out.errType, out.reason)
				w.complete(s, []doneItem{{it, DeadLettered}})
				pending = nil
			case sendItems:
				next, retry := w.classify(s, pending, out.allOK)
				w.complete(s, s.done)
				clear(s.done) // drop references to acknowledged items
				if retry > 0 {
					w.m.retried.Add(float64(retry))
					w.log.Warn("bulk items failed retryably, retrying them", "docs", retry, "attempt", attempt+1)
					if !w.sleep(ctx, attempt) {
						pending = next
						return nil
					}
					attempt++
				} else {
					attempt = 0
				}
				pending = next
			}
		}
	}
	return nil
}

// classify sorts the items of a parsed bulk response into done (s.done)
// and to-send-again (next: retryable ones and new dead letters).
func (w *Writer) classify(s *sender, pending []*item, allOK bool) (next []*item, retry int) {
	s.done = s.done[:0]
	for i, it := range pending {
		status := http.StatusCreated
		var errType, reason string
		if !allOK {
			r := &s.items[i]
			status, errType, reason = r.status, r.errType, r.errReason
		}
		switch {
		case status >= 200 && status < 300:
			out := Delivered
			if it.dl != nil {
				out = DeadLettered
			}
			s.done = append(s.done, doneItem{it, out})
		case status == http.StatusConflict:
			out := Duplicate
			if it.dl != nil {
				out = DeadLettered // dead letter already written by an earlier attempt
			}
			s.done = append(s.done, doneItem{it, out})
		case status == http.StatusTooManyRequests || status >= 500:
			next = append(next, it)
			retry++
		case it.dl == nil:
			w.reject(it, status, errType, reason)
			next = append(next, it)
		default:
			w.deadLetterFailed(it, status, errType, reason)
			s.done = append(s.done, doneItem{it, DeadLettered})
		}
	}
	return next, retry
}

// reject replaces the item's document by its dead letter.
func (w *Writer) reject(it *item, status int, errType, reason string) {
	if errType == "" {
		errType = "http_" + strconv.Itoa(status)
	}
	w.log.Warn("document rejected, dead-lettering it", "index", it.doc.Index, "id", it.doc.ID,
		"status", status, "error.type", errType, "error.reason", reason)
	it.dl = w.cfg.newDeadLetter(&it.doc, status, errType, reason, time.Now())
}

// deadLetterFailed reports a dead letter that was rejected permanently: the
// document is lost, loudly.
func (w *Writer) deadLetterFailed(it *item, status int, errType, reason string) {
	w.m.deadLetterFail.Inc()
	w.log.Error("dead-letter document rejected permanently; document lost",
		"index", it.doc.Index, "id", it.doc.ID, "dead_letter_index", it.dl.index, "dead_letter_id", it.dl.id,
		"status", status, "error.type", errType, "error.reason", reason)
}

// complete acknowledges finished items: budget, metrics, callbacks.
func (w *Writer) complete(s *sender, done []doneItem) {
	if len(done) == 0 {
		return
	}
	results := make([]Result, len(done))
	var cost, deliveredBytes int64
	var delivered, dups, dead int
	for i, d := range done {
		d.it.done = true
		results[i] = Result{Token: d.it.doc.Token, Outcome: d.outcome}
		cost += d.it.cost
		switch d.outcome {
		case Delivered:
			delivered++
			deliveredBytes += int64(len(d.it.doc.Body))
		case Duplicate:
			dups++
		case DeadLettered:
			dead++
		}
	}
	w.m.delivered.Add(float64(delivered))
	w.m.deliveredBytes.Add(float64(deliveredBytes))
	w.m.duplicates.Add(float64(dups))
	w.m.deadLettered.Add(float64(dead))
	w.m.queueDocs.Sub(float64(len(done)))
	w.budget.release(cost)

	w.ackMu.Lock()
	for start := 0; start < len(done); {
		g, end := done[start].it.grp, start+1
		for end < len(done) && done[end].it.grp == g {
			end++
		}
		g.ack(results[start:end:end])
		start = end
	}
	w.ackMu.Unlock()

	w.mu.Lock()
	w.outstanding -= len(done)
	var idle []chan struct{}
	if w.outstanding == 0 {
		idle, w.idle = w.idle, nil
	}
	w.mu.Unlock()
	for _, ch := range idle {
		close(ch)
	}
}

// sleep waits the backoff for attempt (0-based); false if ctx ended.
func (w *Writer) sleep(ctx context.Context, attempt int) bool {
	return backoff.Sleep(ctx, w.backoff(attempt)) == nil
}

// backoff is the wait before retry number attempt (0-based): exponential
// from RetryBackoffMin, capped at RetryBackoffMax, with jitter.
func (w *Writer) backoff(attempt int) time.Duration {
	return backoff.Policy{Min: w.cfg.RetryBackoffMin, Max: w.cfg.RetryBackoffMax}.Delay(attempt)
}

func needsDeadLetterStream(items []*item) bool {
	for _, it := range items {
		if it.dl != nil {
			return true
		}
	}
	return false
}

// waitDeadLetterTemplate waits until the dead-letter template is in place;
// false if ctx ended.
func (w *Writer) waitDeadLetterTemplate(ctx context.Context) bool {
	select {
	case <-w.dlReady:
		return true
	case <-ctx.Done():
		return false
	}
}
