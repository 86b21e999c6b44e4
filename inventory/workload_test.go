package inventory

import (
	"encoding/json"
	"testing"
)

func TestWorkload(t *testing.T) {
	tests := []struct {
		desc string
		c    Container
		want string
	}{
		{"swarm task", Container{Image: "reg/app:1", Swarm: &SwarmTask{ServiceName: "st_api", ServiceID: "s1", TaskID: "t1", TaskName: "st_api.2.t1", Slot: 2, NodeID: "n1", Stack: "st"}},
			`{"orchestrator":{"namespace":"st","resource":{"id":"t1","name":"st_api.2.t1","parent":{"type":"service"},"type":"task"},"type":"swarm"},"service":{"id":"s1","name":"st_api"},"swarm":{"node":{"id":"n1"},"task":{"slot":2}}}`},
		{"compose", Container{Image: "app", Labels: map[string]string{LabelComposeService: "web", LabelComposeProject: "shop"}},
			`{"orchestrator":{"namespace":"shop","type":"compose"},"service":{"name":"web"}}`},
		{"plain", Container{Image: "registry:5000/team/trainer:v3@sha256:ab"}, `{"service":{"name":"trainer"}}`},
	}
	for _, tc := range tests {
		b, _ := json.Marshal(tc.c.Workload().ECS())
		if string(b) != tc.want {
			t.Errorf("%s: %s\nwant %s", tc.desc, b, tc.want)
		}
	}
}
