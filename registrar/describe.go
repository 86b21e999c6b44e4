package registrar

import (
	"sort"
	"strconv"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/registrar/translate"
)

// ContainerView is the registrar's state for one container, as shown by
// GET /v1/containers. It holds only what is (or would be) published in
// Consul anyway, derived from SERVICE_* settings; other environment values
// never appear, and check header values are redacted.
type ContainerView struct {
	// Maintenance is why the container's services are in maintenance, if
	// they should be.
	Maintenance string `json:"maintenance,omitempty"`
	// Retained is true when the container stopped but its services stay
	// registered under the deregistration policy.
	Retained bool          `json:"retained,omitempty"`
	Desired  []ServiceView `json:"desired"`
	Actual   []ActualView  `json:"actual"`
	// Skipped lists ports (or the whole container) that yield no service,
	// with the reason.
	Skipped []translate.Skip `json:"skipped,omitempty"`
}

// ServiceView is one desired service.
type ServiceView struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Address           string            `json:"address,omitempty"`
	Port              int               `json:"port"`
	ContainerPort     string            `json:"container_port"`
	Tags              []string          `json:"tags,omitempty"`
	Meta              map[string]string `json:"meta,omitempty"`
	EnableTagOverride bool              `json:"enable_tag_override,omitempty"`
	Checks            []CheckView       `json:"checks,omitempty"`
	Warnings          []string          `json:"warnings,omitempty"`
	InSync            bool              `json:"in_sync"`
	// Error is Consul's refusal of this registration, if it refused it.
	Error string `json:"error,omitempty"`
}

// CheckView summarises one check.
type CheckView struct {
	ID       string   `json:"id"`
	Type     string   `json:"type"`
	Target   string   `json:"target,omitempty"`
	Interval string   `json:"interval,omitempty"`
	Headers  []string `json:"headers,omitempty"` // names only
	Status   string   `json:"status,omitempty"`
}

// ActualView is one service the local agent has for the container.
type ActualView struct {
	ID          string `json:"id"`
	Maintenance bool   `json:"maintenance"`
	Health      string `json:"docker_health,omitempty"`
}

// DescribeContainer returns the container's desired and actual services
// and why ports were skipped, or nil if the registrar does not know the
// container.
func (r *Registrar) DescribeContainer(id string) any {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, haveRes := r.results[id]
	_, known := r.containers[id]
	if !haveRes && !known {
		return nil
	}
	v := ContainerView{
		Maintenance: r.maintenanceLocked(id),
		Retained:    r.retainedLocked(id),
		Desired:     []ServiceView{},
		Actual:      []ActualView{},
		Skipped:     res.Skipped,
	}
	for _, s := range res.Services {
		a := r.actual[s.ID]
		sv := ServiceView{
			ID: s.ID, Name: s.Name, Address: s.Address, Port: s.Port,
			ContainerPort:     portString(s.ContainerPort, s.Proto),
			Tags:              s.Tags,
			Meta:              s.Meta,
			EnableTagOverride: s.EnableTagOverride,
			Warnings:          s.Warnings,
			InSync:            a != nil && a.hash == s.Hash,
		}
		if rj, ok := r.rejected[s.ID]; ok && rj.hash == s.Hash {
			sv.Error = "consul rejected the registration: " + rj.err
		}
		for _, c := range s.Checks {
			cv := checkView(c)
			if c.CheckID == s.HealthCheckID {
				cv.Status = s.HealthStatus
			}
			sv.Checks = append(sv.Checks, cv)
		}
		v.Desired = append(v.Desired, sv)
	}
	for sid, a := range r.actual {
		if a.container == id {
			v.Actual = append(v.Actual, ActualView{ID: sid, Maintenance: a.maint, Health: a.health})
		}
	}
	sort.Slice(v.Actual, func(i, j int) bool { return v.Actual[i].ID < v.Actual[j].ID })
	return v
}

func portString(p int, proto string) string {
	return strconv.Itoa(p) + "/" + proto
}

func checkView(c *consulapi.AgentServiceCheck) CheckView {
	cv := CheckView{ID: c.CheckID, Interval: c.Interval}
	switch {
	case c.HTTP != "":
		cv.Type, cv.Target = "http", c.HTTP
	case c.TCP != "":
		cv.Type, cv.Target = "tcp", c.TCP
	case c.GRPC != "":
		cv.Type, cv.Target = "grpc", c.GRPC
	case c.H2PING != "":
		cv.Type, cv.Target = "h2ping", c.H2PING
	case c.TTL != "":
		cv.Type = "ttl"
	case len(c.Args) > 0:
		cv.Type = "script"
	}
	for h := range c.Header {
		cv.Headers = append(cv.Headers, h)
	}
	sort.Strings(cv.Headers)
	return cv
}
