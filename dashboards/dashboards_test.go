package dashboards

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/dashboards/kibanatest"
)

func TestKibanaObjectsAreConsistent(t *testing.T) {
	objs, err := ParseObjects(KibanaObjects())
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckReferences(objs); err != nil {
		t.Error(err)
	}
	if err := CheckLayout(objs); err != nil {
		t.Error(err)
	}
	types := map[string]int{}
	ids := map[string]bool{}
	for _, o := range objs {
		types[o.Type]++
		if o.Attributes.Title == "" {
			t.Errorf("%s/%s has no title", o.Type, o.ID)
		}
		if ids[o.Type+"/"+o.ID] {
			t.Errorf("%s/%s appears twice", o.Type, o.ID)
		}
		ids[o.Type+"/"+o.ID] = true
	}
	if types["dashboard"] < 3 || types["lens"] < 10 || types["search"] < 5 || types["index-pattern"] < 2 {
		t.Errorf("object types = %v, want at least 3 dashboards, 10 Lens visualizations, 5 saved searches, 2 data views", types)
	}
	for _, id := range []string{"heartwood-container-tail", "heartwood-stack-traces", "heartwood-dead-letters", "heartwood-watchman-decisions", "heartwood-gaps"} {
		if !ids["search/"+id] {
			t.Errorf("saved search %s missing", id)
		}
	}
	used, err := UsedFields(objs)
	if err != nil {
		t.Fatal(err)
	}
	for view, want := range map[string][]string{
		"heartwood-logs":    {"container.name", "log.level", "log.iostream", "service.name", "host.name", "orchestrator.namespace", "event.action", "heartwood.gap.bytes", "error.type"},
		"heartwood-metrics": {"heartwood.container.cpu.cores", "heartwood.watchman.state", "container.id"},
		// A counter rate's hidden maximum column names the field.
		"heartwood-agent": {"heartwood.agent.shipper.lag_seconds", "heartwood.agent.shipper.retries", "heartwood.agent.registrar.consul_errors", "heartwood.agent.restarts.total", "host.name"},
	} {
		for _, f := range want {
			if !slices.Contains(used[view], f) {
				t.Errorf("UsedFields()[%s] = %v lacks %s", view, used[view], f)
			}
		}
	}
	// The e2e test of the agent checks the saved searches' fields.
	if f := Fields(objs); !slices.Contains(f, "data_stream.dataset") || slices.Contains(f, "heartwood.container.cpu.cores") {
		t.Errorf("Fields() = %v: want the saved searches' fields only", f)
	}
}

func TestChecksFindBrokenObjects(t *testing.T) {
	dv := `{"type":"index-pattern","id":"v","attributes":{"title":"logs-*"},"references":[]}`
	search := func(ref, refName string) string {
		return `{"type":"search","id":"s","attributes":{"title":"s","kibanaSavedObjectMeta":{"searchSourceJSON":"{\"indexRefName\":\"` + refName + `\"}"}},"references":[{"name":"idx","type":"index-pattern","id":"` + ref + `"}]}`
	}
	dash := func(grid ...string) string {
		var ps, refs []string
		for i, g := range grid {
			ps = append(ps, fmt.Sprintf(`{\"type\":\"search\",\"panelIndex\":\"p%d\",\"panelRefName\":\"panel_p%d\",\"gridData\":%s}`, i, i, strings.ReplaceAll(g, `"`, `\"`)))
			refs = append(refs, fmt.Sprintf(`{"name":"p%d:panel_p%d","type":"search","id":"s"}`, i, i))
		}
		return `{"type":"dashboard","id":"d","attributes":{"title":"d","panelsJSON":"[` + strings.Join(ps, ",") + `]"},"references":[` + strings.Join(refs, ",") + `]}`
	}
	tests := []struct {
		desc, ndjson, check, want string
	}{
		{"dangling data view", search("gone", "idx"), "refs", "search/s -> index-pattern/gone"},
		{"undefined reference name", dv + "\n" + search("v", "other"), "refs", `uses reference "other"`},
		{"good search", dv + "\n" + search("v", "idx"), "refs", ""},
		{"overlap", dash(`{"x":0,"y":0,"w":24,"h":10}`, `{"x":20,"y":5,"w":10,"h":10}`), "layout", "panels p0 and p1 overlap"},
		{"too wide", dash(`{"x":40,"y":0,"w":24,"h":10}`), "layout", "outside the 48-column grid"},
		{"side by side", dash(`{"x":0,"y":0,"w":24,"h":10}`, `{"x":24,"y":0,"w":24,"h":10}`, `{"x":0,"y":10,"w":48,"h":1}`), "layout", ""},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			objs, err := ParseObjects([]byte(tc.ndjson + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			check := CheckReferences
			if tc.check == "layout" {
				check = CheckLayout
			}
			err = check(objs)
			if tc.want == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseObjects([]byte("{not json}\n")); err == nil {
		t.Fatal("ParseObjects accepted bad JSON")
	}
}

// TestKibanaClient checks the client against a stand-in Kibana that
// enforces the documented import request. No Kibana runs here, so this is
// a protocol test, not a substitute for a real import.
func TestKibanaClient(t *testing.T) {
	ctx := context.Background()
	srv := kibanatest.New(t)
	srv.APIKey = "k"
	k := Kibana{URL: srv.URL + "/s/ops/", APIKey: "k", Client: srv.Client()}
	if v, err := k.WaitReady(ctx); err != nil || v != "8.15.0" {
		t.Fatalf("WaitReady = %q, %v", v, err)
	}
	objs, _ := ParseObjects(KibanaObjects())
	changed, err := k.Changed(ctx, KibanaObjects())
	if err != nil || len(changed) != len(objs) {
		t.Fatalf("Changed before import = %d objects, %v; want all %d", len(changed), err, len(objs))
	}
	res, err := k.Import(ctx, KibanaObjects())
	if err != nil || res.SuccessCount != len(objs) {
		t.Fatalf("Import = %+v, %v", res, err)
	}
	if changed, err := k.Changed(ctx, KibanaObjects()); err != nil || len(changed) != 0 {
		t.Fatalf("Changed after import = %v, %v; want none", changed, err)
	}
	// One changed title is found.
	edited := bytes.Replace(KibanaObjects(), []byte(`"title":"Noisiest containers"`), []byte(`"title":"Noisy"`), 1)
	if changed, err := k.Changed(ctx, edited); err != nil || len(changed) != 1 || changed[0] != "lens/heartwood-noisy-containers" {
		t.Fatalf("Changed after an edit = %v, %v", changed, err)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("requests Kibana would reject: %v", v)
	}
	if _, err := (Kibana{URL: srv.URL, Client: srv.Client()}).WaitReady(ctx); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("without the key: %v, want a 401 error", err)
	}
}

func TestKibanaClientErrors(t *testing.T) {
	tests := []struct {
		desc    string
		status  int
		ctype   string
		answer  string
		wantErr string
	}{
		{"partial failure", 200, "application/json", `{"success":false,"successCount":6,"errors":[{"id":"heartwood-overview","type":"dashboard","error":{"type":"missing_references"}}]}`, "dashboard/heartwood-overview: missing_references"},
		{"unauthorized", 401, "application/json", `{"statusCode":401,"message":"unauthorized"}`, "import: 401: unauthorized"},
		{"an HTML page", 200, "text/html", `<html><body><h1>Welcome to nginx</h1></body></html>`, "not Kibana"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.answer))
			}))
			defer srv.Close()
			_, err := Kibana{URL: srv.URL, Client: srv.Client()}.Import(context.Background(), KibanaObjects())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "<") {
				t.Fatalf("error carries the server's HTML: %v", err)
			}
			_, err = Kibana{URL: srv.URL, Client: srv.Client()}.WaitReady(context.Background())
			if err == nil || strings.Contains(err.Error(), "<") {
				t.Fatalf("WaitReady against a non-Kibana answer: %v", err)
			}
		})
	}
}
