// Package esschema is the one description of the Elasticsearch documents
// Heartwood writes — container logs, watchman decisions, dead letters and
// utilization samples — as component and index templates that match only
// Heartwood's data streams, with retention where the cluster supports it.
// The shipper installs them at start and `heartwood setup` installs them
// ahead of the agents; the tests compare the documents the agent really
// writes with these mappings.
package esschema

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Kind is one family of Heartwood data streams.
type Kind string

// The kinds of data streams.
const (
	Logs        Kind = "logs"
	Decisions   Kind = "decisions"
	DeadLetters Kind = "deadletters"
	Metrics     Kind = "metrics"
	// Agent is the agents' own health documents (agent.go in this
	// package).
	Agent Kind = "agent"
)

// Kinds lists every kind, in install order.
var Kinds = []Kind{Logs, Decisions, DeadLetters, Metrics, Agent}

// Datasets of Heartwood's own streams.
const (
	DecisionsDataset  = "heartwood.watchman"
	DeadLetterDataset = "heartwood.deadletter"
	MetricsDataset    = "heartwood.container"
	AgentDataset      = "heartwood.agent"
)

// Features are what the cluster supports; Detect fills them.
type Features struct {
	// MapperExtras (match_only_text, scaled_float) and ConstantKeyword are
	// the optional field types' modules; without them text, float and
	// keyword are used.
	MapperExtras, ConstantKeyword bool
	// Lifecycle is data stream lifecycle (data_retention); ILM is index
	// lifecycle management. Retention uses the first one present.
	Lifecycle, ILM bool
	// TimeSeries is time-series data streams (index.mode time_series).
	TimeSeries bool
}

// Options shape the templates.
type Options struct {
	// LogPatterns are the container logs' index patterns, e.g.
	// logs-docker.container-*. Never logs-*-*: other shippers' streams
	// are not Heartwood's.
	LogPatterns []string
	// Priority of the index templates: above Elastic's built-in logs and
	// metrics templates (100).
	Priority int
	// Retention per kind; 0 keeps data forever.
	Retention map[Kind]time.Duration
	Features  Features
	// Prefix names the templates (default "heartwood").
	Prefix string
	// DeadLetterDataset is the dead-letter stream's dataset (default
	// heartwood.deadletter).
	DeadLetterDataset string
	// Namespace, when set, restricts Heartwood's own streams to that
	// namespace instead of all (tests use it to stay apart).
	Namespace string
	// KeepStreams are data streams an earlier version's broader logs
	// template created that no pattern covers any more; the logs template
	// keeps them by name, because Elasticsearch refuses to leave a data
	// stream without a template. Install fills it in.
	KeepStreams []string
}

// Template is a named template body.
type Template struct {
	Name string
	Body []byte
}

type m = map[string]any

func obj(props m) m { return m{"properties": props} }

var kw = m{"type": "keyword", "ignore_above": 1024}

func (f Features) text() m {
	if f.MapperExtras {
		return m{"type": "match_only_text"}
	}
	return m{"type": "text"}
}

func (f Features) constant() m {
	if f.ConstantKeyword {
		return m{"type": "constant_keyword"}
	}
	return m{"type": "keyword"}
}

// baseFields are the fields every Heartwood document shares: one filter on
// container, Swarm or host fields works across logs, decisions and
// metrics.
func baseFields(f Features) m {
	return m{
		"@timestamp": m{"type": "date_nanos"},
		"message":    f.text(),
		"tags":       kw,
		"event": obj(m{
			"dataset": kw, "kind": kw, "action": kw, "outcome": kw, "category": kw, "type": kw,
			// ECS types event.reason keyword.
			"reason":   kw,
			"sequence": m{"type": "long"},
			"original": m{"type": "keyword", "index": false, "doc_values": false},
		}),
		"error": obj(m{"message": f.text(), "type": kw}),
		"container": obj(m{
			"id": kw, "name": kw, "runtime": kw,
			"image":  obj(m{"name": kw, "tag": kw}),
			"labels": m{"type": "flattened", "ignore_above": 1024},
		}),
		"host":    obj(m{"name": kw}),
		"service": obj(m{"name": kw, "id": kw}),
		"orchestrator": obj(m{
			"type": kw, "namespace": kw,
			"resource": obj(m{"type": kw, "name": kw, "id": kw, "parent": obj(m{"type": kw})}),
		}),
		"swarm": obj(m{
			"task": obj(m{"slot": m{"type": "integer"}}),
			"node": obj(m{"id": kw}),
		}),
		"agent":       obj(m{"type": kw, "version": kw, "name": kw, "ephemeral_id": kw}),
		"data_stream": obj(m{"type": f.constant(), "dataset": f.constant(), "namespace": f.constant()}),
	}
}

func logFields() m {
	return m{
		"log": obj(m{"level": kw, "iostream": kw, "logger": kw}),
		// Decoded JSON logs: one field whatever their keys, so that
		// applications cannot explode or conflict with the mapping.
		"json":      m{"type": "flattened", "ignore_above": 1024, "depth_limit": 20},
		"heartwood": obj(m{"gap": obj(m{"bytes": m{"type": "long"}})}),
	}
}

func decisionFields() m {
	num := m{"type": "double"}
	return m{
		"heartwood": obj(m{"watchman": obj(m{
			"trigger": kw, "group": kw, "state": kw, "dry_run": m{"type": "boolean"},
			"idle_seconds": num,
			"signals": obj(m{
				"cpu_cores": num, "net_bytes_per_second": num, "disk_bytes_per_second": num,
				"throttled_periods": m{"type": "long"}, "pressure": num, "gpu_percent": num,
			}),
			"thresholds": obj(m{
				"cpu_cores": num, "net_bytes_per_second": num, "disk_bytes_per_second": num,
				"gpu_percent": num, "pressure": num, "window_seconds": num, "min_age_seconds": num,
			}),
		})}),
	}
}

func deadLetterFields() m {
	return m{
		"heartwood": obj(m{"dead_letter": obj(m{
			"index": kw, "id": kw, "status": m{"type": "integer"}, "truncated": m{"type": "boolean"},
			"document": m{"type": "keyword", "index": false, "doc_values": false},
		})}),
	}
}

// metricFields are the utilization sample's fields. In a time-series data
// stream the container's identity is the dimension and the figures are
// gauges.
func metricFields(f Features) m {
	gauge := func(t string) m {
		x := m{"type": t}
		if f.TimeSeries {
			x["time_series_metric"] = "gauge"
		}
		return x
	}
	ratio := m{"type": "float"} // ECS: scaled_float, where the cluster has it
	if f.MapperExtras {
		ratio = m{"type": "scaled_float", "scaling_factor": 1000}
	}
	return m{
		"container": obj(m{
			"cpu":     obj(m{"usage": ratio}),
			"memory":  obj(m{"usage": ratio}),
			"network": obj(m{"ingress": obj(m{"bytes": gauge("long")}), "egress": obj(m{"bytes": gauge("long")})}),
			"disk":    obj(m{"read": obj(m{"bytes": gauge("long")}), "write": obj(m{"bytes": gauge("long")})}),
		}),
		"heartwood": obj(m{
			"container": obj(m{
				"cpu":     obj(m{"cores": gauge("double"), "throttled": obj(m{"periods": gauge("long")})}),
				"memory":  obj(m{"working_set": obj(m{"bytes": gauge("long")}), "limit": obj(m{"bytes": gauge("long")})}),
				"network": obj(m{"rx_bytes_per_second": gauge("double"), "tx_bytes_per_second": gauge("double")}),
				"disk":    obj(m{"read_bytes_per_second": gauge("double"), "write_bytes_per_second": gauge("double")}),
				"gpu":     obj(m{"utilization_pct": gauge("double"), "memory": obj(m{"bytes": gauge("long")})}),
			}),
			"watchman": obj(m{
				"state": kw, "idle": m{"type": "boolean"}, "reason": kw,
				"paused_seconds": gauge("double"), "reclaimed_cpu_hours": gauge("double"),
			}),
		}),
	}
}

// merge copies src's properties into dst, recursively.
func merge(dst, src m) {
	for k, v := range src {
		sv, _ := v.(m)
		dv, _ := dst[k].(m)
		sp, sok := sv["properties"].(m)
		dp, dok := dv["properties"].(m)
		if sok && dok {
			merge(dp, sp)
			continue
		}
		dst[k] = v
	}
}

// Mappings returns the properties of a kind's documents: the shared
// fields and the kind's own, as the composed index template has them.
func Mappings(k Kind, f Features) m {
	props := baseFields(f)
	switch k {
	case Logs:
		merge(props, logFields())
	case Decisions:
		merge(props, decisionFields())
	case DeadLetters:
		merge(props, deadLetterFields())
	case Metrics:
		merge(props, metricFields(f))
		if f.TimeSeries {
			merge(props, timeSeriesFields())
		}
	case Agent:
		merge(props, agentFields(f))
		if f.TimeSeries {
			merge(props, agentTimeSeriesFields())
		}
	}
	return props
}

// timeSeriesFields are the metrics' fields a time-series data stream
// changes: its dimensions and a millisecond @timestamp.
func timeSeriesFields() m {
	return m{
		"@timestamp": m{"type": "date"},
		"container":  obj(m{"id": m{"type": "keyword", "time_series_dimension": true}}),
		"host":       obj(m{"name": m{"type": "keyword", "time_series_dimension": true}}),
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("esschema: %v", err)) // static data
	}
	return b
}

func (o Options) prefix() string {
	if o.Prefix == "" {
		return "heartwood"
	}
	return o.Prefix
}

func (o Options) baseComponent() string   { return o.prefix() + "@base" }
func (o Options) component(k Kind) string { return o.prefix() + "-" + string(k) + "@mappings" }
func (o Options) settings(k Kind) string  { return o.prefix() + "-" + string(k) + "@settings" }

// IndexTemplateName is the index template of a kind.
func (o Options) IndexTemplateName(k Kind) string { return o.prefix() + "-" + string(k) }

// ILMPolicyName is the ILM policy of a kind.
func (o Options) ILMPolicyName(k Kind) string { return o.prefix() + "-" + string(k) }

// Patterns returns a kind's index patterns.
func (o Options) Patterns(k Kind) []string {
	ns := o.Namespace
	if ns == "" {
		ns = "*"
	}
	switch k {
	case Logs:
		return append(slices.Clip(o.LogPatterns), o.KeepStreams...)
	case Decisions:
		return []string{"logs-" + DecisionsDataset + "-" + ns}
	case DeadLetters:
		ds := o.DeadLetterDataset
		if ds == "" {
			ds = DeadLetterDataset
		}
		return []string{"logs-" + ds + "-" + ns}
	case Agent:
		return []string{"metrics-" + AgentDataset + "-" + ns}
	default:
		return []string{"metrics-" + MetricsDataset + "-" + ns}
	}
}

// ComponentTemplates returns the component templates: the shared fields,
// each kind's own fields and each kind's settings (with its retention).
func (o Options) ComponentTemplates() []Template {
	f := o.Features
	dynamicOff := m{"dynamic": false, "date_detection": false}
	withProps := func(p m) m {
		x := m{"properties": p}
		for k, v := range dynamicOff {
			x[k] = v
		}
		return x
	}
	meta := m{"managed_by": "heartwood"}
	out := []Template{{o.baseComponent(), mustJSON(m{"_meta": meta, "template": m{"mappings": withProps(baseFields(f))}})}}
	for _, k := range Kinds {
		var own m
		switch k {
		case Logs:
			own = logFields()
		case Decisions:
			own = decisionFields()
		case DeadLetters:
			own = deadLetterFields()
		case Metrics:
			own = metricFields(f)
		case Agent:
			own = agentFields(f)
		}
		out = append(out, Template{o.component(k), mustJSON(m{"_meta": meta, "template": m{"mappings": m{"properties": own}}})})
		out = append(out, Template{o.settings(k), mustJSON(m{"_meta": meta, "template": o.settingsFor(k)})})
	}
	return out
}

func (o Options) settingsFor(k Kind) m {
	idx := m{"auto_expand_replicas": "0-1"}
	if k == Logs || k == Decisions {
		idx["refresh_interval"] = "1s"
	}
	tpl := m{"settings": m{"index": idx}}
	ret := o.retention(k)
	switch {
	case ret > 0 && o.Features.Lifecycle:
		tpl["lifecycle"] = m{"data_retention": durationString(ret)}
	case ret > 0 && o.Features.ILM:
		idx["lifecycle"] = m{"name": o.ILMPolicyName(k)}
	}
	if k == Metrics && o.Features.TimeSeries {
		idx["mode"] = "time_series"
		idx["routing_path"] = []string{"container.id", "host.name"}
		// The dimensions are in the base component; mark them here.
		tpl["mappings"] = m{"properties": timeSeriesFields()}
	}
	if k == Agent && o.Features.TimeSeries {
		idx["mode"] = "time_series"
		idx["routing_path"] = []string{"host.name"}
		tpl["mappings"] = m{"properties": agentTimeSeriesFields()}
	}
	return tpl
}

// retention is a kind's retention; the agents' health documents are
// metrics and are kept as long as the utilization samples unless set.
func (o Options) retention(k Kind) time.Duration {
	if d, ok := o.Retention[k]; ok || k != Agent {
		return d
	}
	return o.Retention[Metrics]
}

// durationString writes d in Elasticsearch's units (whole days or hours).
func durationString(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	if d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%dm", (d+time.Minute-1)/time.Minute)
}

// IndexTemplates returns the index templates, one per kind, composed of
// the component templates.
func (o Options) IndexTemplates() []Template {
	var out []Template
	for _, k := range Kinds {
		// Heartwood's own streams rank above the container logs' patterns,
		// which may be broad (logs-*-<namespace>): overlapping templates
		// must not share a priority.
		prio := o.Priority
		if k != Logs {
			prio++
		}
		out = append(out, Template{o.IndexTemplateName(k), mustJSON(m{
			"index_patterns": o.Patterns(k),
			"priority":       prio,
			"data_stream":    m{},
			"composed_of":    []string{o.baseComponent(), o.component(k), o.settings(k)},
			"_meta":          m{"managed_by": "heartwood", "description": "Heartwood " + string(k)},
		})})
	}
	return out
}

// ILMPolicies returns the ILM policies used where the cluster has ILM but
// not data stream lifecycle: roll over daily or at 50GB, delete after the
// retention.
func (o Options) ILMPolicies() []Template {
	if o.Features.Lifecycle || !o.Features.ILM {
		return nil
	}
	var out []Template
	for _, k := range Kinds {
		ret := o.retention(k)
		if ret <= 0 {
			continue
		}
		out = append(out, Template{o.ILMPolicyName(k), mustJSON(m{"policy": m{
			"_meta": m{"managed_by": "heartwood"},
			"phases": m{
				"hot":    m{"actions": m{"rollover": m{"max_age": "1d", "max_primary_shard_size": "50gb"}}},
				"delete": m{"min_age": durationString(ret), "actions": m{"delete": m{}}},
			},
		}})})
	}
	return out
}
