// Package translate turns one container into the Consul services it should
// have, following Registrator's SERVICE_* conventions plus Heartwood's
// extensions. It is pure: the same container and options always give the
// same services, with no I/O.
package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/labels"
)

// Ownership and Swarm Meta keys that Heartwood sets on every service it
// registers. Users cannot set them.
const (
	MetaManagedBy      = "managed_by"
	ManagedByValue     = "heartwood"
	MetaNode           = "heartwood_node"
	MetaContainer      = "heartwood_container"
	MetaHash           = "heartwood_hash"
	MetaSwarmService   = "swarm_service"
	MetaSwarmServiceID = "swarm_service_id"
	MetaSwarmTask      = "swarm_task_id"
	MetaSwarmSlot      = "swarm_task_slot"
	MetaSwarmNode      = "swarm_node_id"
	MetaSwarmStack     = "swarm_stack"
)

// Consul's limits on service Meta (agent/structs).
const (
	MaxMetaPairs     = 64
	MaxMetaKeyLen    = 128
	MaxMetaValueLen  = 512
	reservedMetaPref = "consul-"
)

// DockerHealthTTL is the TTL of the check that mirrors Docker's health. The
// registrar updates it on every health change, so it never expires while
// Heartwood runs; it is long so that steady state needs no heartbeats.
const DockerHealthTTL = "87600h"

// Options are the node-wide settings that shape the translation.
type Options struct {
	// Node is the node hostname used in service IDs and ownership Meta.
	Node string
	// HostIP is the address for published ports (Registrator's -ip); empty
	// leaves the service Address empty so Consul uses the node's address.
	HostIP string
	// Internal registers container IPs and exposed ports.
	Internal bool
	// Explicit registers only ports that have a SERVICE_NAME.
	Explicit bool
	// IPFromLabel names a container label that holds the service IP.
	IPFromLabel string
	// Tags are added to every service.
	Tags []string
	// Network is the node's default network for container addresses.
	Network string
	// IPv6 prefers IPv6 addresses.
	IPv6 bool
	// DockerHealth mirrors a Docker HEALTHCHECK as a Consul TTL check.
	DockerHealth bool
	// CheckInterval is the default interval for checks ("10s" if empty).
	CheckInterval string
	// RequireLabels lists labels (key or key=value) a container must carry
	// to be registered at all.
	RequireLabels []string
	// AllowScriptChecks keeps script checks (SERVICE_CHECK_SCRIPT and
	// SERVICE_CHECKS entries with args); without it they are dropped with a
	// warning, because the Consul agent would run them on the host.
	AllowScriptChecks bool
	// Lookup finds another container by ID or name, for the
	// `container:<ref>` network mode; nil disables that lookup.
	Lookup func(ref string) (*inventory.Container, bool)
}

// Service is one desired Consul service.
type Service struct {
	ID                string
	Name              string
	Address           string
	Port              int
	Tags              []string
	Meta              map[string]string
	EnableTagOverride bool
	Weights           *consulapi.AgentWeights
	TaggedAddresses   map[string]consulapi.ServiceAddress
	Checks            []*consulapi.AgentServiceCheck

	// HealthCheckID is the ID of the check mirroring Docker health, "" if
	// none; HealthStatus is the Consul status it should have now.
	HealthCheckID string
	HealthStatus  string

	// ContainerPort and Proto identify the container port behind it.
	ContainerPort int
	Proto         string
	// Warnings are problems that were worked around (dropped Meta, ignored
	// checks, ...).
	Warnings []string
	// ScriptChecksDropped counts the script checks left out because
	// Options.AllowScriptChecks is off.
	ScriptChecksDropped int
	// Hash identifies the registration's content (excluding the health
	// status); it is stored in Meta[MetaHash].
	Hash string
}

// Registration returns the Consul agent registration for the service.
func (s *Service) Registration() *consulapi.AgentServiceRegistration {
	reg := s.registration()
	for _, c := range reg.Checks {
		if c.CheckID == s.HealthCheckID && s.HealthCheckID != "" {
			c.Status = s.HealthStatus
		}
	}
	return reg
}

func (s *Service) registration() *consulapi.AgentServiceRegistration {
	checks := make(consulapi.AgentServiceChecks, len(s.Checks))
	for i, c := range s.Checks {
		cc := *c
		checks[i] = &cc
	}
	return &consulapi.AgentServiceRegistration{
		ID:                s.ID,
		Name:              s.Name,
		Address:           s.Address,
		Port:              s.Port,
		Tags:              slices.Clone(s.Tags),
		Meta:              cloneMap(s.Meta),
		EnableTagOverride: s.EnableTagOverride,
		Weights:           s.Weights,
		TaggedAddresses:   s.TaggedAddresses,
		Checks:            checks,
	}
}

// Skip says why a container or one of its ports yields no service.
type Skip struct {
	// Port is "<port>/<proto>", or "" for the whole container.
	Port string `json:"port,omitempty"`
	// ServiceID is set when the service was built but rejected.
	ServiceID string `json:"service_id,omitempty"`
	Reason    string `json:"reason"`
}

// Result is the translation of one container.
type Result struct {
	Services []*Service
	Skipped  []Skip
}

// Health maps Docker's health status to a Consul check status: healthy is
// passing, everything else (starting, unhealthy, unknown) critical.
func Health(docker string) string {
	if docker == "healthy" {
		return consulapi.HealthPassing
	}
	return consulapi.HealthCritical
}

// portInfo is one container port with the binding chosen for it.
type portInfo struct {
	port     uint16
	proto    string
	hostIP   string
	hostPort uint16
}

func (p portInfo) key() string { return fmt.Sprintf("%d/%s", p.port, p.proto) }

// Translate returns the services container c should have.
func Translate(c *inventory.Container, o Options) Result {
	var res Result
	if c == nil {
		return res
	}
	if !c.State.Running || c.State.Restarting {
		res.Skipped = append(res.Skipped, Skip{Reason: "container is not running"})
		return res
	}
	for _, req := range o.RequireLabels {
		k, v, hasV := strings.Cut(req, "=")
		got, ok := c.Labels[k]
		if !ok || (hasV && got != v) {
			res.Skipped = append(res.Skipped, Skip{Reason: "container lacks required label " + req})
			return res
		}
	}
	set := labels.Parse(c.Env, c.Labels)
	if set.Global("ignore") != "" {
		res.Skipped = append(res.Skipped, Skip{Reason: "SERVICE_IGNORE is set"})
		return res
	}

	netMode := c.NetworkMode
	hostLike := netMode == "host" || strings.HasPrefix(netMode, "container:")
	swarm := c.Swarm != nil && c.Swarm.ServiceName != ""
	// Swarm tasks are reached on their overlay address, unless they run in
	// the host's network namespace.
	swarmAddr := swarm && !hostLike

	ports := choosePorts(c.Ports, o.IPv6, hostLike)
	if len(ports) == 0 {
		res.Skipped = append(res.Skipped, Skip{Reason: "container exposes no ports"})
		return res
	}
	var usable []portInfo
	for _, p := range ports {
		vals := set.For(strconv.Itoa(int(p.port)))
		if p.hostPort == 0 && !o.Internal && !swarmAddr && vals.Get("network") == "" {
			res.Skipped = append(res.Skipped, Skip{Port: p.key(), Reason: "port not published on the host (set registrar.internal or SERVICE_NETWORK to register the container address)"})
			continue
		}
		usable = append(usable, p)
	}
	group := len(usable) > 1
	seen := map[string]bool{}
	for _, p := range usable {
		svc, skip := build(c, o, set, p, group, swarm, swarmAddr)
		if skip != nil {
			res.Skipped = append(res.Skipped, *skip)
			continue
		}
		if seen[svc.ID] {
			res.Skipped = append(res.Skipped, Skip{Port: p.key(), ServiceID: svc.ID, Reason: "duplicate service ID within the container"})
			continue
		}
		seen[svc.ID] = true
		res.Services = append(res.Services, svc)
	}
	return res
}

// choosePorts groups the inventory's port list (one entry per binding) into
// one entry per container port, choosing the first binding, IPv4 first
// unless ipv6. In host-like network modes unbound exposed ports count as
// published on the same port, as in Registrator.
func choosePorts(in []inventory.Port, ipv6, hostLike bool) []portInfo {
	byKey := map[string]*portInfo{}
	var order []string
	for _, p := range in {
		proto := p.Proto
		if proto == "" {
			proto = "tcp"
		}
		pi := portInfo{port: p.ContainerPort, proto: proto, hostIP: p.HostIP, hostPort: p.HostPort}
		k := pi.key()
		cur, ok := byKey[k]
		if !ok {
			byKey[k] = &pi
			order = append(order, k)
			continue
		}
		if pi.hostPort == 0 {
			continue
		}
		if cur.hostPort == 0 || (isV6(cur.hostIP) != ipv6 && isV6(pi.hostIP) == ipv6) {
			*cur = pi
		}
	}
	out := make([]portInfo, 0, len(order))
	for _, k := range order {
		p := *byKey[k]
		if p.hostPort == 0 && hostLike {
			p.hostPort = p.port
			p.hostIP = "0.0.0.0"
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].port != out[j].port {
			return out[i].port < out[j].port
		}
		return out[i].proto < out[j].proto
	})
	return out
}

func isV6(ip string) bool { return strings.Contains(ip, ":") }

func unspecified(ip string) bool {
	return ip == "" || ip == "0.0.0.0" || ip == "::"
}

// imageBase is Registrator's default name: the image's last path element
// without tag (and, unlike Registrator, without digest).
func imageBase(image string) string {
	b := path.Base(image)
	b, _, _ = strings.Cut(b, "@")
	b, _, _ = strings.Cut(b, ":")
	return b
}

func validName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("empty")
	case len(n) > 255:
		return fmt.Errorf("longer than 255 bytes")
	}
	for _, r := range n {
		if r <= ' ' || r == 0x7f || r == '/' || r == '?' || r == '#' || r == '%' || r > 0x7e {
			return fmt.Errorf("contains %q", r)
		}
	}
	return nil
}

func validID(id string) error { return validName(id) }

func dnsName(n string) bool {
	if len(n) > 63 {
		return false
	}
	for i := 0; i < len(n); i++ {
		ch := n[i]
		ok := ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-'
		if !ok {
			return false
		}
	}
	return n[0] != '-' && n[len(n)-1] != '-'
}

// pickNetwork chooses the network whose address the service gets, in a
// fixed order: the requested one; for Swarm tasks the node default if
// attached, else the first non-ingress network; the node default; the
// network named by the network mode; bridge; the first by name.
func pickNetwork(c *inventory.Container, want string, o Options, swarm bool) (inventory.Network, error) {
	var withIP []inventory.Network
	for _, n := range c.Networks {
		if n.IPAddress != "" || n.IPv6 != "" {
			withIP = append(withIP, n)
		}
	}
	find := func(ref string) (inventory.Network, bool) {
		for _, n := range withIP {
			if n.Name == ref || n.ID == ref || (len(ref) >= 12 && strings.HasPrefix(n.ID, ref)) {
				return n, true
			}
		}
		return inventory.Network{}, false
	}
	if want != "" {
		if n, ok := find(want); ok {
			return n, nil
		}
		return inventory.Network{}, fmt.Errorf("container has no address on network %q (SERVICE_NETWORK)", want)
	}
	if swarm {
		if o.Network != "" {
			if n, ok := find(o.Network); ok && n.Name != "ingress" {
				return n, nil
			}
		}
		for _, n := range withIP {
			if n.Name != "ingress" {
				return n, nil
			}
		}
	}
	if o.Network != "" {
		if n, ok := find(o.Network); ok {
			return n, nil
		}
	}
	if m := c.NetworkMode; m != "" && m != "default" && m != "host" && m != "none" && !strings.HasPrefix(m, "container:") {
		if n, ok := find(m); ok {
			return n, nil
		}
	}
	if n, ok := find("bridge"); ok {
		return n, nil
	}
	if len(withIP) > 0 {
		return withIP[0], nil
	}
	return inventory.Network{}, fmt.Errorf("container has no network address")
}

func netIP(n inventory.Network, ipv6 bool) string {
	if ipv6 && n.IPv6 != "" {
		return n.IPv6
	}
	if n.IPAddress != "" {
		return n.IPAddress
	}
	return n.IPv6
}

func dedupe(in []string) []string {
	seen := make(map[string]bool, len(in))
	out := in[:0]
	for _, t := range in {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func isTrue(v string) bool {
	b, err := strconv.ParseBool(v)
	return err == nil && b
}

func weights(vals labels.Values, warn func(string, ...any)) *consulapi.AgentWeights {
	ps, okP := vals.Lookup("weight_passing")
	ws, okW := vals.Lookup("weight_warning")
	if !okP && !okW {
		return nil
	}
	w := &consulapi.AgentWeights{Passing: 1, Warning: 1}
	if okP {
		n, err := strconv.Atoi(ps)
		if err != nil || n < 1 || n > 65535 {
			warn("SERVICE_WEIGHT_PASSING=%q must be an integer 1..65535; using 1", truncate(ps, 40))
		} else {
			w.Passing = n
		}
	}
	if okW {
		n, err := strconv.Atoi(ws)
		if err != nil || n < 0 || n > 65535 {
			warn("SERVICE_WEIGHT_WARNING=%q must be an integer 0..65535; using 1", truncate(ws, 40))
		} else {
			w.Warning = n
		}
	}
	return w
}

func taggedAddresses(vals labels.Values, warn func(string, ...any)) map[string]consulapi.ServiceAddress {
	var out map[string]consulapi.ServiceAddress
	for _, k := range vals.Keys() {
		tag, ok := strings.CutPrefix(k, "tagged_address_")
		if !ok {
			continue
		}
		v := vals.Get(k)
		addr, portStr, err := net.SplitHostPort(v)
		port := 0
		if err != nil {
			addr, portStr = strings.Trim(v, "[]"), ""
		}
		if portStr != "" {
			port, err = strconv.Atoi(portStr)
			if err != nil || port < 1 || port > 65535 {
				warn("SERVICE_TAGGED_ADDRESS_%s=%q has a bad port; ignored", strings.ToUpper(tag), truncate(v, 60))
				continue
			}
		}
		if tag == "" || !metaKeyOK(tag) || net.ParseIP(addr) == nil {
			warn("SERVICE_TAGGED_ADDRESS_%s=%q must be <ip>[:<port>]; ignored", strings.ToUpper(truncate(tag, 40)), truncate(v, 60))
			continue
		}
		if out == nil {
			out = map[string]consulapi.ServiceAddress{}
		}
		out[tag] = consulapi.ServiceAddress{Address: addr, Port: port}
	}
	return out
}

// reservedKey reports whether a SERVICE_* key is a setting rather than Meta.
func reservedKey(k string) bool {
	switch k {
	case "name", "id", "tags", "ignore", "network", "checks", "enable_tag_override", "weight_passing", "weight_warning":
		return true
	}
	return strings.HasPrefix(k, "check_") || strings.HasPrefix(k, "tagged_address_")
}

// ownKey reports whether a Meta key belongs to Heartwood.
func ownKey(k string) bool {
	return k == MetaManagedBy || strings.HasPrefix(k, "heartwood_") || strings.HasPrefix(k, "swarm_")
}

func metaKeyOK(k string) bool {
	if k == "" || len(k) > MaxMetaKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		ch := k[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '_' || ch == '-') {
			return false
		}
	}
	return true
}

func meta(c *inventory.Container, o Options, vals labels.Values, swarm bool, warn func(string, ...any)) map[string]string {
	m := map[string]string{
		MetaManagedBy: ManagedByValue,
		MetaNode:      o.Node,
		MetaContainer: c.ID,
		MetaHash:      "",
	}
	if swarm {
		t := c.Swarm
		for k, v := range map[string]string{
			MetaSwarmService: t.ServiceName, MetaSwarmServiceID: t.ServiceID, MetaSwarmTask: t.TaskID,
			MetaSwarmNode: t.NodeID, MetaSwarmStack: t.Stack,
		} {
			if v != "" {
				m[k] = truncate(v, MaxMetaValueLen)
			}
		}
		if t.Slot > 0 {
			m[MetaSwarmSlot] = strconv.Itoa(t.Slot)
		}
	}
	budget := MaxMetaPairs - len(m)
	for _, k := range vals.Keys() {
		if reservedKey(k) {
			continue
		}
		v := vals.Get(k)
		switch {
		case ownKey(k):
			warn("Meta key %q is reserved for Heartwood; dropped", k)
		case !metaKeyOK(k):
			warn("Meta key %q must be 1..%d characters of [A-Za-z0-9_-]; dropped", truncate(k, 40), MaxMetaKeyLen)
		case strings.HasPrefix(strings.ToLower(k), reservedMetaPref):
			warn("Meta key %q uses Consul's reserved prefix %q; dropped", truncate(k, 40), reservedMetaPref)
		case len(v) > MaxMetaValueLen:
			warn("Meta %q value is %d bytes, over Consul's %d; dropped", k, len(v), MaxMetaValueLen)
		case budget <= 0:
			warn("Meta %q dropped: over Consul's limit of %d pairs", k, MaxMetaPairs)
		default:
			m[k] = v
			budget--
		}
	}
	return m
}

func hashOf(s *Service) string {
	reg := s.registration()
	delete(reg.Meta, MetaHash)
	for _, c := range reg.Checks {
		if c.CheckID == s.HealthCheckID {
			c.Status = ""
		}
	}
	b, err := json.Marshal(reg)
	if err != nil {
		panic(fmt.Sprintf("translate: marshal registration: %v", err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
