package esschema

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func props(k Kind, f Features) map[string]any {
	b, _ := json.Marshal(Mappings(k, f))
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

func TestTemplatesOwnOnlyHeartwoodStreams(t *testing.T) {
	o := Options{LogPatterns: []string{"logs-docker.container-*"}, Priority: 200}
	for _, it := range o.IndexTemplates() {
		var tpl struct {
			Patterns   []string `json:"index_patterns"`
			ComposedOf []string `json:"composed_of"`
		}
		if err := json.Unmarshal(it.Body, &tpl); err != nil {
			t.Fatal(err)
		}
		for _, p := range tpl.Patterns {
			if p == "logs-*-*" || p == "logs-*" || p == "metrics-*-*" || strings.HasPrefix(p, "logs-*") {
				t.Errorf("%s claims %s", it.Name, p)
			}
		}
		if len(tpl.ComposedOf) != 3 || tpl.ComposedOf[0] != "heartwood@base" {
			t.Errorf("%s composed of %v", it.Name, tpl.ComposedOf)
		}
	}
	if got := (Options{Namespace: "t1"}).Patterns(Metrics); !slices.Equal(got, []string{"metrics-heartwood.container-t1"}) {
		t.Errorf("Patterns(Metrics) with a namespace = %v", got)
	}
}

func TestECSTypes(t *testing.T) {
	p := props(Decisions, Features{})
	ev := p["event"].(map[string]any)["properties"].(map[string]any)
	if ev["reason"].(map[string]any)["type"] != "keyword" {
		t.Errorf("event.reason = %v, want keyword (ECS)", ev["reason"])
	}
	if got := props(Logs, Features{MapperExtras: true})["message"].(map[string]any)["type"]; got != "match_only_text" {
		t.Errorf("message = %v with match_only_text available", got)
	}
	if got := props(Logs, Features{})["message"].(map[string]any)["type"]; got != "text" {
		t.Errorf("message = %v without match_only_text", got)
	}
}

func TestRetention(t *testing.T) {
	ret := map[Kind]time.Duration{Logs: 30 * 24 * time.Hour, Metrics: 12 * time.Hour}
	settingsOf := func(o Options, k Kind) string {
		for _, c := range o.ComponentTemplates() {
			if c.Name == o.settings(k) {
				return string(c.Body)
			}
		}
		return ""
	}
	dsl := Options{Retention: ret, Features: Features{Lifecycle: true, ILM: true}}
	if s := settingsOf(dsl, Logs); !strings.Contains(s, `"lifecycle":{"data_retention":"30d"}`) {
		t.Errorf("logs settings with lifecycle: %s", s)
	}
	if s := settingsOf(dsl, Metrics); !strings.Contains(s, `"data_retention":"12h"`) {
		t.Errorf("metrics settings with lifecycle: %s", s)
	}
	if s := settingsOf(dsl, DeadLetters); strings.Contains(s, "lifecycle") {
		t.Errorf("dead letters without retention got a lifecycle: %s", s)
	}
	if len(dsl.ILMPolicies()) != 0 {
		t.Error("ILM policies although lifecycle is there")
	}
	ilm := Options{Retention: ret, Features: Features{ILM: true}}
	if s := settingsOf(ilm, Logs); !strings.Contains(s, `"lifecycle":{"name":"heartwood-logs"}`) {
		t.Errorf("logs settings with ILM: %s", s)
	}
	// The agents' health documents are kept as long as the utilization
	// samples.
	if p := ilm.ILMPolicies(); len(p) != 3 || !strings.Contains(string(p[0].Body), `"min_age":"30d"`) ||
		p[2].Name != "heartwood-agent" || !strings.Contains(string(p[2].Body), `"min_age":"12h"`) {
		t.Errorf("ILM policies: %v", p)
	}
	none := Options{Retention: ret}
	if s := settingsOf(none, Logs); strings.Contains(s, "lifecycle") {
		t.Errorf("retention set without support: %s", s)
	}
}

func TestCheckDocument(t *testing.T) {
	var doc map[string]any
	_ = json.Unmarshal([]byte(`{"@timestamp":"2026-01-01T00:00:00Z","message":"m","event":{"reason":"idle","sequence":3},
		"container":{"labels":{"a.b":"c"},"name":"x"},"json":{"deep":{"x":[1,2]}},"tags":["a","b"],
		"unknown":{"x":1},"swarm":{"task":{"slot":"one"}},"log":"flat"}`), &doc)
	got := CheckDocument(props(Logs, Features{}), doc)
	want := []string{
		"log: mapped as an object, written as string",
		"swarm.task.slot: mapped as integer, written as string one",
		"unknown: not mapped",
	}
	if !slices.Equal(got, want) {
		t.Errorf("CheckDocument = %q\nwant %q", got, want)
	}
	have := props(Logs, Features{})
	delete(have, "tags")
	have["message"] = map[string]any{"type": "keyword"}
	if d := DiffMappings(props(Logs, Features{}), have); !slices.Equal(d, []string{"message: text in the template, keyword in the mapping", "tags: missing from the mapping"}) {
		t.Errorf("DiffMappings = %q", d)
	}
}

// fakeES holds PUT bodies and answers GETs like Elasticsearch.
type fakeES struct {
	objs map[string][]byte
	puts int
}

func (f *fakeES) Do(_ context.Context, method, path string, body []byte) (int, []byte, error) {
	switch method {
	case http.MethodPut:
		f.objs[path] = body
		f.puts++
		return 200, []byte(`{"acknowledged":true}`), nil
	case http.MethodDelete:
		delete(f.objs, path)
		return 200, []byte(`{"acknowledged":true}`), nil
	case http.MethodGet:
		b, ok := f.objs[path]
		if !ok {
			return 404, []byte(`{}`), nil
		}
		name := path[strings.LastIndex(path, "/")+1:]
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		// Elasticsearch echoes booleans in mappings as strings.
		bs := strings.ReplaceAll(string(b), `"dynamic":false`, `"dynamic":"false"`)
		_ = json.Unmarshal([]byte(bs), &v)
		switch {
		case strings.HasPrefix(path, "/_component_template/"):
			return 200, mustJSON(m{"component_templates": []any{m{"name": name, "component_template": v}}}), nil
		case strings.HasPrefix(path, "/_index_template/"):
			return 200, mustJSON(m{"index_templates": []any{m{"name": name, "index_template": v}}}), nil
		default:
			return 200, mustJSON(m{name: m{"policy": v["policy"], "version": 1}}), nil
		}
	}
	return 400, nil, nil
}

func TestInstallIsIdempotent(t *testing.T) {
	es := &fakeES{objs: map[string][]byte{}}
	o := Options{LogPatterns: []string{"logs-docker.container-*"}, Priority: 200,
		Retention: map[Kind]time.Duration{Logs: 24 * time.Hour}, Features: Features{ILM: true}}
	ch, err := o.Install(context.Background(), es, true)
	if err != nil || len(ch) != 1+11+5 || es.puts != 0 {
		t.Fatalf("dry run: %d changes %v, %d puts, %v", len(ch), ch, es.puts, err)
	}
	ch, err = o.Install(context.Background(), es, false)
	if err != nil || len(ch) != 17 || es.puts != 17 {
		t.Fatalf("first install: %d changes, %d puts, %v", len(ch), es.puts, err)
	}
	ch, err = o.Install(context.Background(), es, false)
	if err != nil || len(ch) != 0 || es.puts != 17 {
		t.Fatalf("second install: changes %v, %d puts, %v", ch, es.puts, err)
	}
	// A dead-letter template an earlier version installed is removed.
	es.objs["/_index_template/heartwood-heartwood.deadletter"] = []byte(`{"index_patterns":["logs-heartwood.deadletter-*"],"priority":250,"_meta":{"managed_by":"heartwood"}}`)
	ch, err = o.Install(context.Background(), es, false)
	if _, left := es.objs["/_index_template/heartwood-heartwood.deadletter"]; err != nil || len(ch) != 1 || left {
		t.Fatalf("legacy template: changes %v, still there %v, %v", ch, left, err)
	}
	o.Retention[Logs] = 48 * time.Hour
	ch, err = o.Install(context.Background(), es, false)
	if err != nil || len(ch) != 1 || ch[0].String() != "ILM policy heartwood-logs" {
		t.Fatalf("after a retention change: %v, %v", ch, err)
	}
}

func TestAgentStream(t *testing.T) {
	o := Options{Namespace: "t1"}
	if got := o.Patterns(Agent); !slices.Equal(got, []string{"metrics-heartwood.agent-t1"}) {
		t.Errorf("Patterns(Agent) = %v", got)
	}
	for _, tc := range []struct {
		f        Features
		wantMode bool
	}{{Features{}, false}, {Features{TimeSeries: true}, true}} {
		o := Options{Features: tc.f}
		var settings string
		for _, c := range o.ComponentTemplates() {
			if c.Name == "heartwood-agent@settings" {
				settings = string(c.Body)
			}
		}
		if got := strings.Contains(settings, `"mode":"time_series"`) && strings.Contains(settings, `"routing_path":["host.name"]`); got != tc.wantMode {
			t.Errorf("time series %v: settings %s", tc.f.TimeSeries, settings)
		}
		p := props(Agent, tc.f)
		host := p["host"].(map[string]any)["properties"].(map[string]any)["name"].(map[string]any)
		if (host["time_series_dimension"] == true) != tc.wantMode {
			t.Errorf("time series %v: host.name %v", tc.f.TimeSeries, host)
		}
		restarts := p["heartwood"].(map[string]any)["properties"].(map[string]any)["agent"].(map[string]any)["properties"].(map[string]any)["restarts"].(map[string]any)["properties"].(map[string]any)
		for _, u := range append([]string{"total"}, AgentUnits...) {
			r, _ := restarts[u].(map[string]any)
			if r["type"] != "long" || tc.wantMode && r["time_series_metric"] != "counter" {
				t.Errorf("time series %v: restarts.%s = %v", tc.f.TimeSeries, u, r)
			}
		}
	}
}
