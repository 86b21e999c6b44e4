package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Spec describes a test container. Config and HostConfig may be nil.
type Spec struct {
	Name       string
	Config     *container.Config
	HostConfig *container.HostConfig
	// NoStart creates the container without starting it.
	NoStart bool
}

// Run creates (and unless spec.NoStart, starts) a container labelled
// LabelTest=runID and removes it when the test ends. It returns the ID.
func Run(t testing.TB, cli *client.Client, runID string, spec Spec) string {
	t.Helper()
	cfg := container.Config{}
	if spec.Config != nil {
		cfg = *spec.Config
	}
	labels := map[string]string{LabelTest: runID}
	for k, v := range cfg.Labels {
		labels[k] = v
	}
	cfg.Labels = labels
	hc := spec.HostConfig
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := cli.ContainerCreate(ctx, &cfg, hc, &network.NetworkingConfig{}, nil, spec.Name)
	if err != nil {
		t.Fatalf("testenv: create container %q: %v", spec.Name, err)
	}
	t.Cleanup(func() { Remove(cli, created.ID) })
	if !spec.NoStart {
		if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			t.Fatalf("testenv: start container %q: %v", spec.Name, err)
		}
	}
	return created.ID
}

// Remove force-removes a container, ignoring a container that is gone.
func Remove(cli *client.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
}

// RemoveLabelled force-removes every container labelled LabelTest=runID, and
// is registered as a cleanup by callers that create containers by other
// means.
func RemoveLabelled(t testing.TB, cli *client.Client, runID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", LabelTest+"="+runID))})
	if err != nil {
		t.Errorf("testenv: list test containers: %v", err)
		return
	}
	for _, c := range list {
		Remove(cli, c.ID)
	}
}
