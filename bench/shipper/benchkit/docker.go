// Package benchkit is what the shipper's harnesses share: a fake Docker
// API (a fixed set of running Swarm task containers that log with the
// json-file driver), log words, a shipper configuration kept to one
// namespace, and the process's CPU time.
package benchkit

import (
	"context"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
)

// Fake lists IDs as running containers and sends no events.
type Fake struct{ IDs []string }

// Events returns channels on which nothing arrives.
func (f *Fake) Events(context.Context, events.ListOptions) (<-chan events.Message, <-chan error) {
	return make(chan events.Message), make(chan error)
}

// ContainerList lists every container.
func (f *Fake) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	var out []container.Summary
	for _, id := range f.IDs {
		out = append(out, container.Summary{ID: id})
	}
	return out, nil
}

// ContainerInspect describes a Swarm task container of service shop_web.
func (f *Fake) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/bench-" + id[:6],
			State:      &container.State{Status: "running", Running: true},
			HostConfig: &container.HostConfig{LogConfig: container.LogConfig{Type: "json-file"}}},
		Config: &container.Config{Image: "registry.local/shop/web:1.4.2", Labels: map[string]string{
			"com.docker.stack.namespace": "shop", "com.docker.swarm.service.name": "shop_web",
			"com.docker.swarm.task.id": "x8k2n1", "com.docker.swarm.task.name": "shop_web.1.x8k2n1",
			"com.docker.swarm.node.id": "node7"}},
	}, nil
}
