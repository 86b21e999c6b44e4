package translate

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/registrar/labels"
)

// build makes the service for one port, or says why there is none. Each
// step fills in one part of the service; a step that finds the port cannot
// be registered returns the skip.
func build(c *inventory.Container, o Options, set labels.Set, p portInfo, group, swarm, swarmAddr bool) (*Service, *Skip) {
	b := &builder{c: c, o: o, p: p, portStr: strconv.Itoa(int(p.port)), swarm: swarm}
	b.vals = set.For(b.portStr)
	b.s = &Service{ContainerPort: int(p.port), Proto: p.proto}
	if b.vals.Get("ignore") != "" {
		return nil, b.skip("", "SERVICE_%s_IGNORE is set", b.portStr)
	}
	if sk := b.name(group); sk != nil {
		return nil, sk
	}
	if sk := b.id(); sk != nil {
		return nil, sk
	}
	if sk := b.address(swarmAddr); sk != nil {
		return nil, sk
	}
	b.tags()
	b.extensions()
	b.checks()
	b.meta()
	return b.s, nil
}

// builder holds one port's translation while build's steps fill in the
// service.
type builder struct {
	c       *inventory.Container
	o       Options
	p       portInfo
	portStr string
	vals    labels.Values
	swarm   bool
	s       *Service
}

func (b *builder) skip(id, format string, args ...any) *Skip {
	return &Skip{Port: b.p.key(), ServiceID: id, Reason: fmt.Sprintf(format, args...)}
}

func (b *builder) warn(format string, args ...any) {
	b.s.Warnings = append(b.s.Warnings, fmt.Sprintf(format, args...))
}

// name sets the service name: SERVICE_NAME, else the Swarm service or the
// image; with several ports and no port-specific name, "-<port>" is added.
func (b *builder) name(group bool) *Skip {
	name := b.vals.Get("name")
	if name == "" {
		if b.o.Explicit {
			return b.skip("", "explicit mode and no SERVICE_NAME or SERVICE_%s_NAME", b.portStr)
		}
		if b.swarm {
			name = b.c.Swarm.ServiceName
		} else {
			name = imageBase(b.c.Image)
		}
	}
	if group && !b.vals.FromPort("name") {
		name += "-" + b.portStr
	}
	b.s.Name = name
	return nil
}

// id sets the service ID, <node>:<instance>:<port>[:proto] unless SERVICE_ID
// sets it, and validates the name and the ID.
func (b *builder) id() *Skip {
	s := b.s
	instance := b.c.Name
	if b.swarm {
		instance = b.c.Swarm.ServiceName
		if b.c.Swarm.Slot > 0 {
			instance += "." + strconv.Itoa(b.c.Swarm.Slot)
		}
	}
	s.ID = b.o.Node + ":" + instance + ":" + b.portStr
	switch b.p.proto {
	case "udp":
		s.ID += ":udp"
	case "tcp":
	default:
		s.ID += ":" + b.p.proto
	}
	if id := b.vals.Get("id"); id != "" {
		s.ID = id
	}
	if err := validName(s.Name); err != nil {
		return b.skip(s.ID, "invalid service name %q: %v", truncate(s.Name, 80), err)
	}
	if err := validID(s.ID); err != nil {
		return b.skip("", "invalid service ID %q: %v", truncate(s.ID, 80), err)
	}
	if !dnsName(s.Name) {
		b.warn("service name %q is not a valid DNS label; it is not discoverable via Consul DNS", s.Name)
	}
	return nil
}

// address sets the service address and port: the container's network
// address and port, or the published binding; then the IP label and a
// shared network namespace override the address.
func (b *builder) address(swarmAddr bool) *Skip {
	s, c, o, p := b.s, b.c, b.o, b.p
	if o.Internal || swarmAddr || b.vals.Get("network") != "" {
		n, err := pickNetwork(c, b.vals.Get("network"), o, b.swarm)
		if err != nil {
			return b.skip(s.ID, "%v", err)
		}
		s.Address = netIP(n, o.IPv6)
		s.Port = int(p.port)
	} else {
		switch {
		case o.HostIP != "":
			s.Address = o.HostIP
		case !unspecified(p.hostIP):
			s.Address = p.hostIP
		}
		s.Port = int(p.hostPort)
	}
	if o.IPFromLabel != "" {
		if ip := c.Labels[o.IPFromLabel]; ip != "" {
			if i := strings.LastIndex(ip, "/"); i >= 0 {
				ip = ip[:i]
			}
			s.Address = ip
		} else {
			b.warn("label %q for the service IP is not set; using %q", o.IPFromLabel, s.Address)
		}
	}
	if ref, ok := strings.CutPrefix(c.NetworkMode, "container:"); ok {
		if o.Lookup == nil {
			return b.skip(s.ID, "network mode container:%s and no container lookup", ref)
		}
		other, found := o.Lookup(ref)
		if !found {
			return b.skip(s.ID, "network mode container:%.12s: container not found", ref)
		}
		n, err := pickNetwork(other, b.vals.Get("network"), o, other.Swarm != nil)
		if err != nil {
			return b.skip(s.ID, "network container %s: %v", other.Name, err)
		}
		s.Address = netIP(n, o.IPv6)
	}
	if s.Address != "" && net.ParseIP(s.Address) == nil {
		b.warn("service address %q is not an IP address", s.Address)
	}
	return nil
}

// tags sets SERVICE_TAGS, the node-wide tags and the protocol if not tcp.
func (b *builder) tags() {
	s := b.s
	s.Tags = labels.SplitTags(b.vals.Get("tags"))
	s.Tags = append(s.Tags, b.o.Tags...)
	if b.p.proto != "tcp" {
		s.Tags = append(s.Tags, b.p.proto)
	}
	s.Tags = dedupe(s.Tags)
}

// extensions sets Heartwood's additions: tag override, weights and tagged
// addresses.
func (b *builder) extensions() {
	s := b.s
	if v, ok := b.vals.Lookup("enable_tag_override"); ok {
		on, err := strconv.ParseBool(v)
		if err != nil {
			b.warn("SERVICE_ENABLE_TAG_OVERRIDE=%q is not a boolean; ignored", truncate(v, 40))
		}
		s.EnableTagOverride = on
	}
	s.Weights = weights(b.vals, b.warn)
	s.TaggedAddresses = taggedAddresses(b.vals, b.warn)
}

// checks sets the SERVICE_CHECK_* checks and the TTL check that mirrors
// the container's Docker health.
func (b *builder) checks() {
	s, c, o := b.s, b.c, b.o
	checkHost := s.Address
	if checkHost == "" {
		checkHost = "127.0.0.1"
	}
	interval := o.CheckInterval
	if interval == "" {
		interval = "10s"
	}
	s.Checks, s.ScriptChecksDropped = checks(s.ID, checkHost, s.Port, b.vals, interval, o.AllowScriptChecks, b.warn)
	if o.DockerHealth && c.Healthcheck != nil {
		if v := b.vals.Get("check_docker_health"); v == "" || isTrue(v) {
			s.HealthCheckID = "service:" + s.ID + ":docker-health"
			s.HealthStatus = Health(c.State.Health)
			s.Checks = append(s.Checks, &consulapi.AgentServiceCheck{
				CheckID: s.HealthCheckID,
				Name:    "Docker health",
				Notes:   "Mirrors the container's Docker HEALTHCHECK (" + c.ShortID() + ")",
				TTL:     DockerHealthTTL,
			})
		}
	}
}

// meta sets the service Meta and the hash of the whole service.
func (b *builder) meta() {
	s := b.s
	s.Meta = meta(b.c, b.o, b.vals, b.swarm, b.warn)
	s.Hash = hashOf(s)
	s.Meta[MetaHash] = s.Hash
}
