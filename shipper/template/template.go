// Package template builds the composable index template for the shipper's
// logs-<dataset>-<namespace> data streams.
//
// The template carries its own mappings and settings (no component
// templates, no ILM policy), so it works on clusters without Elastic's
// built-in logs-*-* template; its priority is above that template's 100 so
// that it wins where the built-in one exists.
package template

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Options shape the template.
type Options struct {
	// Patterns are the index patterns, e.g. logs-*-*.
	Patterns []string
	// Priority must differ from every other template with an overlapping
	// pattern; Elastic's built-in logs template uses 100.
	Priority int
	// Compat replaces the field types that live in Elasticsearch's
	// optional modules (match_only_text, constant_keyword) with the core
	// types text and keyword.
	Compat bool
}

// Build returns the template body for PUT _index_template/<name>.
func Build(o Options) []byte {
	text, constant := "match_only_text", "constant_keyword"
	if o.Compat {
		text, constant = "text", "keyword"
	}
	kw := map[string]any{"type": "keyword", "ignore_above": 1024}
	obj := func(props map[string]any) map[string]any { return map[string]any{"properties": props} }
	props := map[string]any{
		"@timestamp": map[string]any{"type": "date_nanos"},
		"message":    map[string]any{"type": text},
		"tags":       kw,
		"log": obj(map[string]any{
			"level":    kw,
			"iostream": kw,
			"logger":   kw,
		}),
		"event": obj(map[string]any{
			"sequence": map[string]any{"type": "long"},
			"dataset":  kw,
			"kind":     kw,
			"action":   kw,
			"reason":   map[string]any{"type": text},
			"outcome":  kw,
			"category": kw,
			"type":     kw,
		}),
		"error": obj(map[string]any{
			"message": map[string]any{"type": text},
			"type":    kw,
		}),
		"container": obj(map[string]any{
			"id":      kw,
			"name":    kw,
			"runtime": kw,
			"image":   obj(map[string]any{"name": kw, "tag": kw}),
			"labels":  map[string]any{"type": "flattened", "ignore_above": 1024},
		}),
		"host":    obj(map[string]any{"name": kw}),
		"service": obj(map[string]any{"name": kw, "id": kw}),
		"orchestrator": obj(map[string]any{
			"type":      kw,
			"namespace": kw,
			"resource": obj(map[string]any{
				"type": kw, "name": kw, "id": kw,
				"parent": obj(map[string]any{"type": kw}),
			}),
		}),
		"swarm": obj(map[string]any{
			"task": obj(map[string]any{"slot": map[string]any{"type": "integer"}}),
			"node": obj(map[string]any{"id": kw}),
		}),
		"agent": obj(map[string]any{"type": kw, "version": kw, "name": kw, "ephemeral_id": kw}),
		"data_stream": obj(map[string]any{
			"type":      map[string]any{"type": constant},
			"dataset":   map[string]any{"type": constant},
			"namespace": map[string]any{"type": constant},
		}),
		// Decoded JSON logs: one field whatever their keys, so that
		// applications cannot explode or conflict with the mapping.
		"json": map[string]any{"type": "flattened", "ignore_above": 1024, "depth_limit": 20},
		"heartwood": obj(map[string]any{
			"gap": obj(map[string]any{"bytes": map[string]any{"type": "long"}}),
			// The watchman's decision events: signal values and thresholds,
			// written by the agent itself, never by log content.
			"watchman": map[string]any{"type": "object", "dynamic": true},
		}),
	}
	tpl := map[string]any{
		"index_patterns": o.Patterns,
		"priority":       o.Priority,
		"data_stream":    map[string]any{},
		"_meta":          map[string]any{"managed_by": "heartwood", "description": "heartwood container logs"},
		"template": map[string]any{
			"settings": map[string]any{"index": map[string]any{
				"auto_expand_replicas": "0-1",
				"refresh_interval":     "1s",
			}},
			"mappings": map[string]any{
				// Fields outside the schema stay in _source but are not
				// indexed: the mapping never grows from log content.
				"dynamic":        false,
				"date_detection": false,
				"properties":     props,
			},
		},
	}
	b, err := json.Marshal(tpl)
	if err != nil {
		panic(fmt.Sprintf("template: marshal: %v", err)) // static data
	}
	return b
}

// NeedsCompat reports whether err from installing a full template says the
// cluster lacks one of the optional field types, so that Build with Compat
// should be installed instead. Elasticsearch reports that as "No handler
// for type" nested under "template after composition is invalid"; clients
// that keep only the top-level reason see the latter, which for this
// template (it composes nothing) can only come from its own mappings.
func NeedsCompat(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "No handler for type") || strings.Contains(msg, "template after composition is invalid")
}
