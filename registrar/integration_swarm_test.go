//go:build integration

package registrar_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/docker/docker/api/types/swarm"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationSwarmTasks runs a replicated Swarm service (two tasks on
// this node, host network) on a private dockerd in Swarm mode: services are
// named after the Swarm service, carry the task slot in the ID and Swarm
// Meta, and a deploy (service) label never reaches them.
func TestIntegrationSwarmTasks(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	docker := d.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	port := testenv.FreePort(t)
	if _, err := docker.SwarmInit(ctx, swarm.InitRequest{ListenAddr: fmt.Sprintf("127.0.0.1:%d", port), AdvertiseAddr: fmt.Sprintf("127.0.0.1:%d", port)}); err != nil {
		t.Fatalf("swarm init on the private dockerd: %v", err)
	}
	it := newITest(t, docker, testenv.RequireConsul(t))
	img := testenv.GoImage(t, docker, "heartwood-test/sleeper:"+it.runID, "testdata/sleeper", "EXPOSE 9100")
	it.start(docker, it.config())

	name := "hwsvc-" + it.runID
	replicas := uint64(2)
	_, err := docker.ServiceCreate(ctx, swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: name, Labels: map[string]string{"SERVICE_NAME": "from-deploy-labels"}},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{Image: img, Labels: map[string]string{testenv.LabelTest: it.runID, "SERVICE_TAGS": "swarm"}},
			Networks:      []swarm.NetworkAttachmentConfig{{Target: "host"}},
		},
		Mode: swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
	}, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("service create: %v", err)
	}
	ids := []string{it.node + ":" + name + ".1:9100", it.node + ":" + name + ".2:9100"}
	took := it.waitIDs(60*time.Second, ids...)
	t.Logf("swarm tasks registered %s", took)
	for _, id := range ids {
		s := it.services()[id]
		if s.Service != name || len(s.Tags) != 1 || s.Tags[0] != "swarm" || s.Port != 9100 {
			t.Errorf("%s = %s %v :%d", id, s.Service, s.Tags, s.Port)
		}
		if s.Meta["swarm_service"] != name || s.Meta["swarm_task_id"] == "" || s.Meta["swarm_node_id"] == "" || s.Meta["swarm_task_slot"] == "" {
			t.Errorf("%s: swarm Meta missing: %v", id, s.Meta)
		}
	}
}
