package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/dashboards/kibanatest"
)

func runCmd(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, env, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestSetupKibana: the first run imports, the second changes nothing and
// says so; the API key comes from a file named in the environment.
func TestSetupKibana(t *testing.T) {
	srv := kibanatest.New(t)
	srv.APIKey = "secret-key"
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("secret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rules := filepath.Join(t.TempDir(), "heartwood.rules.yml")
	env := []string{"KIBANA_API_KEY_FILE=" + keyFile}
	args := []string{"setup", "--templates=false", "--kibana-url", srv.URL, "--alert-rules", rules}

	code, out, errOut := runCmd(t, env, append(args, "--dry-run")...)
	if code != 0 || !strings.Contains(out, "would import") || !strings.Contains(out, "would write") || srv.Imports() != 0 {
		t.Fatalf("dry run: code %d, imports %d\n%s%s", code, srv.Imports(), out, errOut)
	}
	if _, err := os.Stat(rules); err == nil {
		t.Fatal("dry run wrote the rules file")
	}
	code, out, errOut = runCmd(t, env, args...)
	if code != 0 || srv.Imports() != 1 || !strings.Contains(out, "[1/3] "+rules+": written") ||
		!strings.Contains(out, "[2/3] Kibana "+srv.URL+": ready, Kibana 8.15.0") || !strings.Contains(out, "[3/3] Kibana saved objects: imported") {
		t.Fatalf("first run: code %d, imports %d\n%s%s", code, srv.Imports(), out, errOut)
	}
	code, out, errOut = runCmd(t, env, args...)
	if code != 0 || srv.Imports() != 1 || !strings.Contains(out, "nothing to change") || strings.Contains(out, "imported") {
		t.Fatalf("second run: code %d, imports %d\n%s%s", code, srv.Imports(), out, errOut)
	}
	if v := srv.Violations(); len(v) > 0 {
		t.Fatalf("requests Kibana would reject: %v", v)
	}
	if strings.Contains(out+errOut, "secret-key") {
		t.Fatal("the API key was printed")
	}
}

func TestSetupErrorsNameTheFlag(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><head><title>Sign in</title></head><body>proxy login</body></html>"))
	}))
	defer html.Close()
	srv := kibanatest.New(t)
	srv.APIKey = "right"
	tests := []struct {
		desc     string
		args     []string
		wantCode int
		want     []string
	}{
		{"not a URL", []string{"--kibana-url", "notaurl"}, 2, []string{`--kibana-url "notaurl"`, "want an http:// or https:// URL"}},
		{"no scheme", []string{"--kibana-url", "kibana:5601"}, 2, []string{"--kibana-url", "https://kibana:5601"}},
		{"a web page, not Kibana", []string{"--kibana-url", html.URL, "--wait", "5s"}, 1, []string{"not Kibana", "check --kibana-url", "text/html"}},
		{"wrong key", []string{"--kibana-url", srv.URL, "--kibana-api-key", "wrong"}, 1, []string{"401", "check --kibana-api-key"}},
		{"missing CA file", []string{"--kibana-url", "https://kibana:5601", "--kibana-ca-file", "/nonexistent/ca.pem"}, 2, []string{"--kibana-ca-file", "no such file"}},
		{"key file missing", []string{"--kibana-url", srv.URL, "--kibana-api-key-file", "/nonexistent/key"}, 2, []string{"--kibana-api-key-file", "no such file"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			code, out, errOut := runCmd(t, nil, append([]string{"setup", "--templates=false"}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("code %d, want %d\n%s%s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut, "<html") || strings.Contains(errOut, "proxy login") || strings.Contains(errOut, "unsupported protocol scheme") || strings.Count(errOut, "\n") > 2 {
				t.Errorf("stderr is not one clear line:\n%s", errOut)
			}
		})
	}
}

func TestSetupExport(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "assets")
	code, out, errOut := runCmd(t, nil, "setup", "--export", dir)
	if code != 0 {
		t.Fatalf("code %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{"kibana/heartwood.ndjson", "prometheus/heartwood.rules.yml", "prometheus/heartwood.rules.test.yml", "prometheus/grafana-heartwood.json", "prometheus/prometheus.yml", "elasticsearch/index_template/heartwood-logs.json", "elasticsearch/component_template/heartwood@base.json"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	if code, _, _ := runCmd(t, nil, "setup", "-h"); code != 0 {
		t.Errorf("setup -h exit code %d, want 0", code)
	}
}

// TestHelpAndBadFlags: -h exits 0 for every command; a bad value prints
// the error and a one-line hint, not every setting; config check prints the
// node name the agent will use.
func TestHelpAndBadFlags(t *testing.T) {
	for _, args := range [][]string{{"run", "-h"}, {"config", "check", "-h"}, {"setup", "-h"}, {"doctor", "-h"},
		{"ps", "-h"}, {"pause", "-h"}, {"wake", "-h"}, {"-h"}, {"version"}} {
		if code, _, errOut := runCmd(t, nil, args...); code != 0 {
			t.Errorf("%v: exit %d\n%s", args, code, errOut)
		}
	}
	code, out, errOut := runCmd(t, nil, "run", "--watchman.pressure", "abc")
	if code != 2 || strings.Count(errOut, "\n") > 2 || !strings.Contains(errOut, "watchman.pressure") ||
		!strings.Contains(errOut, "run `heartwood run -h` for the settings") {
		t.Errorf("bad flag: exit %d, %d lines:\n%s%s", code, strings.Count(errOut, "\n"), out, errOut)
	}
	host, _ := os.Hostname()
	code, out, _ = runCmd(t, nil, "config", "check")
	if code != 0 || !strings.Contains(out, "node-name: "+host) && !strings.Contains(out, `node-name: "`+host+`"`) {
		t.Errorf("config check does not show the node name %q:\n%s", host, out)
	}
}
