// Package inventory keeps an in-memory, always-current picture of the
// containers on this Docker node and hands it to the agent's subsystems.
//
// One Inventory owns the node's single Docker event stream. Subscribers get a
// consistent snapshot followed by every later change, in order, with nothing
// lost between the two: the registrar, the shipper and the watchman all see
// the same containers in the same order. When dockerd goes away the inventory
// reconnects with backoff and, once it is back, lists the containers again and
// emits the difference as ordinary changes.
package inventory

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Well-known labels that Docker Swarm, docker stack and docker compose put on
// the containers they create.
const (
	LabelSwarmServiceID   = "com.docker.swarm.service.id"
	LabelSwarmServiceName = "com.docker.swarm.service.name"
	LabelSwarmTaskID      = "com.docker.swarm.task.id"
	LabelSwarmTaskName    = "com.docker.swarm.task.name"
	LabelSwarmNodeID      = "com.docker.swarm.node.id"
	LabelStackNamespace   = "com.docker.stack.namespace"
	LabelComposeProject   = "com.docker.compose.project"
	LabelComposeService   = "com.docker.compose.service"
)

// Container is the inventory's view of one container: what the subsystems need
// to register it, ship its logs and measure it. Values are immutable once
// published; subscribers may keep them.
type Container struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"` // without Docker's leading slash
	Image   string    `json:"image"`
	ImageID string    `json:"image_id"`
	Created time.Time `json:"created"`
	// Hostname is the container's configured hostname.
	Hostname string `json:"hostname,omitempty"`

	Labels map[string]string `json:"labels,omitempty"`
	// Env is the container's environment as KEY=VALUE strings, in Docker's
	// order. It may hold secrets: never expose it over the API.
	Env []string `json:"-"`

	State State `json:"state"`

	// Ports lists every exposed or published port; a port published on
	// several host addresses appears once per binding.
	Ports       []Port    `json:"ports,omitempty"`
	Networks    []Network `json:"networks,omitempty"`
	NetworkMode string    `json:"network_mode,omitempty"`

	// Healthcheck is the container's Docker HEALTHCHECK, nil if it has none.
	Healthcheck *Healthcheck `json:"healthcheck,omitempty"`

	LogDriver string            `json:"log_driver,omitempty"`
	LogPath   string            `json:"log_path,omitempty"`
	LogConfig map[string]string `json:"log_config,omitempty"`

	RestartCount int `json:"restart_count"`

	// Swarm is set for containers that run a Swarm task.
	Swarm *SwarmTask `json:"swarm,omitempty"`
}

// State is a container's run state.
type State struct {
	// Status is Docker's status word: created, running, paused, restarting,
	// removing, exited or dead.
	Status     string    `json:"status"`
	Running    bool      `json:"running"`
	Paused     bool      `json:"paused"`
	Restarting bool      `json:"restarting"`
	Pid        int       `json:"pid,omitempty"`
	ExitCode   int       `json:"exit_code"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	// Health is Docker's health status (starting, healthy, unhealthy), or
	// empty when the container has no health check.
	Health string `json:"health,omitempty"`
}

// Port is one exposed container port and, if published, its host binding.
type Port struct {
	ContainerPort uint16 `json:"container_port"`
	Proto         string `json:"proto"` // tcp, udp or sctp
	HostIP        string `json:"host_ip,omitempty"`
	HostPort      uint16 `json:"host_port,omitempty"`
}

// Published reports whether the port is bound on the host.
func (p Port) Published() bool { return p.HostPort != 0 }

// Network is one network the container is attached to.
type Network struct {
	Name       string   `json:"name"`
	ID         string   `json:"id"`
	IPAddress  string   `json:"ip,omitempty"`
	IPv6       string   `json:"ipv6,omitempty"`
	Gateway    string   `json:"gateway,omitempty"`
	MacAddress string   `json:"mac,omitempty"`
	Aliases    []string `json:"aliases,omitempty"`
}

// Healthcheck is a container's Docker HEALTHCHECK configuration.
type Healthcheck struct {
	Test        []string      `json:"test"`
	Interval    time.Duration `json:"interval"`
	Timeout     time.Duration `json:"timeout"`
	StartPeriod time.Duration `json:"start_period"`
	Retries     int           `json:"retries"`
}

// SwarmTask identifies the Swarm task a container runs, from the labels Swarm
// sets on task containers.
type SwarmTask struct {
	ServiceID   string `json:"service_id"`
	ServiceName string `json:"service_name"`
	TaskID      string `json:"task_id"`
	TaskName    string `json:"task_name"`
	// Slot is the replica slot of a replicated service; 0 for global ones.
	Slot   int    `json:"slot,omitempty"`
	NodeID string `json:"node_id"`
	// Stack is the `docker stack` namespace, empty outside a stack.
	Stack string `json:"stack,omitempty"`
}

// Running reports whether the container's processes exist, paused or not.
func (c *Container) Running() bool { return c.State.Running }

// EnvMap returns the environment as a map; later duplicates win, as in exec.
func (c *Container) EnvMap() map[string]string {
	m := make(map[string]string, len(c.Env))
	for _, kv := range c.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// Equal reports whether two containers are the same in every field.
func (c *Container) Equal(o *Container) bool {
	if c == nil || o == nil {
		return c == o
	}
	return c.ID == o.ID && c.Name == o.Name && c.Image == o.Image &&
		c.ImageID == o.ImageID && c.Created.Equal(o.Created) &&
		c.Hostname == o.Hostname && maps.Equal(c.Labels, o.Labels) &&
		slices.Equal(c.Env, o.Env) && c.State.equal(o.State) &&
		slices.Equal(c.Ports, o.Ports) &&
		slices.EqualFunc(c.Networks, o.Networks, Network.equal) &&
		c.NetworkMode == o.NetworkMode &&
		c.Healthcheck.equal(o.Healthcheck) &&
		c.LogDriver == o.LogDriver && c.LogPath == o.LogPath &&
		maps.Equal(c.LogConfig, o.LogConfig) &&
		c.RestartCount == o.RestartCount &&
		((c.Swarm == nil && o.Swarm == nil) ||
			(c.Swarm != nil && o.Swarm != nil && *c.Swarm == *o.Swarm))
}

func (s State) equal(o State) bool {
	return s.Status == o.Status && s.Running == o.Running && s.Paused == o.Paused &&
		s.Restarting == o.Restarting && s.Pid == o.Pid && s.ExitCode == o.ExitCode &&
		s.StartedAt.Equal(o.StartedAt) && s.FinishedAt.Equal(o.FinishedAt) &&
		s.Health == o.Health
}

func (n Network) equal(o Network) bool {
	return n.Name == o.Name && n.ID == o.ID && n.IPAddress == o.IPAddress &&
		n.IPv6 == o.IPv6 && n.Gateway == o.Gateway && n.MacAddress == o.MacAddress &&
		slices.Equal(n.Aliases, o.Aliases)
}

func (h *Healthcheck) equal(o *Healthcheck) bool {
	if h == nil || o == nil {
		return h == o
	}
	return slices.Equal(h.Test, o.Test) && h.Interval == o.Interval &&
		h.Timeout == o.Timeout && h.StartPeriod == o.StartPeriod && h.Retries == o.Retries
}

// swarmTaskFromLabels returns the Swarm task described by a container's
// labels, or nil if it is not a Swarm task.
func swarmTaskFromLabels(labels map[string]string) *SwarmTask {
	taskID := labels[LabelSwarmTaskID]
	serviceName := labels[LabelSwarmServiceName]
	if taskID == "" && serviceName == "" {
		return nil
	}
	t := &SwarmTask{
		ServiceID:   labels[LabelSwarmServiceID],
		ServiceName: serviceName,
		TaskID:      taskID,
		TaskName:    labels[LabelSwarmTaskName],
		NodeID:      labels[LabelSwarmNodeID],
		Stack:       labels[LabelStackNamespace],
	}
	// Task names are <service>.<slot>.<task-id> for replicated services and
	// <service>.<node-id>.<task-id> for global ones.
	if rest, ok := strings.CutPrefix(t.TaskName, serviceName+"."); ok && serviceName != "" {
		if slot, _, ok := strings.Cut(rest, "."); ok {
			if n, err := strconv.Atoi(slot); err == nil && n > 0 {
				t.Slot = n
			}
		}
	}
	return t
}
