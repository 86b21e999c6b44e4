// Package ecs encodes log events as Elastic Common Schema documents.
//
// Everything that is the same for all lines of a container (container.*,
// service.*, orchestrator.*, host.*, agent.*, data_stream.*) is encoded once
// into a Meta; each line then costs only its own fields and a copy.
package ecs

import (
	"slices"
	"strconv"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/jsonesc"
	"github.com/heartwood-ops/heartwood/shipper/logline"
)

// AgentType is the agent.type of every document.
const AgentType = "heartwood"

// Source describes the origin of a container's logs: the fields that are
// the same for every line.
type Source struct {
	ContainerID   string
	ContainerName string
	Image         string
	Labels        map[string]string

	// ServiceName is the Swarm service, compose service or image name.
	ServiceName string
	ServiceID   string
	// OrchestratorType is "swarm", "compose" or empty.
	OrchestratorType string
	// Namespace is the Swarm stack or compose project.
	Namespace string
	TaskID    string
	TaskName  string
	TaskSlot  int
	NodeID    string

	HostName         string
	AgentVersion     string
	AgentEphemeralID string

	Dataset       string // data_stream.dataset and event.dataset
	DataNamespace string // data_stream.namespace
}

// Meta is a Source encoded once.
type Meta struct {
	frag    []byte // ,"container":{...},... (leading comma, no closing brace)
	dataset []byte // the dataset as a JSON string
}

// NewMeta encodes src.
func NewMeta(src Source) *Meta {
	var b []byte
	b = append(b, `,"container":{"id":`...)
	b = jsonesc.AppendString(b, src.ContainerID)
	if src.ContainerName != "" {
		b = append(b, `,"name":`...)
		b = jsonesc.AppendString(b, src.ContainerName)
	}
	if src.Image != "" {
		name, tag := splitImage(src.Image)
		b = append(b, `,"image":{"name":`...)
		b = jsonesc.AppendString(b, name)
		if tag != "" {
			b = append(b, `,"tag":`...)
			b = jsonesc.AppendString(b, tag)
		}
		b = append(b, '}')
	}
	b = append(b, `,"runtime":"docker"`...)
	if keys := src.ownLabels(); len(keys) > 0 {
		b = append(b, `,"labels":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsonesc.AppendString(b, k)
			b = append(b, ':')
			b = jsonesc.AppendString(b, src.Labels[k])
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	if src.HostName != "" {
		b = append(b, `,"host":{"name":`...)
		b = jsonesc.AppendString(b, src.HostName)
		b = append(b, '}')
	}
	if src.ServiceName != "" {
		b = append(b, `,"service":{"name":`...)
		b = jsonesc.AppendString(b, src.ServiceName)
		if src.ServiceID != "" {
			b = append(b, `,"id":`...)
			b = jsonesc.AppendString(b, src.ServiceID)
		}
		b = append(b, '}')
	}
	if src.OrchestratorType != "" {
		b = append(b, `,"orchestrator":{"type":`...)
		b = jsonesc.AppendString(b, src.OrchestratorType)
		if src.Namespace != "" {
			b = append(b, `,"namespace":`...)
			b = jsonesc.AppendString(b, src.Namespace)
		}
		if src.TaskID != "" || src.TaskName != "" {
			b = append(b, `,"resource":{"type":"task"`...)
			if src.TaskName != "" {
				b = append(b, `,"name":`...)
				b = jsonesc.AppendString(b, src.TaskName)
			}
			if src.TaskID != "" {
				b = append(b, `,"id":`...)
				b = jsonesc.AppendString(b, src.TaskID)
			}
			b = append(b, `,"parent":{"type":"service"}}`...)
		}
		b = append(b, '}')
	}
	if src.TaskSlot > 0 || src.NodeID != "" {
		// Swarm details with no ECS field of their own.
		b = append(b, `,"swarm":{`...)
		sep := ""
		if src.TaskSlot > 0 {
			b = append(b, `"task":{"slot":`...)
			b = strconv.AppendInt(b, int64(src.TaskSlot), 10)
			b = append(b, '}')
			sep = ","
		}
		if src.NodeID != "" {
			b = append(b, sep...)
			b = append(b, `"node":{"id":`...)
			b = jsonesc.AppendString(b, src.NodeID)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	b = append(b, `,"agent":{"type":"`+AgentType+`"`...)
	if src.AgentVersion != "" {
		b = append(b, `,"version":`...)
		b = jsonesc.AppendString(b, src.AgentVersion)
	}
	if src.HostName != "" {
		b = append(b, `,"name":`...)
		b = jsonesc.AppendString(b, src.HostName)
	}
	if src.AgentEphemeralID != "" {
		b = append(b, `,"ephemeral_id":`...)
		b = jsonesc.AppendString(b, src.AgentEphemeralID)
	}
	b = append(b, '}')
	b = append(b, `,"data_stream":{"type":"logs","dataset":`...)
	b = jsonesc.AppendString(b, src.Dataset)
	b = append(b, `,"namespace":`...)
	b = jsonesc.AppendString(b, src.DataNamespace)
	b = append(b, '}')
	return &Meta{frag: b, dataset: jsonesc.AppendString(nil, src.Dataset)}
}

// ownLabels returns the sorted keys of the labels container.labels
// carries: all but the orchestrator's labels whose value the document
// already has in an ECS field of its own (com.docker.swarm.service.name is
// service.name, com.docker.stack.namespace is orchestrator.namespace, ...).
// Left out, they cost every line their bytes and indexing for nothing; a
// label whose value differs from the field is kept.
func (src *Source) ownLabels() []string {
	same := map[string]string{
		"com.docker.swarm.service.name": src.ServiceName,
		"com.docker.swarm.service.id":   src.ServiceID,
		"com.docker.swarm.task.id":      src.TaskID,
		"com.docker.swarm.task.name":    src.TaskName,
		"com.docker.swarm.node.id":      src.NodeID,
		"com.docker.stack.namespace":    src.Namespace,
		"com.docker.compose.project":    src.Namespace,
		"com.docker.compose.service":    src.ServiceName,
	}
	keys := make([]string, 0, len(src.Labels))
	for k, v := range src.Labels {
		if f, ok := same[k]; ok && f == v && v != "" {
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// splitImage splits "repo/name:tag" into name and tag; digests stay in the
// name.
func splitImage(ref string) (string, string) {
	for i := len(ref) - 1; i >= 0; i-- {
		switch ref[i] {
		case ':':
			return ref[:i], ref[i+1:]
		case '/', '@':
			return ref, ""
		}
	}
	return ref, ""
}

// Event is one log event to encode.
type Event struct {
	Line *logline.Line
	// Seq is the per-container sequence number (event.sequence).
	Seq uint64
	// Message replaces Line.Text as the message when non-nil (JSON logs).
	Message []byte
	// Level is log.level, if known.
	Level string
	// Fields is a JSON object of decoded JSON-log fields, stored in the
	// flattened field "json"; nil for none.
	Fields []byte
	// Tags are appended to tags (e.g. "json_error").
	Tags []string
}

// Append encodes ev as a complete JSON document onto dst.
func (m *Meta) Append(dst []byte, ev *Event) []byte {
	l := ev.Line
	dst = append(dst, `{"@timestamp":"`...)
	if n := len(l.TimeRaw); n > 0 && l.TimeRaw[n-1] == 'Z' && jsonesc.IsPlainASCII(l.TimeRaw) {
		dst = append(dst, l.TimeRaw...)
	} else {
		dst = time.Unix(0, l.Time).UTC().AppendFormat(dst, time.RFC3339Nano)
	}
	dst = append(dst, `","message":`...)
	msg := l.Text
	if ev.Message != nil {
		msg = ev.Message
	}
	dst = jsonesc.AppendBytes(dst, msg)
	dst = append(dst, `,"log":{"iostream":"`...)
	dst = append(dst, l.Stream.String()...)
	dst = append(dst, '"')
	if ev.Level != "" {
		dst = append(dst, `,"level":`...)
		dst = jsonesc.AppendString(dst, ev.Level)
	}
	dst = append(dst, `},"event":{"sequence":`...)
	dst = strconv.AppendUint(dst, ev.Seq, 10)
	dst = append(dst, `,"dataset":`...)
	dst = append(dst, m.dataset...)
	dst = append(dst, '}')
	if ev.Fields != nil {
		dst = append(dst, `,"json":`...)
		dst = append(dst, ev.Fields...)
	}
	if l.Truncated || l.Lines > 1 || l.Records > 1 || len(ev.Tags) > 0 {
		dst = append(dst, `,"tags":[`...)
		sep := ""
		tag := func(s string) {
			dst = append(dst, sep...)
			dst = append(dst, '"')
			dst = append(dst, s...)
			dst = append(dst, '"')
			sep = ","
		}
		if l.Truncated {
			tag("truncated")
		}
		if l.Lines > 1 {
			tag("multiline")
		}
		if l.Records > 1 {
			tag("partial")
		}
		for _, t := range ev.Tags {
			dst = append(dst, sep...)
			dst = jsonesc.AppendString(dst, t)
			sep = ","
		}
		dst = append(dst, ']')
	}
	dst = append(dst, m.frag...)
	return append(dst, '}')
}
