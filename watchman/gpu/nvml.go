//go:build nvml

package gpu

import (
	"context"
	"errors"
	"fmt"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/heartwood-ops/heartwood/watchman/cgroup"
)

// Supported reports whether this build has GPU support.
const Supported = true

// Open loads NVML (libnvidia-ml.so.1) and returns a reader. On a node
// without the NVIDIA driver it returns an error: the node has no GPUs to
// report.
func Open(procRoot string) (Reader, error) {
	return OpenWith(nvml.New(), procRoot)
}

// OpenWith returns a reader over lib (the real library or go-nvml's mock
// servers). procRoot is the host's /proc, used to map the host PIDs that
// NVML reports to containers.
func OpenWith(lib nvml.Interface, procRoot string) (Reader, error) {
	if ret := lib.Init(); ret != nvml.SUCCESS {
		return nil, fmt.Errorf("nvml init: %s", nvmlErr(lib, ret))
	}
	return &nvmlReader{lib: lib, procRoot: procRoot, lastSeen: map[int]uint64{}, owner: map[uint32]string{}}, nil
}

type nvmlReader struct {
	lib      nvml.Interface
	procRoot string
	lastSeen map[int]uint64    // device index -> last process-utilization timestamp
	owner    map[uint32]string // host pid -> container ID ("" for none)
}

func nvmlErr(lib nvml.Interface, ret nvml.Return) string {
	if s := lib.ErrorString(ret); s != "" {
		return s
	}
	return fmt.Sprintf("nvml return %d", int(ret))
}

// Sample reads every device's utilization and memory, and the processes
// using it, attributing them to containers.
func (r *nvmlReader) Sample(ctx context.Context) (Snapshot, error) {
	n, ret := r.lib.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return Snapshot{}, fmt.Errorf("nvml device count: %s", nvmlErr(r.lib, ret))
	}
	snap := Snapshot{Containers: map[string]ContainerUsage{}}
	seen := map[uint32]bool{}
	var errs []error
	for i := range n {
		if ctx.Err() != nil {
			return Snapshot{}, ctx.Err()
		}
		dev, ret := r.lib.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			errs = append(errs, fmt.Errorf("device %d: %s", i, nvmlErr(r.lib, ret)))
			continue
		}
		d := Device{Index: i}
		d.UUID, _ = dev.GetUUID()
		d.Name, _ = dev.GetName()
		if u, ret := dev.GetUtilizationRates(); ret == nvml.SUCCESS {
			d.Util = float64(u.Gpu)
		}
		if m, ret := dev.GetMemoryInfo(); ret == nvml.SUCCESS {
			d.MemoryUsed, d.MemoryTotal = m.Used, m.Total
		}
		snap.Devices = append(snap.Devices, d)

		procs, ret := dev.GetComputeRunningProcesses()
		if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_SUPPORTED {
			errs = append(errs, fmt.Errorf("device %d processes: %s", i, nvmlErr(r.lib, ret)))
		}
		for _, p := range procs {
			seen[p.Pid] = true
			if id := r.container(p.Pid); id != "" {
				u := snap.Containers[id]
				u.MemoryBytes += p.UsedGpuMemory
				snap.Containers[id] = u
			}
		}
		// Only processes that ran kernels since lastSeen are reported;
		// NOT_FOUND means there were none.
		samples, ret := dev.GetProcessUtilization(r.lastSeen[i])
		if ret != nvml.SUCCESS && ret != nvml.ERROR_NOT_FOUND && ret != nvml.ERROR_NOT_SUPPORTED {
			errs = append(errs, fmt.Errorf("device %d process utilization: %s", i, nvmlErr(r.lib, ret)))
		}
		for _, s := range samples {
			if s.TimeStamp > r.lastSeen[i] {
				r.lastSeen[i] = s.TimeStamp
			}
			seen[s.Pid] = true
			if id := r.container(s.Pid); id != "" {
				u := snap.Containers[id]
				u.Util += float64(s.SmUtil)
				snap.Containers[id] = u
			}
		}
	}
	for pid := range r.owner {
		if !seen[pid] {
			delete(r.owner, pid) // the pid may be reused by another process
		}
	}
	return snap, errors.Join(errs...)
}

// container maps a host PID to its container, caching the answer.
func (r *nvmlReader) container(pid uint32) string {
	if id, ok := r.owner[pid]; ok {
		return id
	}
	id, err := cgroup.ContainerIDOfPID(r.procRoot, int(pid))
	if err != nil {
		return "" // gone; not cached
	}
	r.owner[pid] = id
	return id
}

// Close shuts NVML down.
func (r *nvmlReader) Close() error {
	if ret := r.lib.Shutdown(); ret != nvml.SUCCESS {
		return fmt.Errorf("nvml shutdown: %s", nvmlErr(r.lib, ret))
	}
	return nil
}
