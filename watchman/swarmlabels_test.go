package watchman

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/heartwood-ops/heartwood/inventory"
)

// TestSwarmpromLabels: a Swarm task's container series carry the labels
// swarmprom groups by (service, node ID, task name, stack namespace).
func TestSwarmpromLabels(t *testing.T) {
	h := newHarness(t, nil)
	h.add("a", map[string]string{
		inventory.LabelSwarmServiceName: "ml_trainer", inventory.LabelSwarmServiceID: "svc1",
		inventory.LabelSwarmTaskName: "ml_trainer.1.task1", inventory.LabelSwarmTaskID: "task1",
		inventory.LabelSwarmNodeID: "node1", inventory.LabelStackNamespace: "ml",
	})
	h.tick(nil)
	h.tick(nil)
	mfs, err := h.w.deps.Registerer.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	for _, mf := range mfs {
		if mf.GetName() == "container_memory_working_set_bytes" {
			if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, want := range []string{`container_label_com_docker_stack_namespace="ml"`, `container_label_com_docker_swarm_node_id="node1"`,
		`container_label_com_docker_swarm_service_name="ml_trainer"`, `container_label_com_docker_swarm_task_name="ml_trainer.1.task1"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("container_memory_working_set_bytes lacks %s:\n%s", want, buf.String())
		}
	}
}
