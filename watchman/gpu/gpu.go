// Package gpu reads per-GPU and per-container GPU utilization and memory.
// The NVML implementation needs cgo and is compiled only with the build tag
// nvml; the default static build has no GPU support and Open says so.
package gpu

import (
	"context"
	"errors"
)

// ContainerUsage is one container's GPU use, summed over its processes and
// devices.
type ContainerUsage struct {
	// Util is the SM utilization in percent (0–100 per device, summed).
	Util float64
	// MemoryBytes is the device memory its processes hold.
	MemoryBytes uint64
}

// Device is one GPU's figures.
type Device struct {
	Index       int
	UUID        string
	Name        string
	Util        float64 // percent of time a kernel ran
	MemoryUsed  uint64
	MemoryTotal uint64
}

// Snapshot is one GPU sample.
type Snapshot struct {
	// Containers maps container IDs to their use; nil when unknown.
	Containers map[string]ContainerUsage
	Devices    []Device
}

// Reader samples the node's GPUs.
type Reader interface {
	Sample(ctx context.Context) (Snapshot, error)
	Close() error
}

// ErrUnsupported is returned by Open in builds without the nvml tag.
var ErrUnsupported = errors.New("gpu support not compiled in (build with -tags nvml and cgo)")
