package esout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
