//go:build nvml

package gpu

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"
)

const ctrA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
const ctrB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

func fakeProc(t *testing.T) string {
	root := t.TempDir()
	for pid, cg := range map[string]string{
		"100": "0::/docker/" + ctrA + "\n",                     // cgroupfs driver
		"101": "0::/docker/" + ctrA + "\n",                     // a second process of A
		"200": "0::/system.slice/docker-" + ctrB + ".scope\n",  // systemd driver
		"300": "0::/user.slice/user-0.slice/session-1.scope\n", // not a container
	} {
		os.MkdirAll(filepath.Join(root, pid), 0o755)
		os.WriteFile(filepath.Join(root, pid, "cgroup"), []byte(cg), 0o644)
	}
	return root
}

func TestNVMLMockDGXA100(t *testing.T) {
	srv := dgxa100.New()
	d0 := srv.Devices[0].(*dgxa100.Device)
	d1 := srv.Devices[1].(*dgxa100.Device)
	d0.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{Gpu: 87, Memory: 40}, nvml.SUCCESS }
	d0.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 100, UsedGpuMemory: 10 << 30}, {Pid: 101, UsedGpuMemory: 1 << 30}, {Pid: 300, UsedGpuMemory: 1 << 20}}, nvml.SUCCESS
	}
	calls := 0
	d0.GetProcessUtilizationFunc = func(last uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) {
		calls++
		if calls > 1 && last != 5000 {
			t.Errorf("lastSeen %d, want the newest timestamp 5000", last)
		}
		if calls > 1 {
			return nil, nvml.ERROR_NOT_FOUND // no kernels since
		}
		return []nvml.ProcessUtilizationSample{{Pid: 100, TimeStamp: 5000, SmUtil: 60}, {Pid: 101, TimeStamp: 4000, SmUtil: 20}}, nvml.SUCCESS
	}
	d1.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
	d1.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) {
		return []nvml.ProcessInfo{{Pid: 200, UsedGpuMemory: 2 << 30}}, nvml.SUCCESS
	}
	d1.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
	for _, d := range srv.Devices[2:] {
		dev := d.(*dgxa100.Device)
		dev.GetUtilizationRatesFunc = func() (nvml.Utilization, nvml.Return) { return nvml.Utilization{}, nvml.SUCCESS }
		dev.GetComputeRunningProcessesFunc = func() ([]nvml.ProcessInfo, nvml.Return) { return nil, nvml.SUCCESS }
		dev.GetProcessUtilizationFunc = func(uint64) ([]nvml.ProcessUtilizationSample, nvml.Return) { return nil, nvml.ERROR_NOT_FOUND }
	}

	r, err := OpenWith(srv, fakeProc(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	snap, err := r.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Devices) != 8 || snap.Devices[0].Util != 87 || snap.Devices[0].UUID == "" || snap.Devices[0].MemoryTotal == 0 {
		t.Errorf("devices %+v", snap.Devices[:1])
	}
	if got := snap.Containers[ctrA]; got.Util != 80 || got.MemoryBytes != 11<<30 {
		t.Errorf("container A %+v", got)
	}
	if got := snap.Containers[ctrB]; got.Util != 0 || got.MemoryBytes != 2<<30 {
		t.Errorf("container B %+v", got)
	}
	if len(snap.Containers) != 2 {
		t.Errorf("containers %v (the host process must not be attributed)", snap.Containers)
	}
	// Second sample: no kernels ran since, utilization drops to zero,
	// memory stays.
	snap, err = r.Sample(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := snap.Containers[ctrA]; got.Util != 0 || got.MemoryBytes != 11<<30 {
		t.Errorf("container A second sample %+v", got)
	}
}

func TestNVMLInitFailure(t *testing.T) {
	srv := dgxa100.New()
	srv.InitFunc = func() nvml.Return { return nvml.ERROR_LIBRARY_NOT_FOUND }
	srv.ErrorStringFunc = func(nvml.Return) string { return "library not found" }
	if _, err := OpenWith(srv, t.TempDir()); err == nil {
		t.Fatal("init failure not reported")
	}
}
