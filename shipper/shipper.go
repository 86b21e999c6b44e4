package shipper

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
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
	"github.com/heartwood-ops/heartwood/shipper/tail"
)

// Source is the container inventory; *inventory.Inventory and
// inventorytest.Fake satisfy it. Subscribe returns after the inventory's
// first full sync.
type Source interface {
	Subscribe(ctx context.Context) (inventory.Subscription, error)
	Get(id string) (*inventory.Container, bool)
}

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
	Source Source
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

	mu       sync.Mutex
	readers  map[string]*reader    // json-file readers by container ID
	apis     map[string]*apiReader // Docker API readers by container ID
	bySlot   map[uint32]acker
	nextSlot uint32
	running  atomic.Bool
}

// New builds a shipper from a validated config.
func New(cfg Config, deps Deps) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Source == nil {
		return nil, errors.New("shipper: no inventory source")
	}
	if deps.DataDir == "" {
		return nil, errors.New("shipper: no data directory")
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
			return nil, errors.New("shipper: no Elasticsearch client")
		}
		outCfg := cfg.Output
		outCfg.ExternalTemplates = cfg.Template.Install // esschema's templates cover dead letters
		w, err := esout.New(outCfg, deps.ES, esout.Options{Logger: deps.Logger.With("component", "esout"), Registerer: deps.Registerer})
		if err != nil {
			return nil, fmt.Errorf("shipper: %w", err)
		}
		out = w
	}
	store, err := checkpoint.Open(deps.DataDir)
	if err != nil {
		return nil, fmt.Errorf("shipper: %w", err)
	}
	var eph [8]byte
	_, _ = rand.Read(eph[:])
	s := &Shipper{
		cfg: cfg, deps: deps, log: deps.Logger, m: m, out: out, store: store,
		ephID:    hex.EncodeToString(eph[:]),
		tplReady: make(chan struct{}),
		readers:  map[string]*reader{},
		apis:     map[string]*apiReader{},
		bySlot:   map[uint32]acker{},
	}
	s.budget = newBudget(int64(cfg.MaxInflightBytes), func(n int64) { m.inflightBytes.Set(float64(n)) })
	if !cfg.Template.Install {
		s.tplOnce.Do(func() { close(s.tplReady) })
	}
	return s, nil
}

// Run ships until ctx is cancelled.
func (s *Shipper) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("shipper: already running")
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
				runErr = fmt.Errorf("shipper: output: %w", err)
			}
			break loop
		case <-sub.Changed():
		}
		for _, ch := range sub.Pending() {
			switch ch.Kind {
			case inventory.Added, inventory.Updated:
				s.ensureReader(ctx, &wg, ch.Container)
			case inventory.Removed:
				s.mu.Lock()
				if r := s.readers[ch.Container.ID]; r != nil && !r.removed.Load() {
					r.removedAt.Store(time.Now().UnixNano())
					r.removed.Store(true)
				}
				if r := s.apis[ch.Container.ID]; r != nil && !r.removed.Load() {
					r.removedAt.Store(time.Now().UnixNano())
					r.removed.Store(true)
				}
				s.mu.Unlock()
			}
		}
	}
	cancel()
	wg.Wait()
	storeCancel()
	<-storeDone
	s.mu.Lock()
	s.readers = map[string]*reader{}
	s.apis = map[string]*apiReader{}
	s.bySlot = map[uint32]acker{}
	s.mu.Unlock()
	s.m.readers.Set(0)
	if runErr != nil {
		return runErr
	}
	return ctx.Err()
}

// acker receives the acknowledgements of one reader's documents.
type acker interface {
	acked(idx uint64, outcome esout.Outcome)
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
	if s.readers[c.ID] != nil || s.apis[c.ID] != nil {
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
	short := c.ID[:min(12, len(c.ID))]
	s.m.readers.Inc()
	var (
		run     func(context.Context)
		removed *atomic.Bool
		forget  func() // drops the reader from its map; s.mu held
	)
	if src == apiLogs {
		r := s.newAPIReader(c, set, slot)
		s.apis[c.ID], s.bySlot[slot] = r, r
		run, removed = r.run, &r.removed
		forget = func() {
			if s.apis[c.ID] == r {
				delete(s.apis, c.ID)
			}
		}
	} else {
		r := s.newReader(c, set, slot)
		s.readers[c.ID], s.bySlot[slot] = r, r
		run, removed = r.run, &r.removed
		forget = func() {
			if s.readers[c.ID] == r {
				delete(s.readers, c.ID)
			}
		}
	}
	wg.Go(func() {
		select {
		case <-s.tplReady:
			run(ctx)
		case <-ctx.Done():
		}
		s.mu.Lock()
		forget()
		gone := removed.Load()
		if gone {
			delete(s.bySlot, slot)
		}
		s.mu.Unlock()
		s.m.readers.Dec()
		if gone {
			s.m.lag.DeleteLabelValues(short)
		}
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
		return errors.New("shipper: not running")
	}
	if p := s.tplErr.Load(); p != nil {
		return *p
	}
	select {
	case <-s.tplReady:
	default:
		return errors.New("shipper: index template not installed yet")
	}
	return s.out.Ready()
}

// DescribeContainer returns the reader state of one container (nil when it
// has no reader).
func (s *Shipper) DescribeContainer(id string) any {
	s.mu.Lock()
	r, a := s.readers[id], s.apis[id]
	s.mu.Unlock()
	switch {
	case r != nil:
		return r.describe()
	case a != nil:
		cp, _ := a.trk.checkpoint()
		return map[string]any{"source": "docker-logs-api", "data_stream": a.set.index(),
			"checkpoint": cp, "inflight_events": a.trk.inflight(), "removed": a.removed.Load()}
	}
	return nil
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

// sendGap writes a gap event to the container's data stream (best effort:
// not tracked by checkpoints).
func (s *Shipper) sendGap(ctx context.Context, r *reader, g tail.Gap) {
	now := time.Now().UTC()
	doc := map[string]any{
		"@timestamp":  now.Format(time.RFC3339Nano),
		"message":     fmt.Sprintf("heartwood: container log data lost before it could be shipped: %s", g.Reason),
		"event":       map[string]any{"kind": "event", "action": "log-gap", "reason": g.Reason, "dataset": r.set.dataset},
		"tags":        []string{"gap"},
		"container":   map[string]any{"id": r.id},
		"host":        map[string]any{"name": s.deps.NodeName},
		"agent":       map[string]any{"type": ecs.AgentType, "version": s.deps.AgentVersion},
		"data_stream": map[string]any{"type": "logs", "dataset": r.set.dataset, "namespace": r.set.namespace},
	}
	if g.Bytes >= 0 {
		doc["heartwood"] = map[string]any{"gap": map[string]any{"bytes": g.Bytes}}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return
	}
	sum := sha256.Sum256(append([]byte(r.id), body...))
	d := esout.Doc{Index: r.set.index(), ID: base64.RawURLEncoding.EncodeToString(sum[:15]), Body: body}
	if err := s.out.Write(ctx, []esout.Doc{d}, func([]esout.Result) {}); err != nil {
		s.log.Warn("send gap event", "err", err)
	}
}

// SendEvent ships one document to logs-<dataset>-<namespace> (the
// configured namespace) and waits until Elasticsearch acknowledged it or ctx
// ends. It fills @timestamp (now, if absent), data_stream.*, event.dataset,
// host.name and agent.*. The _id is a hash of the document, so a retried
// call with the same document (and timestamp) is not indexed twice. If ctx
// ends first the document may still be delivered later.
func (s *Shipper) SendEvent(ctx context.Context, dataset string, doc map[string]any) error {
	if err := validDataStreamPart(dataset); err != nil {
		return fmt.Errorf("shipper: send event: dataset: %w", err)
	}
	select {
	case <-s.tplReady:
	case <-ctx.Done():
		return fmt.Errorf("shipper: send event: %w", ctx.Err())
	}
	d := maps.Clone(doc)
	if _, ok := d["@timestamp"]; !ok {
		d["@timestamp"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	d["data_stream"] = map[string]any{"type": "logs", "dataset": dataset, "namespace": s.cfg.Namespace}
	ev, _ := d["event"].(map[string]any)
	ev = maps.Clone(ev)
	if ev == nil {
		ev = map[string]any{}
	}
	ev["dataset"] = dataset
	d["event"] = ev
	if _, ok := d["host"]; !ok {
		d["host"] = map[string]any{"name": s.deps.NodeName}
	}
	d["agent"] = map[string]any{"type": ecs.AgentType, "version": s.deps.AgentVersion, "name": s.deps.NodeName}
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("shipper: send event: encode: %w", err)
	}
	sum := sha256.Sum256(body)
	done := make(chan esout.Outcome, 1)
	doc1 := esout.Doc{Index: "logs-" + dataset + "-" + s.cfg.Namespace,
		ID: base64.RawURLEncoding.EncodeToString(sum[:15]), Body: body, Raw: body}
	if err := s.out.Write(ctx, []esout.Doc{doc1}, func(rs []esout.Result) { done <- rs[0].Outcome }); err != nil {
		return fmt.Errorf("shipper: send event: %w", err)
	}
	select {
	case o := <-done:
		if o == esout.DeadLettered {
			return errors.New("shipper: send event: rejected by elasticsearch (dead-lettered)")
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("shipper: send event: %w", ctx.Err())
	}
}
