package inventory

import "strings"

// Workload is what a container runs as, in the terms of the ECS service
// and orchestrator fields: the Swarm service and task, the Compose service,
// or, outside both, the image's name.
type Workload struct {
	ServiceName, ServiceID string
	// OrchestratorType is "swarm", "compose" or empty.
	OrchestratorType string
	// Namespace is the stack or Compose project.
	Namespace        string
	TaskID, TaskName string
	TaskSlot         int
	NodeID           string
}

// Workload returns the container's workload identity. Logs, decisions and
// utilization samples carry the same one, so that one filter works across
// them.
func (c *Container) Workload() Workload {
	switch {
	case c.Swarm != nil:
		return Workload{ServiceName: c.Swarm.ServiceName, ServiceID: c.Swarm.ServiceID,
			OrchestratorType: "swarm", Namespace: c.Swarm.Stack,
			TaskID: c.Swarm.TaskID, TaskName: c.Swarm.TaskName, TaskSlot: c.Swarm.Slot, NodeID: c.Swarm.NodeID}
	case c.Labels[LabelComposeService] != "":
		return Workload{ServiceName: c.Labels[LabelComposeService], OrchestratorType: "compose", Namespace: c.Labels[LabelComposeProject]}
	}
	name := c.Image
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.IndexAny(name, ":@"); i >= 0 {
		name = name[:i]
	}
	return Workload{ServiceName: name}
}

// ECS returns the workload as ECS fields (service.*, orchestrator.*,
// swarm.*) for a JSON document; empty values are left out.
func (w Workload) ECS() map[string]any {
	out := map[string]any{}
	if w.ServiceName != "" {
		svc := map[string]any{"name": w.ServiceName}
		if w.ServiceID != "" {
			svc["id"] = w.ServiceID
		}
		out["service"] = svc
	}
	if w.OrchestratorType != "" {
		o := map[string]any{"type": w.OrchestratorType}
		if w.Namespace != "" {
			o["namespace"] = w.Namespace
		}
		if w.TaskID != "" || w.TaskName != "" {
			r := map[string]any{"type": "task", "parent": map[string]any{"type": "service"}}
			if w.TaskName != "" {
				r["name"] = w.TaskName
			}
			if w.TaskID != "" {
				r["id"] = w.TaskID
			}
			o["resource"] = r
		}
		out["orchestrator"] = o
	}
	if w.TaskSlot > 0 || w.NodeID != "" {
		sw := map[string]any{}
		if w.TaskSlot > 0 {
			sw["task"] = map[string]any{"slot": w.TaskSlot}
		}
		if w.NodeID != "" {
			sw["node"] = map[string]any{"id": w.NodeID}
		}
		out["swarm"] = sw
	}
	return out
}
