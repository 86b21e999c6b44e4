//go:build integration

package esschema

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationTemplates installs Heartwood's templates into the real
// Elasticsearch with the features it detects, checks that a second install
// changes nothing, that another client's logs-other-default stream would not
// get any of them, and that retention is set exactly where the cluster
// supports it.
func TestIntegrationTemplates(t *testing.T) {
	es := HTTP{URL: testenv.RequireES(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, notes, err := Detect(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("features %+v; notes %q", f, notes)
	o := Options{LogPatterns: []string{"logs-docker.container-*"}, Priority: 200, Features: f,
		Retention: map[Kind]time.Duration{Logs: 30 * 24 * time.Hour, Decisions: 90 * 24 * time.Hour, DeadLetters: 30 * 24 * time.Hour, Metrics: 14 * 24 * time.Hour}}
	if _, err := o.Install(ctx, es, false); err != nil {
		t.Fatal(err)
	}
	if ch, err := o.Install(ctx, es, false); err != nil || len(ch) != 0 {
		t.Fatalf("second install changed %v (%v)", ch, err)
	}
	for _, tc := range []struct {
		index string
		ours  bool
	}{
		{"logs-other-default", false},
		{"metrics-other-default", false},
		{"logs-docker.container-default", true},
		{"logs-heartwood.watchman-default", true},
		{"metrics-heartwood.container-default", true},
		{"metrics-heartwood.agent-default", true},
	} {
		status, body, err := es.Do(ctx, http.MethodPost, "/_index_template/_simulate_index/"+tc.index, nil)
		if err != nil {
			t.Fatal(err)
		}
		var sim struct {
			Template struct {
				Settings  map[string]any `json:"settings"`
				Mappings  map[string]any `json:"mappings"`
				Lifecycle map[string]any `json:"lifecycle"`
			} `json:"template"`
		}
		_ = json.Unmarshal(body, &sim)
		props, _ := sim.Template.Mappings["properties"].(map[string]any)
		_, hasSwarm := props["swarm"]
		if hasSwarm != tc.ours {
			t.Errorf("%s: Heartwood's fields applied = %v, want %v (%d %.300s)", tc.index, hasSwarm, tc.ours, status, body)
		}
		if tc.ours {
			_, hasLifecycle := sim.Template.Lifecycle["data_retention"]
			if hasLifecycle != f.Lifecycle {
				t.Errorf("%s: data_retention set = %v, lifecycle supported = %v", tc.index, hasLifecycle, f.Lifecycle)
			}
			ilm := strings.Contains(string(body), `"lifecycle":{"name":"heartwood-`)
			if ilm != (f.ILM && !f.Lifecycle) {
				t.Errorf("%s: ILM policy set = %v, ILM supported = %v", tc.index, ilm, f.ILM)
			}
		}
	}
}

// TestIntegrationUpgradeFromBroadTemplate is an upgrade on a cluster where
// an earlier Heartwood claimed logs-*-* with its logs template and created
// data streams under it: its own decision stream and a stream of a dataset
// chosen by a container label. Narrowing the logs template must not leave
// either without a template (Elasticsearch refuses that), so the install
// succeeds and both streams stay managed.
func TestIntegrationUpgradeFromBroadTemplate(t *testing.T) {
	es := HTTP{URL: testenv.RequireES(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, _, err := Detect(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	run := testenv.RunID()
	ns := "up" + run
	prefix := "hwtest-up-" + run
	old := `{"index_patterns":["logs-*-` + ns + `"],"priority":317,"data_stream":{},"_meta":{"managed_by":"heartwood"}}`
	if status, body, err := es.Do(ctx, http.MethodPut, "/_index_template/"+prefix+"-logs", []byte(old)); err != nil || status != http.StatusOK {
		t.Fatalf("old template: %d %s %v", status, body, err)
	}
	streams := []string{"logs-" + DecisionsDataset + "-" + ns, "logs-custom.app-" + ns}
	for _, s := range streams {
		if status, body, err := es.Do(ctx, http.MethodPost, "/"+s+"/_doc", []byte(`{"@timestamp":"2026-01-01T00:00:00Z","message":"m"}`)); err != nil || status != http.StatusCreated {
			t.Fatalf("create %s: %d %s %v", s, status, body, err)
		}
	}
	o := Options{LogPatterns: []string{"logs-docker.container-" + ns}, Priority: 317, Features: f, Prefix: prefix, Namespace: ns}
	changes, err := o.Install(ctx, es, false)
	if err != nil {
		t.Fatalf("install over the old broad template: %v", err)
	}
	t.Logf("changes: %v", changes)
	if ch, err := o.Install(ctx, es, false); err != nil || len(ch) != 0 {
		t.Fatalf("second install changed %v (%v)", ch, err)
	}
	for _, s := range streams {
		status, body, err := es.Do(ctx, http.MethodPost, "/_index_template/_simulate_index/"+s, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("simulate %s: %d %.300s %v", s, status, body, err)
		}
		if !strings.Contains(string(body), `"swarm"`) {
			t.Errorf("data stream %s no longer gets Heartwood's mappings: %.400s", s, body)
		}
	}
}

// TestIntegrationUpgradeFromLegacyDeadLetterTemplate: the dead-letter
// template of earlier versions ranks above the new ones and data streams use
// it, so Elasticsearch refuses to delete it. The install still succeeds: the
// stream of the configured namespace moves to the new template, another
// namespace's stream keeps the legacy one, and a second install changes
// nothing.
func TestIntegrationUpgradeFromLegacyDeadLetterTemplate(t *testing.T) {
	es := HTTP{URL: testenv.RequireES(t)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f, _, err := Detect(ctx, es)
	if err != nil {
		t.Fatal(err)
	}
	run := testenv.RunID()
	ns := "dl" + run
	prefix := "hwtest-dl-" + run
	// A dataset of the test's own: no other template on a shared cluster
	// covers its streams.
	dataset := "hwtest.deadletter" + run
	legacy := prefix + "-" + dataset
	old := `{"index_patterns":["logs-` + dataset + `-` + ns + `*"],"priority":450,"data_stream":{},"_meta":{"managed_by":"heartwood"}}`
	if status, body, err := es.Do(ctx, http.MethodPut, "/_index_template/"+legacy, []byte(old)); err != nil || status != http.StatusOK {
		t.Fatalf("legacy template: %d %s %v", status, body, err)
	}
	own, foreign := "logs-"+dataset+"-"+ns, "logs-"+dataset+"-"+ns+"other"
	for _, s := range []string{own, foreign} {
		if status, body, err := es.Do(ctx, http.MethodPost, "/"+s+"/_doc", []byte(`{"@timestamp":"2026-01-01T00:00:00Z","message":"m"}`)); err != nil || status != http.StatusCreated {
			t.Fatalf("create %s: %d %s %v", s, status, body, err)
		}
	}
	o := Options{LogPatterns: []string{"logs-docker.container-" + ns}, Priority: 319, Features: f, Prefix: prefix, Namespace: ns, DeadLetterDataset: dataset}
	changes, err := o.Install(ctx, es, false)
	if err != nil {
		t.Fatalf("install over the legacy dead-letter template: %v", err)
	}
	t.Logf("changes: %v", changes)
	if ch, err := o.Install(ctx, es, false); err != nil || len(ch) != 0 {
		t.Fatalf("second install changed %v (%v)", ch, err)
	}
	simulate := func(s string) string {
		status, body, err := es.Do(ctx, http.MethodPost, "/_index_template/_simulate_index/"+s, nil)
		if err != nil || status != http.StatusOK {
			t.Fatalf("simulate %s: %d %.300s %v", s, status, body, err)
		}
		return string(body)
	}
	if b := simulate(own); !strings.Contains(b, `"swarm"`) {
		t.Errorf("%s does not get the new dead-letter template's mappings: %.400s", own, b)
	}
	if b := simulate(foreign); strings.Contains(b, `"swarm"`) {
		t.Errorf("%s, which only the legacy template covers, changed template: %.400s", foreign, b)
	}
	status, body, err := es.Do(ctx, http.MethodGet, "/_index_template/"+legacy, nil)
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"priority":318`) {
		t.Errorf("legacy template after the install: %d %.300s %v; want it kept at priority 318", status, body, err)
	}
}
