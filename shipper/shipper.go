package shipper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/ecs"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// DockerLogs reads a container's logs through the Docker API, for log
// drivers without a readable file; *client.Client satisfies it.
type DockerLogs interface {
	ContainerLogs(ctx context.Context, container string, options container.LogsOptions) (io.ReadCloser, error)
}

// Output is where documents go; *esout.Writer satisfies it.
type Output interface {
	Run(ctx context.Context) error
	Write(ctx context.Context, docs []esout.Doc, ack func([]esout.Result)) error
	// Do sends one request to the cluster (the template installer's).
	Do(ctx context.Context, method, path string, body []byte) (status int, resp []byte, err error)
	Ready() error
}

// Deps are the shipper's collaborators.
type Deps struct {
	Source inventory.Source
	// ES is the Elasticsearch client the output writes with.
	ES *elasticsearch.Client
	// Output replaces the Elasticsearch writer built from ES (tests,
	// benchmarks); nil for the real one.
	Output Output
	// Docker reads logs of containers whose driver writes no json-file.
	Docker DockerLogs
	// DataDir holds the checkpoint file.
	DataDir string
	// NodeName is host.name and agent.name.
	NodeName string
	// SelfContainerID is the agent's own container, never shipped.
	SelfContainerID string
	// AgentVersion is agent.version.
	AgentVersion string
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Shipper ships container logs. Create it with New and run it with Run.
type Shipper struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	m      *metrics
	out    Output
	store  *checkpoint.Store
	budget *budget
	ephID  string

	tplReady chan struct{}
	tplOnce  sync.Once
	tplErr   atomic.Pointer[error]

	mu      sync.Mutex
	readers map[string]logReader // by container ID
	// removed are the running readers of removed containers, longest
	// removed first (bounded by MaxRemovedReaders).
	removed  []logReader
	bySlot   map[uint32]logReader // by slot, for acknowledgements
	nextSlot uint32
	running  atomic.Bool
}

// New builds a shipper from a validated config.
func New(cfg Config, deps Deps) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Source == nil {
		return nil, errors.New("no inventory source")
	}
	if deps.DataDir == "" {
		return nil, errors.New("no data directory")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, err
	}
	out := deps.Output
	if out == nil {
		if deps.ES == nil {
			return nil, errors.New("no Elasticsearch client")
		}
		outCfg := cfg.Output.writerConfig()
		outCfg.ExternalTemplates = cfg.Template.Install // esschema's templates cover dead letters
		w, err := esout.New(outCfg, deps.ES, esout.Options{Logger: deps.Logger, Registerer: deps.Registerer})
		if err != nil {
			return nil, err
		}
		out = w
	}
	store, err := checkpoint.Open(deps.DataDir)
	if err != nil {
		return nil, err
	}
	if q := store.Quarantined(); q != nil {
		m.checkpointsQuarantined.Inc()
		deps.Logger.Error("checkpoint file unreadable; moved aside, containers start from the beginning of their logs (already shipped lines are rejected as duplicates)",
			"err", q.Err, "moved_to", q.Path)
	}
	var eph [8]byte
	_, _ = rand.Read(eph[:])
	s := &Shipper{
		cfg: cfg, deps: deps, log: deps.Logger, m: m, out: out, store: store,
		ephID:    hex.EncodeToString(eph[:]),
		tplReady: make(chan struct{}),
		readers:  map[string]logReader{},
		bySlot:   map[uint32]logReader{},
	}
	if cfg.Output.MaxInflightBytes != 0 {
		deps.Logger.Warn("shipper.output.max-inflight-bytes is deprecated; use shipper.max-inflight-bytes",
			"max_inflight_bytes", cfg.inflightBytes())
	}
	s.budget = newBudget(cfg.inflightBytes(), func(n int64) { m.inflightBytes.Set(float64(n)) })
	if !cfg.Template.Install {
		s.tplOnce.Do(func() { close(s.tplReady) })
	}
	return s, nil
}

// Run ships until ctx is cancelled.
func (s *Shipper) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("already running")
	}
	defer s.running.Store(false)
	// A fresh budget per run: bytes still held by a previous run's
	// unacknowledged documents are not carried over.
	s.budget.reset()
	sub, err := s.deps.Source.Subscribe(ctx)
	if err != nil {
		return nil // ctx ended before the inventory's first sync
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	outErr := make(chan error, 1)
	wg.Go(func() { outErr <- s.out.Run(ctx) })
	// Checkpoints are flushed by their own goroutine, which outlives the
	// readers so that the final flush sees their last acknowledgements.
	storeCtx, storeCancel := context.WithCancel(context.WithoutCancel(ctx))
	storeDone := make(chan struct{})
	go func() {
		defer close(storeDone)
		s.store.Run(storeCtx, s.cfg.CheckpointInterval, func(err error) {
			s.m.checkpointFails.Inc()
			s.log.Error("write checkpoints", "err", err)
		})
	}()
	if s.cfg.Template.Install {
		wg.Go(func() { s.installTemplate(ctx) })
	}

	defer sub.Close()
	known := map[string]bool{}
	for _, c := range sub.Snapshot() {
		known[c.ID] = true
		s.ensureReader(ctx, &wg, c)
	}
	// Checkpoints of containers that vanished while we were down.
	for _, id := range s.store.Containers() {
		if !known[id] {
			s.store.Delete(id)
		}
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-outErr:
			if ctx.Err() == nil {
				if err == nil {
					err = errors.New("stopped")
				}
				runErr = fmt.Errorf("output: %w", err)
			}
			break loop
		case <-sub.Changed():
		}
		for _, ch := range sub.Pending() {
			switch ch.Kind {
			case inventory.Added, inventory.Updated:
				s.ensureReader(ctx, &wg, ch.Container)
			case inventory.Removed:
				s.markRemoved(ch.Container.ID)
			}
		}
	}
	cancel()
	wg.Wait()
	storeCancel()
	<-storeDone
	s.mu.Lock()
	s.readers = map[string]logReader{}
	s.bySlot = map[uint32]logReader{}
	s.removed = nil
	s.mu.Unlock()
	s.m.readers.Set(0)
	if runErr != nil {
		return runErr
	}
	return ctx.Err()
}

// markRemoved tells the reader of container id, if any, that the
// container is gone. Past MaxRemovedReaders removed readers still running,
// the longest removed give up at once, as when their removal grace ends:
// each holds its container's deleted log files open, so their number is
// bounded as well as their time.
func (s *Shipper) markRemoved(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.readers[id]
	if r == nil || r.isRemoved() {
		return
	}
	r.markRemoved(time.Now())
	s.removed = append(s.removed, r)
	for len(s.removed) > s.cfg.MaxRemovedReaders {
		s.removed[0].expire()
		s.removed = slices.Delete(s.removed, 0, 1)
	}
}

// source says how a container's logs are read.
type logSource int

const (
	skipLogs logSource = iota
	fileLogs
	apiLogs
)

// sourceOf decides how (and whether) a container's logs are shipped.
func (s *Shipper) sourceOf(c *inventory.Container, set settings) logSource {
	if inventory.IsSelf(c.ID, s.deps.SelfContainerID) || !set.enabled {
		return skipLogs
	}
	if !inventory.Selector(s.cfg.Selector).Matches(c.Labels) {
		return skipLogs
	}
	switch c.LogDriver {
	case "", "json-file":
		return fileLogs
	case "none":
		return skipLogs
	}
	if s.deps.Docker == nil {
		return skipLogs
	}
	return apiLogs
}

func (s *Shipper) ensureReader(ctx context.Context, wg *sync.WaitGroup, c *inventory.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readers[c.ID] != nil {
		return
	}
	set := settingsFor(s.cfg, c)
	src := s.sourceOf(c, set)
	if src == skipLogs {
		return
	}
	for _, p := range set.problems {
		s.log.Warn("ignoring container label", "container", c.ShortID(), "problem", p)
	}
	s.nextSlot++
	slot := s.nextSlot
	r := s.newReader(c, set, slot, src)
	s.readers[c.ID], s.bySlot[slot] = r, r
	s.m.readers.Inc()
	short := c.ShortID()
	wg.Go(func() {
		select {
		case <-s.tplReady:
			s.runReader(ctx, r, short)
		case <-ctx.Done():
		}
		s.mu.Lock()
		if s.readers[c.ID] == r {
			delete(s.readers, c.ID)
		}
		gone := r.isRemoved()
		if gone {
			delete(s.bySlot, slot)
			s.removed = slices.DeleteFunc(s.removed, func(o logReader) bool { return o == r })
		}
		s.mu.Unlock()
		s.m.readers.Dec()
		if gone {
			s.m.forget(short)
		}
	})
}

// runReader runs one reader. A panic that escapes it is reported (log,
// metric) and ends this reader only: the other containers keep shipping.
func (s *Shipper) runReader(ctx context.Context, r logReader, short string) {
	defer func() {
		if v := recover(); v != nil {
			s.m.panics.WithLabelValues("reader").Inc()
			s.log.Error("log reader panicked; container no longer shipped until the agent restarts",
				"container", short, "panic", fmt.Sprint(v))
		}
	}()
	r.run(ctx)
}

// newReader builds the reader of a container, giving it its collaborators.
func (s *Shipper) newReader(c *inventory.Container, set settings, slot uint32, src logSource) logReader {
	b := batchConfig{
		c: collaborators{out: s.out, store: s.store, budget: s.budget, m: s.m, ack: s.ack},
		p: readerParams{batchBytes: int64(s.cfg.BatchBytes), maxEventBytes: int(s.cfg.MaxEventBytes),
			pollInterval: s.cfg.PollInterval, removalGrace: s.cfg.RemovalGrace},
		id: c.ID, short: c.ShortID(), slot: slot, index: set.index(), json: set.json,
		meta: ecs.NewMeta(s.sourceFor(c, set)),
	}
	log := s.log.With("container", c.ShortID(), "name", c.Name)
	b.c.gap = func(ctx context.Context, g gapEvent) { s.sendGap(ctx, c.ID, set, g) }
	if src == apiLogs {
		return newAPIReader(b, log.With("source", "docker-api"), set, s.deps.Docker)
	}
	return newFileReader(b, log, set, fileReaderOptions{
		base:            filepath.Join(s.cfg.ContainersRoot, c.ID, c.ID+"-json.log"),
		capacity:        logCapacity(c.LogConfig),
		headroomWarn:    s.cfg.HeadroomWarn,
		maxDeletedFiles: s.cfg.MaxDeletedFiles,
	})
}

// ack routes acknowledgements to their readers.
func (s *Shipper) ack(results []esout.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, res := range results {
		slot := uint32(res.Token >> 40)
		if slot == 0 {
			continue // a gap event: not tracked
		}
		if r := s.bySlot[slot]; r != nil {
			r.acked(res.Token&(1<<40-1), res.Outcome)
		}
	}
}

// installTemplate detects what the cluster supports and installs
// Heartwood's component and index templates (and retention) where they
// differ, retrying until it succeeds.
func (s *Shipper) installTemplate(ctx context.Context) {
	es := s.out
	b := backoff.New(200*time.Millisecond, 30*time.Second)
	for ctx.Err() == nil {
		f, notes, err := esschema.Detect(ctx, es)
		var changes []esschema.Change
		if err == nil {
			changes, err = s.cfg.SchemaOptions(f).Install(ctx, es, false)
		}
		if err == nil {
			s.tplErr.Store(nil)
			s.tplOnce.Do(func() { close(s.tplReady) })
			s.log.Info("index templates in place", "changed", len(changes), "cluster", strings.Join(notes, "; "))
			return
		}
		e := fmt.Errorf("install index templates: %w", err)
		s.tplErr.Store(&e)
		s.log.Warn("install index templates; retrying", "err", err)
		if b.Wait(ctx) != nil {
			return
		}
	}
}

// Ready reports nil once the template is installed and the output is ready.
func (s *Shipper) Ready() error {
	if !s.running.Load() {
		return errors.New("not running")
	}
	if p := s.tplErr.Load(); p != nil {
		return *p
	}
	select {
	case <-s.tplReady:
	default:
		return errors.New("index template not installed yet")
	}
	return s.out.Ready()
}

// DescribeContainer returns the reader state of one container (nil when it
// has no reader).
func (s *Shipper) DescribeContainer(id string) any {
	s.mu.Lock()
	r := s.readers[id]
	s.mu.Unlock()
	if r == nil {
		return nil
	}
	return r.describe()
}

// sourceFor builds a container's ECS source fields.
func (s *Shipper) sourceFor(c *inventory.Container, set settings) ecs.Source {
	src := ecs.Source{
		ContainerID: c.ID, ContainerName: c.Name, Image: c.Image, Labels: c.Labels,
		HostName: s.deps.NodeName, AgentVersion: s.deps.AgentVersion, AgentEphemeralID: s.ephID,
		Dataset: set.dataset, DataNamespace: set.namespace,
	}
	switch {
	case c.Swarm != nil:
		src.ServiceName, src.ServiceID = c.Swarm.ServiceName, c.Swarm.ServiceID
		src.OrchestratorType, src.Namespace = "swarm", c.Swarm.Stack
		src.TaskID, src.TaskName, src.TaskSlot, src.NodeID = c.Swarm.TaskID, c.Swarm.TaskName, c.Swarm.Slot, c.Swarm.NodeID
	case c.Labels[inventory.LabelComposeService] != "":
		src.ServiceName = c.Labels[inventory.LabelComposeService]
		src.OrchestratorType, src.Namespace = "compose", c.Labels[inventory.LabelComposeProject]
	default:
		name := c.Image
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		if i := strings.IndexAny(name, ":@"); i >= 0 {
			name = name[:i]
		}
		src.ServiceName = name
	}
	return src
}
