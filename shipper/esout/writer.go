package esout

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
)

// Doc is one document to index.
type Doc struct {
	// Index is the data stream (or index) name, e.g.
	// logs-docker.container-default.
	Index string
	// ID is the deterministic _id; the document is written with op
	// "create", so a replay answers 409 and counts as Duplicate. Empty lets
	// Elasticsearch pick an _id (then replays duplicate).
	ID string
	// Body is the JSON document source, without trailing newline. A body
	// spread over several lines is compacted; an empty or invalid one is
	// dead-lettered.
	Body []byte
	// Raw is the original raw log record, kept in the dead-letter document
	// (may be nil: Body is kept then).
	Raw []byte
	// Token is opaque to esout and handed back in the Result.
	Token uint64
}

// Outcome is how a document ended.
type Outcome int

// The outcomes of a document. Each accepted document ends in exactly one.
const (
	// Delivered: Elasticsearch indexed it (bulk item status 2xx).
	Delivered Outcome = iota + 1
	// Duplicate: a document with its _id already existed (409); it counts
	// as delivered.
	Duplicate
	// DeadLettered: Elasticsearch rejected it permanently (4xx other than
	// 409 and 429); it was written to the dead-letter data stream, or, if
	// that was rejected permanently too, logged and counted in
	// heartwood_shipper_es_dead_letter_failures_total.
	DeadLettered
)

// String returns the outcome's name.
func (o Outcome) String() string {
	switch o {
	case Delivered:
		return "delivered"
	case Duplicate:
		return "duplicate"
	case DeadLettered:
		return "dead-lettered"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Result is the outcome of one document, identified by its Token.
type Result struct {
	// Token is the document's Token.
	Token uint64
	// Outcome is how the document ended.
	Outcome Outcome
}

// Options are the writer's dependencies.
type Options struct {
	// Logger receives the writer's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the writer's metrics; nil leaves them
	// unregistered.
	Registerer prometheus.Registerer
}

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
}

// target returns what is sent for the item: the document, or its dead
// letter.
func (it *item) target() (index, id string, body []byte) {
	if it.dl != nil {
		return it.dl.index, it.dl.id, it.dl.body
	}
	return it.doc.Index, it.doc.ID, it.doc.Body
}

// Writer writes documents to Elasticsearch with bulk requests. It is safe
// for concurrent use by multiple Write callers.
type Writer struct {
	cfg    Config
	client *elasticsearch.Client
	log    *slog.Logger
	m      *metrics
	budget *budget
	epoch  time.Time

	mu           sync.Mutex
	pending      []*item // accepted, waiting for a batch
	pendingBytes int64
	flushNow     bool
	outstanding  int             // accepted, not yet acked
	idle         []chan struct{} // closed when outstanding reaches 0

	kick    chan struct{} // wakes the batcher
	batches chan []*item  // batcher → workers

	ackMu sync.Mutex // serialises ack callbacks

	running          atomic.Bool
	clientCompresses atomic.Bool

	dlOnce  sync.Once
	dlReady chan struct{} // closed once the dead-letter template is in place

	readyMu  sync.Mutex
	readyErr error
}

// New returns a writer sending through client. The client should not
// compress request bodies itself when cfg.Compression is on (esout detects
// it and then leaves compression to the client). Call Run to start
// sending.
func New(cfg Config, client *elasticsearch.Client, opts Options) (*Writer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("esout config: %w", err)
	}
	if client == nil {
		return nil, errors.New("esout: nil elasticsearch client")
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Writer{
		cfg:      cfg,
		client:   client,
		log:      log,
		m:        m,
		epoch:    time.Now(),
		kick:     make(chan struct{}, 1),
		batches:  make(chan []*item),
		dlReady:  make(chan struct{}),
		readyErr: errors.New("elasticsearch not contacted yet"),
	}
	w.budget = newBudget(int64(cfg.MaxInflightBytes), func(used int64) { m.inflightBytes.Set(float64(used)) })
	return w, nil
}

// Run installs the dead-letter index template and sends queued documents
// with cfg.Workers concurrent bulk requests until ctx ends; it then returns
// nil. Documents still unacknowledged when ctx ends stay queued: a later Run
// sends them. Run must not be called concurrently with itself.
func (w *Writer) Run(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("esout: run already running")
	}
	defer w.running.Store(false)
	var wg sync.WaitGroup
	select {
	case <-w.dlReady:
	default:
		if w.cfg.ExternalTemplates {
			w.dlOnce.Do(func() { close(w.dlReady) })
			break
		}
		wg.Go(func() { w.installDeadLetterTemplate(ctx) })
	}
	wg.Go(func() { w.batcher(ctx) })
	for range w.cfg.Workers {
		wg.Go(func() { w.worker(ctx) })
	}
	wg.Wait()
	return nil
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

// reason returns a dead letter's error message, for logs.
func (d *deadLetter) reason() string {
	var v struct {
		Message string `json:"message"`
	}
	_ = json.Unmarshal(d.body, &v)
	return v.Message
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

// sender is one worker's reusable buffers.
type sender struct {
	raw   []byte
	zbuf  bytes.Buffer
	gz    *gzip.Writer
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
			w.requeue(w.process(ctx, s, batch))
		}
	}
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

// sendKind classifies a bulk request's fate.
type sendKind int

const (
	sendItems    sendKind = iota // response parsed into s.items (unless allOK)
	sendRetry                    // retryable whole-request failure
	sendRejected                 // whole request rejected permanently (400, 413)
	sendAgain                    // resend at once (compression fallback)
)

type sendOutcome struct {
	kind    sendKind
	allOK   bool // sendItems: errors:false, every item succeeded
	err     error
	status  int
	errType string
	reason  string
}

// send encodes and sends one bulk request for pending.
func (w *Writer) send(ctx context.Context, s *sender, pending []*item) sendOutcome {
	s.raw = s.raw[:0]
	for _, it := range pending {
		index, id, body := it.target()
		s.raw = appendCreate(s.raw, index, id, body)
	}
	body := s.raw
	compressed := w.cfg.Compression && !w.clientCompresses.Load()
	if compressed {
		s.zbuf.Reset()
		s.gz.Reset(&s.zbuf)
		_, _ = s.gz.Write(s.raw) // writes to a bytes.Buffer do not fail
		_ = s.gz.Close()
		body = s.zbuf.Bytes()
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := newRequest(rctx, http.MethodPost, "/_bulk?filter_path="+bulkFilterPath, body)
	if err != nil {
		return sendOutcome{kind: sendRetry, err: err}
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	if compressed {
		req.Header.Set("Content-Encoding", "gzip")
	}
	start := time.Now()
	res, err := w.client.Perform(req)
	if compressed && req.ContentLength != int64(len(body)) {
		// The client compressed our gzip body again: let it compress.
		if res != nil {
			_ = res.Body.Close()
		}
		w.clientCompresses.Store(true)
		w.log.Warn("elasticsearch client compresses request bodies itself; leaving compression to it")
		return sendOutcome{kind: sendAgain}
	}
	w.m.requestBytes.Add(float64(len(body)))
	if err != nil {
		w.m.requests.WithLabelValues("error").Inc()
		err = fmt.Errorf("bulk request: %w", err)
		w.setReady(err)
		return sendOutcome{kind: sendRetry, err: err}
	}
	s.resp.Reset()
	_, err = s.resp.ReadFrom(res.Body)
	_ = res.Body.Close()
	w.m.latency.Observe(time.Since(start).Seconds())
	w.m.requests.WithLabelValues(strconv.Itoa(res.StatusCode)).Inc()
	if err != nil {
		err = fmt.Errorf("bulk response: %w", err)
		w.setReady(err)
		return sendOutcome{kind: sendRetry, err: err}
	}
	switch code := res.StatusCode; {
	case code >= 200 && code < 300:
		w.setReady(nil)
		resp, err := parseBulkResponse(s.resp.Bytes(), s.items)
		if resp.items != nil {
			s.items = resp.items // keep the (possibly grown) storage
		}
		if err == nil && !resp.allOK && len(resp.items) != len(pending) {
			err = fmt.Errorf("%w: %d items for %d documents", errSyntax, len(resp.items), len(pending))
		}
		if err != nil {
			w.log.Error("unusable bulk response, resending the request", "error", err)
			return sendOutcome{kind: sendRetry, err: err}
		}
		return sendOutcome{kind: sendItems, allOK: resp.allOK}
	case code == http.StatusBadRequest || code == http.StatusRequestEntityTooLarge:
		w.setReady(nil)
		e := parseErrorBody(code, s.resp.Bytes())
		return sendOutcome{kind: sendRejected, status: code, errType: e.Type, reason: e.Reason}
	default:
		e := parseErrorBody(code, s.resp.Bytes())
		err := fmt.Errorf("bulk request: %w", e)
		w.setReady(err)
		return sendOutcome{kind: sendRetry, err: err}
	}
}

func newRequest(ctx context.Context, method, path string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("new request: %w", err)
	}
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return req, nil
}

// StatusError is an Elasticsearch error response.
type StatusError struct {
	// Status is the HTTP status code.
	Status int
	// Type is the error type, e.g. illegal_argument_exception.
	Type string
	// Reason is the error message.
	Reason string
}

// Error returns the status, type and reason.
func (e *StatusError) Error() string {
	return fmt.Sprintf("elasticsearch status %d: %s: %s", e.Status, e.Type, e.Reason)
}

// parseErrorBody reads {"error":{"type":..,"reason":..},"status":N}.
func parseErrorBody(status int, body []byte) *StatusError {
	e := &StatusError{Status: status}
	var v struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil && len(v.Error) > 0 {
		var obj struct {
			Type   string `json:"type"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(v.Error, &obj) == nil {
			e.Type, e.Reason = obj.Type, obj.Reason
		} else {
			_ = json.Unmarshal(v.Error, &e.Reason)
		}
	}
	if e.Type == "" {
		e.Type = "http_" + strconv.Itoa(status)
	}
	if e.Reason == "" {
		const max = 512
		r := bytes.TrimSpace(body)
		if len(r) > max {
			r = r[:max]
		}
		e.Reason = string(r)
	}
	return e
}

// sleep waits the backoff for attempt (0-based); false if ctx ended.
func (w *Writer) sleep(ctx context.Context, attempt int) bool {
	t := time.NewTimer(w.backoff(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff is exponential from RetryBackoffMin, capped at RetryBackoffMax,
// with "equal jitter" (uniform in [d/2, d]).
func (w *Writer) backoff(attempt int) time.Duration {
	d := w.cfg.RetryBackoffMax
	if attempt < 32 {
		if x := w.cfg.RetryBackoffMin << attempt; x > 0 && x < d {
			d = x
		}
	}
	return d/2 + rand.N(d/2+1)
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

// installDeadLetterTemplate puts the dead-letter index template, retrying
// retryable failures. If Elasticsearch rejects it permanently, dead
// letters are still written (to whatever template matches), loudly.
func (w *Writer) installDeadLetterTemplate(ctx context.Context) {
	name := w.cfg.deadLetterTemplateName()
	body := w.cfg.deadLetterTemplate()
	for attempt := 0; ; attempt++ {
		err := w.PutIndexTemplate(ctx, name, body)
		if err == nil {
			w.log.Info("dead-letter index template installed", "template", name, "data_stream", w.cfg.deadLetterStream())
			w.dlOnce.Do(func() { close(w.dlReady) })
			return
		}
		var se *StatusError
		if errors.As(err, &se) && se.Status >= 400 && se.Status < 500 && se.Status != http.StatusTooManyRequests {
			w.log.Error("dead-letter index template rejected; dead letters go to the data stream without it", "template", name, "error", err)
			w.dlOnce.Do(func() { close(w.dlReady) })
			return
		}
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("installing dead-letter index template failed, retrying", "template", name, "attempt", attempt+1, "error", err)
		if !w.sleep(ctx, attempt) {
			return
		}
	}
}

// Do sends one request (path relative to the cluster, JSON body) with the
// writer's client and request timeout, and returns the answer's status and
// body (at most 8 MiB). A transport error also marks the writer not ready.
func (w *Writer) Do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := newRequest(rctx, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Perform(req)
	if err != nil {
		w.setReady(err)
		return 0, nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err == nil {
		w.setReady(nil)
	}
	return res.StatusCode, out, err
}

// PutIndexTemplate creates or replaces the composable index template name
// (PUT _index_template/<name>); doing it again with the same body is a
// no-op. A rejection is returned as a *StatusError.
func (w *Writer) PutIndexTemplate(ctx context.Context, name string, body []byte) error {
	if name == "" {
		return errors.New("put index template: empty name")
	}
	rctx, cancel := context.WithTimeout(ctx, w.cfg.RequestTimeout)
	defer cancel()
	req, err := newRequest(rctx, http.MethodPut, "/_index_template/"+url.PathEscape(name), body)
	if err != nil {
		return fmt.Errorf("put index template %s: %w", name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := w.client.Perform(req)
	if err != nil {
		err = fmt.Errorf("put index template %s: %w", name, err)
		w.setReady(err)
		return err
	}
	defer res.Body.Close()
	resBody, err := io.ReadAll(res.Body)
	if err != nil {
		err = fmt.Errorf("put index template %s: read response: %w", name, err)
		w.setReady(err)
		return err
	}
	if res.StatusCode >= 200 && res.StatusCode < 300 {
		w.setReady(nil)
		return nil
	}
	se := parseErrorBody(res.StatusCode, resBody)
	err = fmt.Errorf("put index template %s: %w", name, se)
	if res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests {
		w.setReady(err)
	} else {
		w.setReady(nil)
	}
	return err
}

// DeadLetterStream returns the name of the dead-letter data stream.
func (w *Writer) DeadLetterStream() string { return w.cfg.deadLetterStream() }

// Ready returns nil once Elasticsearch answered the latest request, and an
// error describing the latest failure (transport error, 429, 5xx)
// otherwise.
func (w *Writer) Ready() error {
	w.readyMu.Lock()
	defer w.readyMu.Unlock()
	return w.readyErr
}

func (w *Writer) setReady(err error) {
	w.readyMu.Lock()
	w.readyErr = err
	w.readyMu.Unlock()
}

// Stats is a snapshot of the writer's queue.
type Stats struct {
	// Outstanding is the number of accepted, unacknowledged documents.
	Outstanding int
	// InflightBytes is the in-flight budget in use.
	InflightBytes int64
}

// Stats returns a snapshot of the writer's queue.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	n := w.outstanding
	w.mu.Unlock()
	return Stats{Outstanding: n, InflightBytes: w.budget.inUse()}
}
