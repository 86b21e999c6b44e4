package watchman

import (
	"context"
	"log/slog"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/inventory"
)

// Docker is the part of the Docker API client the watchman uses;
// *client.Client satisfies it.
type Docker interface {
	ContainerPause(ctx context.Context, containerID string) error
	ContainerUnpause(ctx context.Context, containerID string) error
	ContainerStop(ctx context.Context, containerID string, options container.StopOptions) error
	ContainerStart(ctx context.Context, containerID string, options container.StartOptions) error
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	// ContainerStatsOneShot is the fallback when a container's cgroup files
	// cannot be read.
	ContainerStatsOneShot(ctx context.Context, containerID string) (container.StatsResponseReader, error)
}

// Maintainer puts a container's service registrations into maintenance
// (the registrar implements it, with Consul maintenance mode).
type Maintainer interface {
	Maintenance(ctx context.Context, containerID string, on bool, reason string) error
}

// EventSink ships decision events (the shipper implements it, writing to
// the data stream of dataset).
type EventSink interface {
	SendEvent(ctx context.Context, dataset string, doc map[string]any) error
}

// KV reads live settings from a key/value store (Consul KV).
type KV interface {
	// List returns every key under prefix, with the prefix removed, and the
	// index to pass as waitIndex next time. With waitIndex > 0 it may block
	// until the data changes past that index or an implementation-defined
	// time passes, or ctx ends.
	List(ctx context.Context, prefix string, waitIndex uint64) (map[string]string, uint64, error)
}

// Deps are the watchman's collaborators. Source and Docker are required;
// the others may be nil.
type Deps struct {
	Source     inventory.Source
	Docker     Docker
	Maintainer Maintainer
	Events     EventSink
	// Samples receives the utilization samples (nil: none are written).
	Samples SampleSink
	KV      KV
	// SelfContainerID is the agent's own container ID (never paused).
	SelfContainerID string
	// NodeName names this node in events and in KV keys.
	NodeName string
	// DataDir holds the record of the containers the watchman paused (the
	// file OwnedFileName), so that after a restart it wakes those and only
	// those. Empty keeps no record.
	DataDir string
	// Logger receives the watchman's logs; nil discards them. The caller
	// names the subsystem on it; the watchman adds no such attribute.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// EventDataset is the dataset of the watchman's decision events.
const EventDataset = "heartwood.watchman"
