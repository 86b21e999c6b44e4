package registrar

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/registrar/translate"
)

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
