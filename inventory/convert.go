package inventory

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
)

// fromInspect converts Docker's inspect response into a Container.
func fromInspect(in container.InspectResponse) *Container {
	c := &Container{}
	if in.ContainerJSONBase != nil {
		b := in.ContainerJSONBase
		c.ID = b.ID
		c.Name = strings.TrimPrefix(b.Name, "/")
		c.ImageID = b.Image
		c.Created = parseDockerTime(b.Created)
		c.LogPath = b.LogPath
		c.RestartCount = b.RestartCount
		if s := b.State; s != nil {
			c.State = State{
				Status:     string(s.Status),
				Running:    s.Running,
				Paused:     s.Paused,
				Restarting: s.Restarting,
				Pid:        s.Pid,
				ExitCode:   s.ExitCode,
				StartedAt:  parseDockerTime(s.StartedAt),
				FinishedAt: parseDockerTime(s.FinishedAt),
			}
			if s.Health != nil {
				c.State.Health = string(s.Health.Status)
			}
		}
		if hc := b.HostConfig; hc != nil {
			c.NetworkMode = string(hc.NetworkMode)
			c.LogDriver = hc.LogConfig.Type
			if len(hc.LogConfig.Config) > 0 {
				c.LogConfig = hc.LogConfig.Config
			}
		}
	}
	var exposed nat.PortSet
	if cfg := in.Config; cfg != nil {
		c.Image = cfg.Image
		c.Hostname = cfg.Hostname
		c.Env = cfg.Env
		if len(cfg.Labels) > 0 {
			c.Labels = cfg.Labels
		}
		exposed = cfg.ExposedPorts
		if h := cfg.Healthcheck; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" {
			c.Healthcheck = &Healthcheck{
				Test:        h.Test,
				Interval:    h.Interval,
				Timeout:     h.Timeout,
				StartPeriod: h.StartPeriod,
				Retries:     h.Retries,
			}
		}
	}
	var bound nat.PortMap
	if ns := in.NetworkSettings; ns != nil {
		bound = ns.Ports
		for _, name := range slices.Sorted(maps.Keys(ns.Networks)) {
			ep := ns.Networks[name]
			if ep == nil {
				continue
			}
			c.Networks = append(c.Networks, Network{
				Name:       name,
				ID:         ep.NetworkID,
				IPAddress:  ep.IPAddress,
				IPv6:       ep.GlobalIPv6Address,
				Gateway:    ep.Gateway,
				MacAddress: ep.MacAddress,
				Aliases:    slices.Clone(ep.Aliases),
			})
		}
	}
	c.Ports = portsOf(exposed, bound)
	c.Swarm = swarmTaskFromLabels(c.Labels)
	return c
}

// portsOf merges the exposed ports with the actual host bindings into a
// stable, sorted list.
func portsOf(exposed nat.PortSet, bound nat.PortMap) []Port {
	keys := make(map[nat.Port]struct{}, len(exposed)+len(bound))
	for p := range exposed {
		keys[p] = struct{}{}
	}
	for p := range bound {
		keys[p] = struct{}{}
	}
	var out []Port
	for p := range keys {
		n, err := strconv.ParseUint(p.Port(), 10, 16)
		if err != nil {
			continue // a port range or garbage: Docker never reports those here
		}
		base := Port{ContainerPort: uint16(n), Proto: p.Proto()}
		bindings := bound[p]
		if len(bindings) == 0 {
			out = append(out, base)
			continue
		}
		for _, b := range bindings {
			hp, err := strconv.ParseUint(b.HostPort, 10, 16)
			if err != nil {
				out = append(out, base)
				continue
			}
			pb := base
			pb.HostIP = b.HostIP
			pb.HostPort = uint16(hp)
			out = append(out, pb)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.ContainerPort != b.ContainerPort {
			return a.ContainerPort < b.ContainerPort
		}
		if a.Proto != b.Proto {
			return a.Proto < b.Proto
		}
		if a.HostIP != b.HostIP {
			return a.HostIP < b.HostIP
		}
		return a.HostPort < b.HostPort
	})
	return slices.Compact(out)
}

// parseDockerTime parses Docker's RFC 3339 timestamps; Docker's zero time
// ("0001-01-01T00:00:00Z") and garbage become the zero time.
func parseDockerTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}
