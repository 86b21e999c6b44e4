package doctor

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
)

type fakeDocker struct {
	v   types.Version
	err error
}

func (f fakeDocker) ServerVersion(context.Context) (types.Version, error) { return f.v, f.err }

// server answers each path with a fixed status, content type and body.
type answer struct {
	status int
	ctype  string
	body   string
	header map[string]string
}

func server(t *testing.T, answers map[string]answer) Endpoint {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if a.ctype == "" {
			a.ctype = "application/json"
		}
		w.Header().Set("Content-Type", a.ctype)
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	return Endpoint{URL: srv.URL, Client: srv.Client()}
}

// unreachable is an address nothing listens on.
func unreachable(t *testing.T) Endpoint {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	return Endpoint{URL: url}
}

func TestChecks(t *testing.T) {
	dir := t.TempDir()
	mk := func(p, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("containers/abc/abc-json.log", "{}\n")
	mk("nojson/abc/config.v2.json", "{}")
	mk("empty/.keep", "")
	mk("proc/self/cgroup", "0::/\n")
	mk("proc/self/net/dev", "")
	mk("proc/stat", "")
	mk("cg2/cgroup.controllers", "cpuset cpu io memory pids\n")
	mk("cg2partial/cgroup.controllers", "cpuset pids\n")
	mk("cg1/cpuacct/cpuacct.usage", "0")
	mk("cg1/memory/memory.usage_in_bytes", "0")
	mk("cgnone/.keep", "")

	aclOff := map[string]answer{
		"GET /v1/acl/token/self": {status: 401, ctype: "text/plain", body: "ACL support disabled"},
		"GET /v1/agent/self":     {status: 200, body: `{"Config":{"NodeName":"n1"}}`},
	}
	aclOn := func(allow ...bool) map[string]answer {
		var parts []string
		for _, a := range allow {
			if a {
				parts = append(parts, `{"Allow":true}`)
			} else {
				parts = append(parts, `{"Allow":false}`)
			}
		}
		return map[string]answer{
			"GET /v1/acl/token/self":          {status: 200, body: `{"AccessorID":"0123456789abcdef","Description":"agent"}`},
			"POST /v1/internal/acl/authorize": {status: 200, body: "[" + strings.Join(parts, ",") + "]"},
		}
	}
	esProduct := map[string]string{"X-Elastic-Product": "Elasticsearch"}
	esNodes := answer{status: 200, body: `{"nodes":{"x":{"version":"8.15.5"}}}`, header: esProduct}
	es := func(priv answer) map[string]answer {
		priv.header = esProduct
		return map[string]answer{"GET /_nodes/_local": esNodes, "POST /_security/user/_has_privileges": priv}
	}
	streams := []string{"logs-docker.container-default"}
	now := time.Now

	tests := []struct {
		name   string
		check  Check
		want   Status
		detail string // substring of Detail
		fix    string // substring of Fix
	}{
		{"docker ok", Docker("unix:///d.sock", fakeDocker{v: types.Version{Version: "28.5.2", APIVersion: "1.51"}}), OK, "API 1.51", ""},
		{"docker down", Docker("unix:///d.sock", fakeDocker{err: errors.New("connection refused")}), Fail, "connection refused", "--docker-host"},
		{"docker old", Docker("unix:///d.sock", fakeDocker{v: types.Version{Version: "19.03", APIVersion: "1.40"}}), Fail, "older than 1.41", "upgrade Docker"},

		{"log dir ok", LogDirectory(filepath.Join(dir, "containers")), OK, "logs readable", ""},
		{"log dir empty", LogDirectory(filepath.Join(dir, "empty")), OK, "no containers yet", ""},
		{"log dir missing", LogDirectory(filepath.Join(dir, "nope")), Fail, "no such file", "containers-root"},
		{"log dir without json logs", LogDirectory(filepath.Join(dir, "nojson")), Warn, "none with a json-file log", "log driver"},

		{"cgroup v2", ProcAndCgroups(filepath.Join(dir, "proc"), filepath.Join(dir, "cg2")), OK, "cgroup v2", ""},
		{"cgroup v1", ProcAndCgroups(filepath.Join(dir, "proc"), filepath.Join(dir, "cg1")), OK, "cgroup v1", ""},
		{"cgroup v2 without controllers", ProcAndCgroups(filepath.Join(dir, "proc"), filepath.Join(dir, "cg2partial")), Warn, "cpu, memory, io", "controllers"},
		{"no cgroups", ProcAndCgroups(filepath.Join(dir, "proc"), filepath.Join(dir, "cgnone")), Fail, "neither", "cgroup-root"},
		{"no proc", ProcAndCgroups(filepath.Join(dir, "empty"), filepath.Join(dir, "cg2")), Fail, "self/cgroup", "proc-root"},

		{"consul acl off", Consul(server(t, aclOff), "", "n1"), OK, "ACLs disabled", ""},
		{"consul acl on, allowed", Consul(server(t, aclOn(true, true, true)), "tok", "n1"), OK, "token 01234567", ""},
		{"consul acl on, no service write", Consul(server(t, aclOn(true, true, false)), "tok", "n1"), Fail, "lacks service:write", "service:write"},
		{"consul acl on, no agent read", Consul(server(t, aclOn(false, true, true)), "tok", "n1"), Fail, "agent:read on node n1", "agent:read"},
		{"consul bad token", Consul(server(t, map[string]answer{"GET /v1/acl/token/self": {status: 403, ctype: "text/plain", body: "ACL not found"}}), "bad", "n1"), Fail, "ACL not found", "--consul-token"},
		{"consul unreachable", Consul(unreachable(t), "", "n1"), Fail, "refused", "--consul-addr"},
		{"consul authorize missing", Consul(server(t, map[string]answer{"GET /v1/acl/token/self": aclOn()["GET /v1/acl/token/self"]}), "tok", "n1"), Warn, "cannot be checked", "by hand"},

		{"es security off", Elasticsearch(server(t, es(answer{status: 400, body: `{"error":"no handler found for uri [/_security/user/_has_privileges]"}`})), streams), OK, "security off", ""},
		{"es privileges ok", Elasticsearch(server(t, es(answer{status: 200, body: `{"username":"hw","has_all_requested":true}`})), streams), OK, "user hw may write", ""},
		{"es privileges missing", Elasticsearch(server(t, es(answer{status: 200, body: `{"username":"hw","has_all_requested":false,"cluster":{"monitor":true,"manage_index_templates":false},"index":{"logs-docker.container-default":{"create_doc":true,"auto_configure":false}}}`})), streams), Fail, "cluster:manage_index_templates, logs-docker.container-default:auto_configure", "grant"},
		{"es bad credentials", Elasticsearch(server(t, map[string]answer{"GET /_nodes/_local": {status: 401, body: `{}`, header: esProduct}}), streams), Fail, "401", "--es-api-key"},
		{"es not elasticsearch", Elasticsearch(server(t, map[string]answer{"GET /_nodes/_local": {status: 200, ctype: "text/html", body: "<html>proxy</html>"}}), streams), Fail, "not Elasticsearch", "--es-url"},
		{"es unreachable", Elasticsearch(unreachable(t), streams), Fail, "refused", "--es-url"},

		{"kibana not configured", Kibana("", fakeKibana{}), Skipped, "not configured", ""},
		{"kibana ok", Kibana("http://k", fakeKibana{v: "8.15.0"}), OK, "Kibana 8.15.0", ""},
		{"kibana degraded", Kibana("http://k", fakeKibana{v: "8.15.0", err: errors.New("Kibana 8.15.0 is degraded")}), Fail, "degraded", "health"},
		{"kibana unauthorized", Kibana("http://k", fakeKibana{err: statusErr(401)}), Fail, "401", "--kibana-api-key"},
		{"kibana not there", Kibana("http://k", fakeKibana{err: errors.New("not Kibana: GET /api/status answered 200 with \"text/html\"")}), Fail, "not Kibana", "--kibana-url"},
		{"clock ok", Clock(now, DateHeader("consul", server(t, map[string]answer{"GET /": {status: 200, header: map[string]string{"Date": time.Now().UTC().Format(http.TimeFormat)}}}), "/")), OK, "consul", ""},
		{"clock skewed", Clock(func() time.Time { return time.Now().Add(-time.Minute) }, DateHeader("consul", server(t, map[string]answer{"GET /": {status: 200, header: map[string]string{"Date": time.Now().UTC().Format(http.TimeFormat)}}}), "/")), Fail, "consul +60", "synchronise"},
		{"clock es", Clock(func() time.Time { return time.Now().Add(time.Minute) }, ESNodeTime(server(t, map[string]answer{"GET /_nodes/_local/stats/os": {status: 200, body: `{"nodes":{"x":{"timestamp":` + itoa(time.Now().UnixMilli()) + `}}}`}}))), Fail, "elasticsearch -60", "synchronise"},
		{"clock no source", Clock(now, DateHeader("consul", unreachable(t), "/")), Skipped, "no server", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.check.Run(context.Background())
			if r.Status != tc.want || !strings.Contains(r.Detail, tc.detail) || !strings.Contains(r.Fix, tc.fix) {
				t.Fatalf("got %s %q fix %q; want %s with %q and fix %q", r.Status, r.Detail, r.Fix, tc.want, tc.detail, tc.fix)
			}
			if strings.Contains(r.Detail, "<html") {
				t.Fatalf("detail carries a server's HTML: %q", r.Detail)
			}
		})
	}
}

type fakeKibana struct {
	v   string
	err error
}

func (f fakeKibana) Version(context.Context) (string, error) { return f.v, f.err }

type statusErr int

func (e statusErr) Error() string   { return "status " + strconv.Itoa(int(e)) }
func (e statusErr) HTTPStatus() int { return int(e) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestRunReportsOneLinePerCheckAndCountsFailures(t *testing.T) {
	checks := []Check{
		{Name: "a", Run: func(context.Context) Result { return ok("fine") }},
		{Name: "longer", Run: func(context.Context) Result { return fail("do this", "broken\nacross lines") }},
		{Name: "c", Run: func(context.Context) Result { return warn("maybe", "odd") }},
		{Name: "d", Run: func(ctx context.Context) Result {
			if _, ok := ctx.Deadline(); !ok {
				return fail("", "no deadline")
			}
			return Result{Status: Skipped, Detail: "n/a"}
		}},
	}
	var out bytes.Buffer
	if n := Run(context.Background(), checks, time.Second, &out); n != 1 {
		t.Fatalf("Run = %d failures, want 1", n)
	}
	want := "OK    a       fine\n" +
		"FAIL  longer  broken across lines — fix: do this\n" +
		"WARN  c       odd — fix: maybe\n" +
		"SKIP  d       n/a\n"
	if out.String() != want {
		t.Fatalf("report:\n%s\nwant:\n%s", out.String(), want)
	}
}
