//go:build integration

package registrar_test

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationNetworkConnect connects a container to the network its
// SERVICE_NETWORK names: the service appears with that network's address.
func TestIntegrationNetworkConnect(t *testing.T) {
	docker := testenv.Docker(t)
	it := newITest(t, docker, testenv.RequireConsul(t))
	ctx := context.Background()
	netName := "hwnet-" + it.runID
	created, err := docker.NetworkCreate(ctx, netName, network.CreateOptions{Labels: map[string]string{testenv.LabelTest: it.runID}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = docker.NetworkRemove(context.Background(), created.ID) })
	it.start(docker, it.config())
	id := it.run(docker, spec{name: it.name("late"), labels: map[string]string{"SERVICE_NETWORK": netName}, ports: []string{"80/tcp"}, unpublished: true})
	it.waitIDs(2 * time.Second) // not on the network yet: skipped
	if err := docker.NetworkConnect(ctx, created.ID, id, nil); err != nil {
		t.Fatal(err)
	}
	took := it.waitIDs(5*time.Second, it.id(it.name("late"), "80"))
	t.Logf("registered %s after network connect", took)
	in := it.inspect(docker, id)
	if got, want := it.services()[it.id(it.name("late"), "80")].Address, in.NetworkSettings.Networks[netName].IPAddress; got != want {
		t.Fatalf("address %s, want %s on %s", got, want, netName)
	}
}
