package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"
	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/prometheus/client_golang/prometheus"
)

// DockerAPI is the part of the Docker client the inventory uses.
// *client.Client satisfies it.
type DockerAPI interface {
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
}

// ChangeKind says what happened to a container.
type ChangeKind int

// The kinds of change.
const (
	// Added: the container is new to the inventory.
	Added ChangeKind = iota + 1
	// Updated: the container changed, or Docker reported an event for it
	// that subscribers may act on (kill and stop carry no state change).
	Updated
	// Removed: the container is gone; Change.Container is its last state.
	Removed
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Updated:
		return "updated"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// ActionResync marks changes found by listing the containers again after the
// connection to Docker was re-established rather than from an event.
const ActionResync = "resync"

// Change is one ordered change to the inventory.
type Change struct {
	// Seq increases by one with every change the inventory publishes.
	Seq  uint64
	Kind ChangeKind
	// Action is the Docker event action behind the change (start, die,
	// kill, stop, pause, unpause, health_status, destroy, ...) or
	// ActionResync.
	Action string
	// Container is the new state; for Removed, the last known state.
	Container *Container
	// Previous is the state before the change; nil for Added.
	Previous *Container
	// Time is when the inventory observed the change.
	Time time.Time
	// Attributes are the Docker event's attributes (signal for kill,
	// exitCode for die, ...); nil for resync changes.
	Attributes map[string]string
}

// Options configure an Inventory.
type Options struct {
	// Logger receives connection and sync messages; nil discards them.
	Logger *slog.Logger
	// Registerer receives the inventory's metrics; nil registers none.
	Registerer prometheus.Registerer
	// InspectConcurrency bounds parallel inspects during a full sync.
	InspectConcurrency int
	// MaxBackoff caps the wait between reconnection attempts.
	MaxBackoff time.Duration
	// CallTimeout bounds every Docker call but the long-lived event
	// stream: a list, an inspect, a heartbeat. Default 30s.
	CallTimeout time.Duration
	// Heartbeat is how often the event loop checks that Docker answers
	// while no events arrive. Default 30s.
	Heartbeat time.Duration
	// StallAfter is how long the event loop may go without progress (an
	// event handled or a heartbeat answered) before Connected reports it
	// stalled. Default 2*CallTimeout + Heartbeat.
	StallAfter time.Duration
}

// Inventory is the node's live container inventory. Create it with New and
// run it with Run; it is safe for concurrent use.
type Inventory struct {
	docker DockerAPI
	log    *slog.Logger
	opts   Options
	m      *metrics

	mu         sync.Mutex
	containers map[string]*Container
	feed       Broadcaster
	connected  bool
	lastErr    error
	// progress is when the event loop last handled an event or a
	// heartbeat.
	progress   time.Time
	synced     chan struct{} // closed after the first full sync
	syncedOnce sync.Once
}

// New returns an inventory that reads from docker. Call Run to fill it.
func New(docker DockerAPI, opts Options) *Inventory {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.InspectConcurrency <= 0 {
		opts.InspectConcurrency = 8
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = time.Second
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = 30 * time.Second
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 30 * time.Second
	}
	if opts.StallAfter <= 0 {
		opts.StallAfter = 2*opts.CallTimeout + opts.Heartbeat
	}
	inv := &Inventory{
		docker:     docker,
		log:        opts.Logger,
		opts:       opts,
		containers: make(map[string]*Container),
		synced:     make(chan struct{}),
	}
	inv.m = newMetrics(inv, opts.Registerer)
	return inv
}

// Run keeps the inventory in step with Docker until ctx is cancelled. A lost
// connection is retried with backoff; Run returns only ctx's error.
func (inv *Inventory) Run(ctx context.Context) error {
	retry := backoff.New(100*time.Millisecond, inv.opts.MaxBackoff)
	for {
		start := time.Now()
		err := inv.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		inv.setConnected(false, err)
		inv.m.disconnects.Inc()
		if time.Since(start) > 10*time.Second {
			retry.Reset() // it worked for a while: start over
		}
		wait := retry.Next()
		inv.log.Warn("docker connection lost; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		if err := backoff.Sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// session subscribes to events, lists and syncs, then applies events until
// the stream fails.
func (inv *Inventory) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// Subscribe first, replaying from a moment before the list: every change
	// after the list is then seen as an event, and events that the list
	// already covers are harmless because each one re-inspects.
	since := time.Now().Add(-2 * time.Second)
	msgs, errs := inv.docker.Events(ctx, events.ListOptions{
		Since: fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond()),
		// Network connect/disconnect change a container's addresses
		// without any container event.
		Filters: filters.NewArgs(
			filters.Arg("type", string(events.ContainerEventType)),
			filters.Arg("type", string(events.NetworkEventType)),
		),
	})
	if err := inv.fullSync(ctx); err != nil {
		return fmt.Errorf("sync containers: %w", err)
	}
	inv.setConnected(true, nil)
	inv.syncedOnce.Do(func() { close(inv.synced) })

	// The heartbeat keeps an idle loop's progress current and proves that
	// Docker still answers when no events arrive.
	beat := time.NewTicker(inv.opts.Heartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errs:
			if err == nil {
				err = errors.New("event stream closed")
			}
			return fmt.Errorf("docker events: %w", err)
		case msg := <-msgs:
			inv.handleEvent(ctx, msg)
			inv.markProgress()
		case <-beat.C:
			if err := inv.heartbeat(ctx); err != nil {
				return fmt.Errorf("docker heartbeat: %w", err)
			}
			inv.markProgress()
		}
	}
}

// heartbeat asks Docker for one container: a cheap call that fails when the
// engine stops answering.
func (inv *Inventory) heartbeat(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, inv.opts.CallTimeout)
	defer cancel()
	_, err := inv.docker.ContainerList(ctx, container.ListOptions{Limit: 1})
	return err
}

func (inv *Inventory) markProgress() {
	inv.mu.Lock()
	inv.progress = time.Now()
	inv.mu.Unlock()
}

// fullSync lists every container, inspects them and publishes the
// difference from the current state.
func (inv *Inventory) fullSync(ctx context.Context) error {
	start := time.Now()
	listCtx, cancel := context.WithTimeout(ctx, inv.opts.CallTimeout)
	list, err := inv.docker.ContainerList(listCtx, container.ListOptions{All: true})
	cancel()
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	found := make([]*Container, len(list))
	errs := make([]error, len(list))
	sem := make(chan struct{}, inv.opts.InspectConcurrency)
	var wg sync.WaitGroup
	for i, s := range list {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := inv.inspect(ctx, s.ID)
			found[i], errs[i] = c, err
		}()
	}
	wg.Wait()

	now := make(map[string]*Container, len(list))
	for i, c := range found {
		if errs[i] != nil {
			return errs[i]
		}
		if c != nil { // nil: removed between list and inspect
			now[c.ID] = c
		}
	}

	inv.mu.Lock()
	defer inv.mu.Unlock()
	ids := make([]string, 0, len(now))
	for id := range now {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		inv.upsertLocked(now[id], ActionResync, nil, false)
	}
	var gone []string
	for id := range inv.containers {
		if _, ok := now[id]; !ok {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		inv.removeLocked(id, ActionResync)
	}
	inv.m.syncs.Inc()
	inv.m.syncDuration.Observe(time.Since(start).Seconds())
	inv.log.Info("docker inventory synced", "containers", len(now), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// inspect returns the container's current state, or nil if it no longer
// exists.
func (inv *Inventory) inspect(ctx context.Context, id string) (*Container, error) {
	ctx, cancel := context.WithTimeout(ctx, inv.opts.CallTimeout)
	defer cancel()
	resp, err := inv.docker.ContainerInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		inv.m.errors.WithLabelValues("inspect").Inc()
		return nil, fmt.Errorf("inspect %.12s: %w", id, err)
	}
	return fromInspect(resp), nil
}

// normalizeAction strips the detail Docker appends to some actions
// ("health_status: healthy", "exec_start: sh -c ...").
func normalizeAction(a string) string {
	action, _, _ := strings.Cut(a, ":")
	return strings.TrimSpace(action)
}

// notableActions are published even when the container's state did not
// change, because subscribers act on them (the registrar drains on kill and
// stop before the container dies).
var notableActions = map[string]bool{"kill": true, "stop": true}

func (inv *Inventory) handleEvent(ctx context.Context, msg events.Message) {
	action := normalizeAction(string(msg.Action))
	id := msg.Actor.ID
	if msg.Type == events.NetworkEventType {
		// The container is the event's attribute; the actor is the network.
		if action != "connect" && action != "disconnect" {
			return
		}
		id = msg.Actor.Attributes["container"]
		action = "network_" + action
	}
	if id == "" || strings.HasPrefix(action, "exec_") || action == "attach" ||
		action == "detach" || action == "resize" || action == "top" ||
		action == "export" || action == "archive-path" || action == "extract-to-dir" {
		return
	}
	inv.m.events.WithLabelValues(action).Inc()
	attrs := msg.Actor.Attributes
	if action == "network_connect" {
		// Docker connects a starting container's networks while it holds
		// the container's lock for the whole start, so an inspect now
		// waits until the start is done (a second or more with published
		// ports) and holds up every later event of every container. A
		// container that is not running yet gets its start event, and its
		// networks are inspected then.
		inv.mu.Lock()
		prev, ok := inv.containers[id]
		inv.mu.Unlock()
		if ok && !prev.State.Running {
			return
		}
	}
	if action == "destroy" {
		inv.mu.Lock()
		inv.removeLocked(id, action)
		inv.mu.Unlock()
		return
	}
	if notableActions[action] {
		// kill and stop change nothing an inspect would show yet, and an
		// inspect of a container being torn down waits on Docker's
		// container lock for up to hundreds of milliseconds, delaying every
		// later event: publish the known state with the event.
		inv.mu.Lock()
		prev, ok := inv.containers[id]
		if ok {
			inv.upsertLocked(prev, action, attrs, true)
		}
		inv.mu.Unlock()
		if ok {
			return
		}
	}
	if action == "die" {
		// Docker answers an inspect after die only once the container is
		// torn down, tens to hundreds of milliseconds later: publish what
		// the event itself says at once, then the inspected state.
		inv.mu.Lock()
		if prev, ok := inv.containers[id]; ok && prev.State.Running {
			inv.upsertLocked(diedFromEvent(prev, msg), action, attrs, false)
		}
		inv.mu.Unlock()
	}
	c, err := inv.inspect(ctx, id)
	if err != nil {
		// The stream will fail too if Docker is gone; a transient inspect
		// error is repaired by the next event or sync.
		inv.log.Warn("inspect after event failed", "container", id, "action", action, "err", err)
		return
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if c == nil {
		inv.removeLocked(id, action)
		return
	}
	inv.upsertLocked(c, action, attrs, notableActions[action])
}

// diedFromEvent is prev as a die event describes it: stopped, with the exit
// code the event carries.
func diedFromEvent(prev *Container, msg events.Message) *Container {
	c := *prev
	c.State.Running, c.State.Paused, c.State.Restarting = false, false, false
	c.State.Status = "exited"
	c.State.Pid = 0
	if code, err := strconv.Atoi(msg.Actor.Attributes["exitCode"]); err == nil {
		c.State.ExitCode = code
	}
	if msg.TimeNano > 0 {
		c.State.FinishedAt = time.Unix(0, msg.TimeNano).UTC()
	}
	return &c
}

func (inv *Inventory) upsertLocked(c *Container, action string, attrs map[string]string, always bool) {
	prev, ok := inv.containers[c.ID]
	switch {
	case !ok:
		inv.containers[c.ID] = c
		inv.publishLocked(Change{Kind: Added, Action: action, Container: c, Attributes: attrs})
	case always || !prev.Equal(c):
		inv.containers[c.ID] = c
		inv.publishLocked(Change{Kind: Updated, Action: action, Container: c, Previous: prev, Attributes: attrs})
	}
}

func (inv *Inventory) removeLocked(id, action string) {
	prev, ok := inv.containers[id]
	if !ok {
		return
	}
	delete(inv.containers, id)
	inv.publishLocked(Change{Kind: Removed, Action: action, Container: prev, Previous: prev})
}

func (inv *Inventory) publishLocked(ch Change) {
	ch = inv.feed.Publish(ch)
	inv.m.changes.WithLabelValues(ch.Kind.String()).Inc()
}

func (inv *Inventory) setConnected(ok bool, err error) {
	inv.mu.Lock()
	inv.connected, inv.lastErr = ok, err
	inv.progress = time.Now()
	inv.mu.Unlock()
}

// Connected reports whether the inventory currently follows Docker's event
// stream, and the last connection error if it does not. An event loop that
// has made no progress for Options.StallAfter (a Docker call that does not
// return) counts as not connected.
func (inv *Inventory) Connected() (bool, error) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.connected {
		if idle := time.Since(inv.progress); idle > inv.opts.StallAfter {
			return false, fmt.Errorf("docker event loop stalled: no progress for %s", idle.Round(time.Second))
		}
	}
	return inv.connected, inv.lastErr
}

// Synced is closed once the first full sync with Docker completed.
func (inv *Inventory) Synced() <-chan struct{} { return inv.synced }

// Get returns the container with the given full ID.
func (inv *Inventory) Get(id string) (*Container, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	c, ok := inv.containers[id]
	return c, ok
}

// Lookup finds a container by full ID, unique ID prefix or name.
func (inv *Inventory) Lookup(ref string) (*Container, bool) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if c, ok := inv.containers[NormalizeRef(ref)]; ok {
		return c, true
	}
	c, err := Find(inv.listLocked(), func(c *Container) *Container { return c }, ref)
	return c, err == nil
}

// List returns all containers, sorted by name.
func (inv *Inventory) List() []*Container {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.listLocked()
}

func (inv *Inventory) listLocked() []*Container {
	out := make([]*Container, 0, len(inv.containers))
	for _, c := range inv.containers {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Subscribe waits until the inventory has completed its first full sync
// with Docker, then returns a subscription whose Snapshot is the inventory
// at that moment and whose Pending yields every later change in order. It
// returns ctx's error if ctx ends first. Close the subscription when done.
//
// Subscribers never see a partial first view: this is the one place that
// waits for the initial sync.
func (inv *Inventory) Subscribe(ctx context.Context) (Subscription, error) {
	select {
	case <-inv.synced:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	inv.mu.Lock()
	defer inv.mu.Unlock()
	return inv.feed.Subscribe(inv.listLocked()), nil
}
