//go:build integration

package cgroup_test

import (
	"context"
	"errors"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
)

// TestIntegrationRealContainerAndVanish resolves a real container's cgroup
// on this host (v1, cgroupfs driver, hybrid unified hierarchy for PSI),
// reads it, removes the container and checks that the next read reports
// ErrVanished rather than garbage or a different error.
func TestIntegrationRealContainerAndVanish(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Busybox(t, cli)
	runID := testenv.RunID()
	id := testenv.Run(t, cli, runID, testenv.Spec{Name: "wm-cg-" + runID,
		Config:     &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "3600"}},
		HostConfig: &container.HostConfig{NetworkMode: "none", Resources: container.Resources{Memory: 64 << 20, PidsLimit: ptr(int64(50))}}})
	ctx := context.Background()
	in, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	p, err := cgroup.ForPID("/proc", "/sys/fs/cgroup", in.State.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := cgroup.ContainerIDOfPID("/proc", in.State.Pid); got != id {
		t.Errorf("ContainerIDOfPID = %q", got)
	}
	r, err := cgroup.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var s cgroup.Stats
	if err := r.Read(&s); err != nil {
		t.Fatal(err)
	}
	if s.MemoryLimit != 64<<20 || s.PidsMax != 50 || s.Pids != 1 || s.CPUUsage == 0 || s.MemoryUsage == 0 || !s.HasPSI {
		t.Errorf("stats %+v", s)
	}
	testenv.Remove(cli, id)
	err = r.Read(&s)
	if !errors.Is(err, cgroup.ErrVanished) {
		t.Fatalf("read after removal: %v, want ErrVanished", err)
	}
	if err := r.ReadHot(&s); !errors.Is(err, cgroup.ErrVanished) {
		t.Fatalf("hot read after removal: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }
