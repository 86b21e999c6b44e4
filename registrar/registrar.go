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
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	consulapi "github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// Deps are the registrar's collaborators.
type Deps struct {
	// Source is the node's container inventory.
	Source inventory.Source
	// Consul is a client for the local Consul agent.
	Consul *consulapi.Client
	// NodeName is the node hostname used in service IDs
	// (<node>:<container>:<port>[:udp]) and ownership Meta.
	NodeName string
	// Logger receives the registrar's logs; nil discards them. The caller
	// names the subsystem on it; the registrar adds no such attribute.
	Logger *slog.Logger
	// Registerer receives the registrar's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Registrar registers this node's containers with the local Consul agent.
// Create it with New and run it with Run.
type Registrar struct {
	cfg   Config
	src   inventory.Source
	agent agentAPI
	node  string
	log   *slog.Logger
	m     *metrics

	// translate is translate.Translate; tests replace it.
	translate func(*inventory.Container, translate.Options) translate.Result

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
	stale      map[string]string             // Registrator-format stale IDs → reason
	taken      map[string]holder             // service ID → another's service holding it
	conflicts  map[string]string             // service ID refused because taken → container ID
	reported   map[string]bool               // problems logged once (see once)
	seen       map[string]bool               // problems seen since the last full reconcile
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
		return nil, errors.New("deps.Source is nil")
	}
	if deps.Consul == nil {
		return nil, errors.New("deps.Consul is nil")
	}
	return newRegistrar(cfg, deps, consulAgent{Agent: deps.Consul.Agent(), raw: deps.Consul.Raw()})
}

func newRegistrar(cfg Config, deps Deps, agent agentAPI) (*Registrar, error) {
	if err := validNode(deps.NodeName); err != nil {
		return nil, fmt.Errorf("node name %q: %w", deps.NodeName, err)
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
		log:        log,
		m:          newMetrics(deps.Registerer),
		containers: map[string]*inventory.Container{},
		results:    map[string]translate.Result{},
		desired:    map[string]*translate.Service{},
		owner:      map[string]string{},
		contested:  map[string]map[string]bool{},
		actual:     map[string]*actualService{},
		explicit:   map[string]string{},
		drain:      map[string]drainState{},
		stale:      map[string]string{},
		taken:      map[string]holder{},
		conflicts:  map[string]string{},
		reported:   map[string]bool{},
		seen:       map[string]bool{},
		translate:  translate.Translate,
		rejected:   map[string]rejection{},
		hostIP:     cfg.IP,
		readyErr:   errNotReconciled,
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

func (r *Registrar) setReady(err error) {
	r.mu.Lock()
	r.readyErr = err
	r.mu.Unlock()
}
