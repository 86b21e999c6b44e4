// Package registrar keeps the local Consul agent's services equal to this
// node's containers: a drop-in replacement for gliderlabs/registrator that
// reconciles instead of only reacting.
//
// The desired state comes from the container inventory, translated by
// registrar/translate; the actual state is the local agent's services that
// carry this node's ownership Meta (managed_by=heartwood and
// heartwood_node=<node>). Every inventory change triggers an incremental
// reconcile of the containers it touched, and a full reconcile (which reads
// the agent) runs at start, periodically, and after any failure. Both write
// only the difference, so a steady state makes no writes. Only agent
// endpoints are used; catalog writes would be undone by anti-entropy.
package registrar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// Source is the container inventory as the registrar uses it;
// *inventory.Inventory and inventorytest.Fake satisfy it. Subscribe returns
// only after the inventory's first full sync, so an empty snapshot is never
// mistaken for a node without containers.
type Source interface {
	Subscribe(ctx context.Context) (inventory.Subscription, error)
	Get(id string) (*inventory.Container, bool)
}

// Deps are the registrar's collaborators.
type Deps struct {
	// Source is the node's container inventory.
	Source Source
	// Consul is a client for the local Consul agent.
	Consul *consulapi.Client
	// NodeName is the node hostname used in service IDs
	// (<node>:<container>:<port>[:udp]) and ownership Meta.
	NodeName string
	// Logger receives the registrar's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the registrar's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// agentAPI is the part of the Consul agent API the registrar uses;
// *consulapi.Agent satisfies it.
type agentAPI interface {
	ServicesWithFilterOpts(filter string, q *consulapi.QueryOptions) (map[string]*consulapi.AgentService, error)
	ChecksWithFilterOpts(filter string, q *consulapi.QueryOptions) (map[string]*consulapi.AgentCheck, error)
	ServiceRegisterOpts(service *consulapi.AgentServiceRegistration, opts consulapi.ServiceRegisterOpts) error
	ServiceDeregisterOpts(serviceID string, q *consulapi.QueryOptions) error
	EnableServiceMaintenanceOpts(serviceID, reason string, q *consulapi.QueryOptions) error
	DisableServiceMaintenanceOpts(serviceID string, q *consulapi.QueryOptions) error
	UpdateTTLOpts(checkID, output, status string, q *consulapi.QueryOptions) error
	Self() (map[string]map[string]interface{}, error)
}

// Registrar registers this node's containers with the local Consul agent.
// Create it with New and run it with Run.
type Registrar struct {
	cfg   Config
	src   Source
	agent agentAPI
	node  string
	log   *slog.Logger
	m     *metrics

	// work serialises reconciles and Maintenance: one writer at a time.
	work sync.Mutex

	mu         sync.Mutex // guards the fields below; never held during I/O
	containers map[string]*inventory.Container
	results    map[string]translate.Result   // by container ID
	desired    map[string]*translate.Service // by service ID
	owner      map[string]string             // service ID → container ID
	contested  map[string]map[string]bool    // service ID → containers refused it
	actual     map[string]*actualService     // by service ID
	explicit   map[string]string             // container ID → maintenance reason
	drain      map[string]drainState         // container ID → kill/stop seen
	foreign    map[string]string             // Registrator-format stale IDs → reason
	rejected   map[string]rejection          // service ID → Consul's refusal of that version
	hostIP     string
	loaded     bool
	readyErr   error
}

// actualService is what the local agent has for one of our services.
type actualService struct {
	container string
	hash      string
	maint     bool
	health    string // status of the Docker health check, "" if none
}

// rejection records that Consul refused a registration (HTTP 4xx other
// than 403/429): retrying the same content cannot succeed, so it is not
// retried until the desired service changes.
type rejection struct {
	hash string
	err  string
	at   time.Time
}

// rejectionTTL is how long a rejected registration is left alone before a
// full reconcile tries it again (in case the refusal was transient).
const rejectionTTL = 10 * time.Minute

type drainState struct {
	at      time.Time
	started time.Time
}

// New returns a registrar; it touches nothing until Run.
func New(cfg Config, deps Deps) (*Registrar, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Source == nil {
		return nil, errors.New("registrar: deps.Source is nil")
	}
	if deps.Consul == nil {
		return nil, errors.New("registrar: deps.Consul is nil")
	}
	return newRegistrar(cfg, deps, deps.Consul.Agent())
}

func newRegistrar(cfg Config, deps Deps, agent agentAPI) (*Registrar, error) {
	if err := validNode(deps.NodeName); err != nil {
		return nil, fmt.Errorf("registrar: node name %q: %w", deps.NodeName, err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registrar{
		cfg:        cfg,
		src:        deps.Source,
		agent:      agent,
		node:       deps.NodeName,
		log:        log.With("subsystem", "registrar"),
		m:          newMetrics(deps.Registerer),
		containers: map[string]*inventory.Container{},
		results:    map[string]translate.Result{},
		desired:    map[string]*translate.Service{},
		owner:      map[string]string{},
		contested:  map[string]map[string]bool{},
		actual:     map[string]*actualService{},
		explicit:   map[string]string{},
		drain:      map[string]drainState{},
		foreign:    map[string]string{},
		rejected:   map[string]rejection{},
		hostIP:     cfg.IP,
		readyErr:   errors.New("registrar: not yet reconciled with consul"),
	}, nil
}

func validNode(n string) error {
	if n == "" {
		return errors.New("empty")
	}
	if strings.ContainsAny(n, "\"\\/ ?#%:") {
		return errors.New("contains a character not allowed in service IDs")
	}
	return nil
}

// Ready returns nil once a full reconcile with Consul succeeded and the
// last one did not fail.
func (r *Registrar) Ready() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.readyErr
}

// Run registers and deregisters services until ctx ends, then (only with
// deregister-on-shutdown) removes this node's services. It returns nil when
// ctx ends.
func (r *Registrar) Run(ctx context.Context) error {
	sub, err := r.src.Subscribe(ctx)
	if err != nil {
		return nil // ctx ended before the inventory's first sync
	}
	defer sub.Close()
	r.mu.Lock()
	for _, c := range sub.Snapshot() {
		r.containers[c.ID] = c
	}
	r.mu.Unlock()

	dirty := map[string]time.Time{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	needFull := true
	backoff := r.cfg.RetryInterval
	retry := func(err error) {
		needFull = true
		wait := backoff/2 + rand.N(backoff/2+1)
		backoff = min(2*backoff, r.cfg.RetryMaxInterval)
		r.log.Warn("consul reconcile failed; retrying", "err", err, "retry_in", wait.Round(time.Millisecond))
		timer.Reset(wait)
	}
	for {
		select {
		case <-ctx.Done():
			r.shutdown(ctx)
			return nil
		case <-sub.Changed():
			r.ingest(sub.Pending(), dirty)
			if needFull || len(dirty) == 0 {
				continue
			}
			err := r.reconcile(ctx, false, dirty)
			clear(dirty)
			if err != nil && ctx.Err() == nil {
				retry(err)
			}
		case <-timer.C:
			r.ingest(sub.Pending(), dirty)
			err := r.reconcile(ctx, true, dirty)
			if ctx.Err() != nil {
				continue
			}
			if err != nil {
				r.setReady(fmt.Errorf("registrar: reconcile with consul: %w", err))
				retry(err)
				continue
			}
			r.setReady(nil)
			clear(dirty)
			needFull = false
			backoff = r.cfg.RetryInterval
			timer.Reset(r.cfg.ReconcileInterval)
		}
	}
}

func (r *Registrar) setReady(err error) {
	r.mu.Lock()
	r.readyErr = err
	r.mu.Unlock()
}

// ingest applies inventory changes to the registrar's container map and
// notes which containers need a reconcile, with the time of their first
// change.
func (r *Registrar) ingest(changes []inventory.Change, dirty map[string]time.Time) {
	if len(changes) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range changes {
		c := ch.Container
		if c == nil {
			continue
		}
		id := c.ID
		if ch.Kind == inventory.Removed {
			delete(r.containers, id)
			delete(r.drain, id)
			delete(r.explicit, id)
		} else {
			r.containers[id] = c
		}
		switch ch.Action {
		case "kill", "stop":
			if c.State.Running && ch.Kind != inventory.Removed && !reloadSignal(ch.Attributes["signal"]) {
				r.drain[id] = drainState{at: ch.Time, started: c.State.StartedAt}
			}
		case "start", "restart":
			delete(r.drain, id)
		}
		if d, ok := r.drain[id]; ok && !c.State.StartedAt.Equal(d.started) {
			delete(r.drain, id)
		}
		if t, ok := dirty[id]; !ok || ch.Time.Before(t) {
			dirty[id] = ch.Time
		}
	}
}

// reloadSignal reports signals that applications take as "reload" or
// "report", not "stop" (docker kill -s HUP): they do not drain services.
func reloadSignal(sig string) bool {
	switch strings.TrimPrefix(strings.ToUpper(sig), "SIG") {
	case "1", "HUP", "10", "USR1", "12", "USR2", "28", "WINCH":
		return true
	}
	return false
}

// ErrNotReady is returned by Maintenance before the first full reconcile
// with Consul.
var ErrNotReady = errors.New("registrar: not yet reconciled with consul")

// Maintenance puts every service of the container into Consul maintenance
// (on) or takes them out of it (off), and keeps that state across
// reconciles and Consul restarts until it is turned off or the container
// is removed. It returns nil once Consul has the new state.
//
// On error (ErrNotReady before the first reconcile, or Consul's error) a
// request to turn maintenance on has no lasting effect: the previous state
// is restored and any service already switched is switched back by the next
// reconcile, so a caller that gives up (e.g. does not pause the container)
// leaves the services in DNS. A request to turn it off stays recorded and
// is applied when Consul answers again.
func (r *Registrar) Maintenance(ctx context.Context, containerID string, on bool, reason string) error {
	if reason == "" {
		reason = "maintenance requested by Heartwood"
	}
	r.mu.Lock()
	prev, had := r.explicit[containerID]
	if on {
		r.explicit[containerID] = reason
	} else {
		delete(r.explicit, containerID)
	}
	if _, ok := r.containers[containerID]; !ok {
		if c, found := r.src.Get(containerID); found {
			r.containers[containerID] = c
		}
	}
	loaded := r.loaded
	r.mu.Unlock()
	var err error
	if !loaded {
		err = ErrNotReady
	} else if err = r.reconcile(ctx, false, map[string]time.Time{containerID: {}}); err != nil {
		err = fmt.Errorf("registrar: maintenance for %.12s: %w", containerID, err)
	}
	if err != nil && on {
		r.mu.Lock()
		if had {
			r.explicit[containerID] = prev
		} else {
			delete(r.explicit, containerID)
		}
		r.mu.Unlock()
	}
	return err
}

func (r *Registrar) options() translate.Options {
	o := translate.Options{
		Node:          r.node,
		HostIP:        r.hostIP,
		Internal:      r.cfg.Internal,
		Explicit:      r.cfg.Explicit,
		IPFromLabel:   r.cfg.IPFromLabel,
		Tags:          r.cfg.Tags,
		Network:       r.cfg.Network,
		IPv6:          r.cfg.IPv6,
		DockerHealth:  r.cfg.DockerHealth,
		CheckInterval: r.cfg.CheckInterval.String(),
		RequireLabels: r.cfg.RequireLabels,
	}
	o.Lookup = r.lookupLocked
	return o
}

// lookupLocked finds a container by ID, ID prefix or name; r.mu is held by
// the caller (Translate calls it during recompute).
func (r *Registrar) lookupLocked(ref string) (*inventory.Container, bool) {
	if c, ok := r.containers[ref]; ok {
		return c, true
	}
	for _, c := range r.containers {
		if c.Names(ref) {
			return c, true
		}
	}
	return nil, false
}

// retainedLocked reports whether services of a stopped container stay
// registered under the deregistration policy.
func (r *Registrar) retainedLocked(id string) bool {
	c, ok := r.containers[id]
	if !ok || (c.State.Running && !c.State.Restarting) {
		return false
	}
	switch r.cfg.Deregister {
	case DeregisterNever:
		return true
	case DeregisterOnSuccess:
		code := c.State.ExitCode
		return code != 0 && code&0x80 == 0 // failed, and not killed by a signal
	}
	return false
}

// maintenanceLocked returns why a container's services should be in
// maintenance, "" if they should not.
func (r *Registrar) maintenanceLocked(id string) string {
	if reason := r.explicit[id]; reason != "" {
		return reason
	}
	if _, ok := r.drain[id]; ok {
		return "container is stopping (Docker kill/stop event)"
	}
	if c, ok := r.containers[id]; ok && c.State.Paused {
		return "container is paused"
	}
	return ""
}

// recomputeLocked translates one container again and updates the desired
// services and their owners. It returns the service IDs whose desired
// state may have changed and the containers to recompute because an ID
// they wanted became free.
func (r *Registrar) recomputeLocked(id string, o translate.Options) (ids []string, retry []string) {
	for sid, own := range r.owner {
		if own == id {
			ids = append(ids, sid)
		}
	}
	oldOwned := map[string]bool{}
	for _, sid := range ids {
		oldOwned[sid] = true
		delete(r.owner, sid)
		delete(r.desired, sid)
	}
	for sid, set := range r.contested {
		delete(set, id)
		if len(set) == 0 {
			delete(r.contested, sid)
		}
	}
	c, ok := r.containers[id]
	if !ok {
		delete(r.results, id)
	} else {
		res := translate.Translate(c, o)
		kept := res.Services[:0]
		for _, s := range res.Services {
			if other, taken := r.owner[s.ID]; taken && other != id {
				name := other
				if oc, ok := r.containers[other]; ok {
					name = oc.Name
				}
				res.Skipped = append(res.Skipped, translate.Skip{
					Port: strconv.Itoa(s.ContainerPort) + "/" + s.Proto, ServiceID: s.ID,
					Reason: "service ID already registered for container " + name,
				})
				if r.contested[s.ID] == nil {
					r.contested[s.ID] = map[string]bool{}
				}
				r.contested[s.ID][id] = true
				continue
			}
			kept = append(kept, s)
			r.owner[s.ID] = id
			r.desired[s.ID] = s
			ids = append(ids, s.ID)
		}
		res.Services = kept
		r.results[id] = res
	}
	for sid := range oldOwned {
		if _, still := r.owner[sid]; !still {
			for other := range r.contested[sid] {
				retry = append(retry, other)
			}
		}
	}
	for sid, a := range r.actual {
		if a.container == id {
			ids = append(ids, sid)
		}
	}
	return ids, retry
}

// step is one Consul write.
type step struct {
	op        string
	id        string
	reg       *consulapi.AgentServiceRegistration
	enable    bool
	reason    string
	checkID   string
	status    string
	container string
}

// plan is the writes for one service ID, run in order.
type plan struct {
	id    string
	steps []step
}

// planLocked compares desired and actual state for the given service IDs
// and returns the writes that make them equal. Drift is counted by kind.
func (r *Registrar) planLocked(ids []string, full bool) []plan {
	sort.Strings(ids)
	ids = compactSorted(ids)
	var plans []plan
	drift := 0
	count := func(kind string) {
		drift++
		r.m.drift.WithLabelValues(kind).Inc()
	}
	for _, sid := range ids {
		want, have := r.desired[sid], r.actual[sid]
		p := plan{id: sid}
		switch {
		case want == nil && have == nil:
		case want == nil:
			if r.retainedLocked(have.container) {
				break
			}
			count("stale")
			p.steps = append(p.steps, step{op: opDeregister, id: sid, container: have.container})
		default:
			owner := r.owner[sid]
			reason := r.maintenanceLocked(owner)
			maint := reason != ""
			if rj, ok := r.rejected[sid]; ok && rj.hash == want.Hash {
				break // Consul refused this exact registration; see DescribeContainer
			}
			if have == nil || have.hash != want.Hash {
				if have == nil {
					count("missing")
				} else {
					count("changed")
				}
				p.steps = append(p.steps, step{op: opRegister, id: sid, reg: want.Registration(), container: owner})
				if maint {
					p.steps = append(p.steps, step{op: opMaintenance, id: sid, enable: true, reason: reason, container: owner})
				}
				break
			}
			if have.maint != maint {
				count("maintenance")
				p.steps = append(p.steps, step{op: opMaintenance, id: sid, enable: maint, reason: reason, container: owner})
			}
			if want.HealthCheckID != "" && have.health != want.HealthStatus {
				count("health")
				p.steps = append(p.steps, step{op: opHealth, id: sid, checkID: want.HealthCheckID, status: want.HealthStatus, container: owner})
			}
		}
		if len(p.steps) > 0 {
			plans = append(plans, p)
		}
	}
	if full {
		fids := make([]string, 0, len(r.foreign))
		for sid := range r.foreign {
			fids = append(fids, sid)
		}
		sort.Strings(fids)
		for _, sid := range fids {
			count("stale")
			plans = append(plans, plan{id: sid, steps: []step{{op: opDeregister, id: sid}}})
		}
		r.m.lastDrift.Set(float64(drift))
	}
	return plans
}

func compactSorted(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// reconcile brings Consul in line with the desired state: for the dirty
// containers only, or (full) for everything after reading the agent.
func (r *Registrar) reconcile(ctx context.Context, full bool, dirty map[string]time.Time) error {
	r.work.Lock()
	defer r.work.Unlock()
	start := time.Now()
	mode := "incremental"
	if full {
		mode = "full"
	}

	var fresh map[string]*actualService
	var foreign map[string]string
	if full {
		var err error
		if fresh, foreign, err = r.readActual(ctx); err != nil {
			r.m.reconciles.WithLabelValues(mode, "error").Inc()
			return err
		}
	}

	r.mu.Lock()
	if full {
		r.actual, r.foreign, r.loaded = fresh, foreign, true
		for id, d := range r.drain {
			if c, ok := r.containers[id]; ok && c.State.Running && time.Since(d.at) > r.cfg.DrainTimeout {
				delete(r.drain, id)
			}
		}
		for id := range r.explicit {
			if _, ok := r.containers[id]; !ok {
				delete(r.explicit, id) // a container that never existed or is gone
			}
		}
	}
	o := r.options()
	var ids []string
	if full {
		r.desired, r.owner, r.contested, r.results = map[string]*translate.Service{}, map[string]string{}, map[string]map[string]bool{}, map[string]translate.Result{}
		for _, id := range r.orderLocked() {
			got, _ := r.recomputeLocked(id, o)
			ids = append(ids, got...)
		}
		for sid := range r.actual {
			ids = append(ids, sid)
		}
		for sid, rj := range r.rejected {
			if d := r.desired[sid]; d == nil || d.Hash != rj.hash || time.Since(rj.at) > rejectionTTL {
				delete(r.rejected, sid)
			}
		}
	} else {
		queue := make([]string, 0, len(dirty))
		for id := range dirty {
			queue = append(queue, id)
			queue = append(queue, r.sharersLocked(id)...)
		}
		sort.Strings(queue)
		seen := map[string]bool{}
		for len(queue) > 0 {
			id := queue[0]
			queue = queue[1:]
			if seen[id] {
				continue
			}
			seen[id] = true
			got, retry := r.recomputeLocked(id, o)
			ids = append(ids, got...)
			queue = append(queue, retry...)
		}
	}
	plans := r.planLocked(ids, full)
	r.updateGaugesLocked()
	r.mu.Unlock()

	err := r.execute(ctx, plans, dirty)
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.m.reconciles.WithLabelValues(mode, result).Inc()
	r.m.reconcileDur.WithLabelValues(mode).Observe(time.Since(start).Seconds())
	if len(plans) > 0 {
		r.log.Debug("reconciled", "mode", mode, "writes", len(plans), "took", time.Since(start).Round(time.Microsecond), "err", err)
	}
	return err
}

// sharersLocked returns the containers that use the network namespace of
// container id (network mode container:<id or name>): their address is
// that container's, so they are reconciled with it.
func (r *Registrar) sharersLocked(id string) []string {
	c, ok := r.containers[id]
	var out []string
	for oid, o := range r.containers {
		ref, shared := strings.CutPrefix(o.NetworkMode, "container:")
		if !shared || oid == id || ref == "" {
			continue
		}
		if ref == id || (ok && ref == c.Name) || (len(ref) >= 12 && strings.HasPrefix(id, ref)) {
			out = append(out, oid)
		}
	}
	return out
}

// orderLocked lists the containers oldest first, so that on a service ID
// conflict the older container keeps the ID.
func (r *Registrar) orderLocked() []string {
	ids := make([]string, 0, len(r.containers))
	for id := range r.containers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := r.containers[ids[i]], r.containers[ids[j]]
		if !a.Created.Equal(b.Created) {
			return a.Created.Before(b.Created)
		}
		return a.ID < b.ID
	})
	return ids
}

func (r *Registrar) updateGaugesLocked() {
	r.m.desired.Set(float64(len(r.desired)))
	skipped := 0
	for id, res := range r.results {
		if c, ok := r.containers[id]; ok && c.State.Running {
			skipped += len(res.Skipped)
		}
	}
	r.m.skipped.Set(float64(skipped))
}

// ownFilter selects this node's services on the agent.
func (r *Registrar) ownFilter() string {
	return fmt.Sprintf(`Meta.%s == %q and Meta.%s == %q`, translate.MetaManagedBy, translate.ManagedByValue, translate.MetaNode, r.node)
}

// readActual reads this node's services, their maintenance and Docker
// health check states, and (with cleanup-registrator) stale services in
// Registrator's ID format.
func (r *Registrar) readActual(ctx context.Context) (map[string]*actualService, map[string]string, error) {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	if r.hostIP == "" {
		addr, err := r.agentAddress()
		if err != nil {
			r.m.errors.WithLabelValues("read").Inc()
			return nil, nil, fmt.Errorf("read agent address: %w", err)
		}
		r.mu.Lock()
		r.hostIP = addr
		r.mu.Unlock()
	}
	svcs, err := r.agent.ServicesWithFilterOpts(r.ownFilter(), q)
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	checks, err := r.agent.ChecksWithFilterOpts(`Type == "maintenance" or Name == "Docker health"`, q)
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return nil, nil, fmt.Errorf("list checks: %w", err)
	}
	out := make(map[string]*actualService, len(svcs))
	for id, s := range svcs {
		out[id] = &actualService{container: s.Meta[translate.MetaContainer], hash: s.Meta[translate.MetaHash]}
	}
	for _, c := range checks {
		a := out[c.ServiceID]
		if a == nil {
			continue
		}
		switch {
		case c.Type == "maintenance":
			a.maint = true
		case c.CheckID == "service:"+c.ServiceID+":docker-health":
			a.health = c.Status
		}
	}
	var foreign map[string]string
	if r.cfg.CleanupRegistrator {
		if foreign, err = r.readForeign(q); err != nil {
			return nil, nil, err
		}
	}
	return out, foreign, nil
}

var registratorID = regexp.MustCompile(`^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$`)

// readForeign finds services in Registrator's ID format for this node that
// Heartwood does not own and no running container backs.
func (r *Registrar) readForeign(q *consulapi.QueryOptions) (map[string]string, error) {
	all, err := r.agent.ServicesWithFilterOpts("", q)
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return nil, fmt.Errorf("list services for cleanup: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	running := map[string]bool{}
	for _, c := range r.containers {
		if c.State.Running {
			running[c.Name] = true
		}
	}
	out := map[string]string{}
	for id, s := range all {
		if s.Meta[translate.MetaManagedBy] == translate.ManagedByValue {
			continue
		}
		m := registratorID.FindStringSubmatch(id)
		if m == nil || m[1] != r.node || running[m[2]] {
			continue
		}
		out[id] = "registrator-format service without a running container " + m[2]
	}
	return out, nil
}

// agentAddress returns the local Consul agent's advertise address, used
// for published ports when registrar.ip is unset.
func (r *Registrar) agentAddress() (string, error) {
	self, err := r.agent.Self()
	if err != nil {
		return "", err
	}
	if m, ok := self["Member"]; ok {
		if a, ok := m["Addr"].(string); ok && a != "" {
			return a, nil
		}
	}
	if c, ok := self["Config"]; ok {
		if a, ok := c["AdvertiseAddr"].(string); ok && a != "" {
			return a, nil
		}
	}
	return "", errors.New("agent self has no Member.Addr")
}

// execute runs the plans with bounded concurrency, updating the actual
// state after every successful write.
func (r *Registrar) execute(ctx context.Context, plans []plan, since map[string]time.Time) error {
	if len(plans) == 0 {
		return nil
	}
	workers := min(r.cfg.WriteConcurrency, len(plans))
	next := make(chan plan)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				if err := r.run(ctx, p, since); err != nil && errs[w] == nil {
					errs[w] = err
				}
			}
		}()
	}
feed:
	for _, p := range plans {
		select {
		case next <- p:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// run performs one service's writes in order, stopping at the first error.
func (r *Registrar) run(ctx context.Context, p plan, since map[string]time.Time) error {
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	for _, s := range p.steps {
		var err error
		switch s.op {
		case opRegister:
			err = r.agent.ServiceRegisterOpts(s.reg, consulapi.ServiceRegisterOpts{ReplaceExistingChecks: true}.WithContext(ctx))
		case opDeregister:
			err = r.agent.ServiceDeregisterOpts(s.id, q)
		case opMaintenance:
			if s.enable {
				err = r.agent.EnableServiceMaintenanceOpts(s.id, s.reason, q)
			} else {
				err = r.agent.DisableServiceMaintenanceOpts(s.id, q)
			}
		case opHealth:
			err = r.agent.UpdateTTLOpts(s.checkID, "Docker health: "+s.status, s.status, q)
		}
		r.m.writes.WithLabelValues(s.op).Inc()
		if s.op == opRegister && permanent(err) {
			r.m.errors.WithLabelValues("rejected").Inc()
			r.mu.Lock()
			r.rejected[s.id] = rejection{hash: s.reg.Meta[translate.MetaHash], err: err.Error(), at: time.Now()}
			r.mu.Unlock()
			r.log.Warn("consul rejected the service registration; not retried until it changes", "service_id", s.id, "container", inventory.ShortID(s.container), "err", err)
			return nil
		}
		if err != nil {
			r.m.errors.WithLabelValues(s.op).Inc()
			return fmt.Errorf("%s %s: %w", s.op, s.id, err)
		}
		r.applied(s, since)
	}
	return nil
}

// applied records a successful write in the actual state.
func (r *Registrar) applied(s step, since map[string]time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch s.op {
	case opRegister:
		a := &actualService{container: s.container, hash: s.reg.Meta[translate.MetaHash]}
		for _, c := range s.reg.Checks {
			if strings.HasSuffix(c.CheckID, ":docker-health") && c.CheckID == "service:"+s.id+":docker-health" {
				a.health = c.Status
			}
		}
		r.actual[s.id] = a
		r.m.registrations.Inc()
		r.log.Info("service registered", "service_id", s.id, "service", s.reg.Name, "container", inventory.ShortID(s.container))
	case opDeregister:
		delete(r.actual, s.id)
		delete(r.foreign, s.id)
		r.m.deregistration.Inc()
		r.log.Info("service deregistered", "service_id", s.id, "container", inventory.ShortID(s.container))
	case opMaintenance:
		if a := r.actual[s.id]; a != nil {
			a.maint = s.enable
		}
		r.log.Info("service maintenance", "service_id", s.id, "enabled", s.enable, "reason", s.reason)
	case opHealth:
		if a := r.actual[s.id]; a != nil {
			a.health = s.status
		}
		r.log.Info("service docker health", "service_id", s.id, "status", s.status)
	}
	if t, ok := since[s.container]; ok && !t.IsZero() && (s.op == opRegister || s.op == opDeregister || s.op == opHealth) {
		r.m.eventLatency.Observe(time.Since(t).Seconds())
	}
}

// permanent reports whether the agent answered a registration with an
// error about its content (4xx other than 403/408/429, or the 500 Consul
// uses for refused checks such as disabled script checks), so that sending
// the same content again cannot succeed.
func permanent(err error) bool {
	var se consulapi.StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch {
	case se.Code == 403 || se.Code == 408 || se.Code == 429:
		return false
	case se.Code >= 400 && se.Code < 500, se.Code == 500:
		return true
	}
	return false
}

// shutdown deregisters this node's services if configured to.
func (r *Registrar) shutdown(ctx context.Context) {
	if !r.cfg.DeregisterOnShutdown {
		r.log.Info("stopping; services stay registered (deregister-on-shutdown is off)")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	r.work.Lock()
	defer r.work.Unlock()
	q := (&consulapi.QueryOptions{}).WithContext(ctx)
	svcs, err := r.agent.ServicesWithFilterOpts(r.ownFilter(), q)
	if err != nil {
		r.log.Error("deregister on shutdown: list services", "err", err)
		return
	}
	plans := make([]plan, 0, len(svcs))
	for id, s := range svcs {
		plans = append(plans, plan{id: id, steps: []step{{op: opDeregister, id: id, container: s.Meta[translate.MetaContainer]}}})
	}
	if err := r.execute(ctx, plans, nil); err != nil {
		r.log.Error("deregister on shutdown", "err", err)
		return
	}
	r.log.Info("deregistered all services on shutdown", "services", len(plans))
}
