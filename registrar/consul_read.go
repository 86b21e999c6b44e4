package registrar

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// agentAPI is the part of the Consul agent API the registrar uses;
// consulAgent satisfies it. Every method takes options that carry the
// call's deadline.
type agentAPI interface {
	ServicesWithFilterOpts(filter string, q *consulapi.QueryOptions) (map[string]*consulapi.AgentService, error)
	Service(serviceID string, q *consulapi.QueryOptions) (*consulapi.AgentService, *consulapi.QueryMeta, error)
	ChecksWithFilterOpts(filter string, q *consulapi.QueryOptions) (map[string]*consulapi.AgentCheck, error)
	ServiceRegisterOpts(service *consulapi.AgentServiceRegistration, opts consulapi.ServiceRegisterOpts) error
	ServiceDeregisterOpts(serviceID string, q *consulapi.QueryOptions) error
	EnableServiceMaintenanceOpts(serviceID, reason string, q *consulapi.QueryOptions) error
	DisableServiceMaintenanceOpts(serviceID string, q *consulapi.QueryOptions) error
	UpdateTTLOpts(checkID, output, status string, q *consulapi.QueryOptions) error
	SelfOpts(q *consulapi.QueryOptions) (map[string]map[string]any, error)
}

// consulAgent is the agent API of a Consul client, with a /v1/agent/self
// that honours the query's context (the client's Self has none).
type consulAgent struct {
	*consulapi.Agent
	raw *consulapi.Raw
}

func (a consulAgent) SelfOpts(q *consulapi.QueryOptions) (map[string]map[string]any, error) {
	var out map[string]map[string]any
	if _, err := a.raw.Query("/v1/agent/self", &out, q); err != nil {
		return nil, err
	}
	return out, nil
}

// query returns query options whose context ends after consul-timeout;
// call the cancel function when the call returns.
func (r *Registrar) query(ctx context.Context) (*consulapi.QueryOptions, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ConsulTimeout)
	return (&consulapi.QueryOptions{}).WithContext(ctx), cancel
}

// ownFilter selects this node's services on the agent.
func (r *Registrar) ownFilter() string {
	return fmt.Sprintf(`Meta.%s == %q and Meta.%s == %q`, translate.MetaManagedBy, translate.ManagedByValue, translate.MetaNode, r.node)
}

// agentState is what a full read finds on the local agent.
type agentState struct {
	// actual is this node's services, by ID.
	actual map[string]*actualService
	// taken is the IDs held by services this node's Heartwood did not
	// register, which it must not take over.
	taken map[string]holder
	// stale is Registrator-format services of this node that no running
	// container backs (only with cleanup-registrator), with the reason.
	stale map[string]string
}

// holder describes a service on the agent that is not this node's.
type holder struct {
	// desc says whose the service is, for reports.
	desc string
	// registratorFor is the container name when the ID is in Registrator's
	// format for this node (<node>:<container>:<port>) and Heartwood did
	// not register it; "" otherwise.
	registratorFor string
}

// readActual reads the agent's services and sorts them into this node's
// (with their maintenance and Docker health check states), those of
// others, and stale Registrator-format ones.
func (r *Registrar) readActual(ctx context.Context) (agentState, error) {
	if r.hostIP == "" {
		addr, err := r.agentAddress(ctx)
		if err != nil {
			r.m.errors.WithLabelValues("read").Inc()
			return agentState{}, fmt.Errorf("read agent address: %w", err)
		}
		r.mu.Lock()
		r.hostIP = addr
		r.mu.Unlock()
	}
	q, cancel := r.query(ctx)
	all, err := r.agent.ServicesWithFilterOpts("", q)
	cancel()
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return agentState{}, fmt.Errorf("list services: %w", err)
	}
	q, cancel = r.query(ctx)
	checks, err := r.agent.ChecksWithFilterOpts(`Type == "maintenance" or Name == "Docker health"`, q)
	cancel()
	if err != nil {
		r.m.errors.WithLabelValues("read").Inc()
		return agentState{}, fmt.Errorf("list checks: %w", err)
	}
	var running map[string]bool
	if r.cfg.CleanupRegistrator {
		running = map[string]bool{}
		r.mu.Lock()
		for _, c := range r.containers {
			if c.State.Running {
				running[c.Name] = true
			}
		}
		r.mu.Unlock()
	}
	st := classifyServices(all, r.node, running)
	for _, c := range checks {
		if c == nil {
			continue
		}
		a := st.actual[c.ServiceID]
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
	return st, nil
}

var registratorID = regexp.MustCompile(`^(.+?):([a-zA-Z0-9][a-zA-Z0-9_.-]+):[0-9]+(?::udp)?$`)

// registratorContainer returns the container name of a service ID in
// Registrator's format for node, or "".
func registratorContainer(id, node string) string {
	m := registratorID.FindStringSubmatch(id)
	if m == nil || m[1] != node {
		return ""
	}
	return m[2]
}

// owned reports whether a service carries this node's ownership Meta.
func owned(s *consulapi.AgentService, node string) bool {
	return s != nil && s.Meta[translate.MetaManagedBy] == translate.ManagedByValue && s.Meta[translate.MetaNode] == node
}

// classifyServices sorts the agent's services (the /v1/agent/services
// answer) by their ownership Meta. With running non-nil (cleanup of
// Registrator's services), Registrator-format IDs of this node whose
// container is not in running are stale.
func classifyServices(all map[string]*consulapi.AgentService, node string, running map[string]bool) agentState {
	st := agentState{actual: map[string]*actualService{}, taken: map[string]holder{}, stale: map[string]string{}}
	for id, s := range all {
		if owned(s, node) {
			st.actual[id] = &actualService{container: s.Meta[translate.MetaContainer], hash: s.Meta[translate.MetaHash]}
			continue
		}
		h := holder{desc: describeHolder(s)}
		heartwood := s != nil && s.Meta[translate.MetaManagedBy] == translate.ManagedByValue
		if !heartwood {
			h.registratorFor = registratorContainer(id, node)
		}
		st.taken[id] = h
		if running != nil && h.registratorFor != "" && !running[h.registratorFor] {
			st.stale[id] = "registrator-format service without a running container " + h.registratorFor
		}
	}
	return st
}

// describeHolder says whose a service is, quoting at most a short, valid
// part of what the agent returned.
func describeHolder(s *consulapi.AgentService) string {
	if s == nil {
		return "a service the agent did not describe"
	}
	name := clip(s.Service, 64)
	if s.Meta[translate.MetaManagedBy] == translate.ManagedByValue {
		return fmt.Sprintf("service %q registered by Heartwood for node %q", name, clip(s.Meta[translate.MetaNode], 64))
	}
	return fmt.Sprintf("service %q not registered by Heartwood", name)
}

// clip cuts s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// agentAddress returns the local Consul agent's advertise address, used
// for published ports when registrar.ip is unset.
func (r *Registrar) agentAddress(ctx context.Context) (string, error) {
	q, cancel := r.query(ctx)
	defer cancel()
	self, err := r.agent.SelfOpts(q)
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

// ownership reads the service the agent has under id: free reports no
// service; otherwise h describes it unless it is this node's.
func (r *Registrar) ownership(ctx context.Context, id string) (free bool, h *holder, err error) {
	q, cancel := r.query(ctx)
	defer cancel()
	s, _, err := r.agent.Service(id, q)
	var se consulapi.StatusError
	switch {
	case errors.As(err, &se) && se.Code == 404:
		return true, nil, nil
	case err != nil:
		return false, nil, err
	case owned(s, r.node):
		return false, nil, nil
	}
	st := classifyServices(map[string]*consulapi.AgentService{id: s}, r.node, nil)
	hd := st.taken[id]
	return false, &hd, nil
}
