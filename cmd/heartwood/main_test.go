package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	tests := []struct {
		desc       string
		args, env  []string
		wantCode   int
		wantOut    []string
		wantErr    []string
		notInOuput []string
	}{
		{desc: "no command", wantCode: 2, wantErr: []string{"usage: heartwood"}},
		{desc: "unknown command", args: []string{"frobnicate"}, wantCode: 2, wantErr: []string{`unknown command "frobnicate"`}},
		{desc: "version", args: []string{"version"}, wantOut: []string{"heartwood dev"}},
		{desc: "config check defaults", args: []string{"config", "check"}, wantOut: []string{`listen: "127.0.0.1:9321"`, "registrar:", "shipper:", "watchman:"}},
		{desc: "config check redacts secrets", args: []string{"config", "check", "--es-api-key", "c2VjcmV0"},
			env: []string{"CONSUL_HTTP_TOKEN=tok-123"}, wantOut: []string{"es-api-key: <redacted>", "consul-token: <redacted>"}, notInOuput: []string{"c2VjcmV0", "tok-123"}},
		{desc: "bad values name the setting", args: []string{"config", "check", "--log-level", "loud", "--listen", "0.0.0.0:9321"},
			wantCode: 2, wantErr: []string{"log-level: want debug, info, warn or error", "listen: 0.0.0.0:9321 is reachable from other hosts"}},
		{desc: "memory limit too small", args: []string{"config", "check", "--memory-limit", "1MiB"},
			wantCode: 2, wantErr: []string{"memory-limit: want 0 (off) or at least 16MiB, got 1MiB"}},
		{desc: "bad env", args: []string{"config", "check"}, env: []string{"HEARTWOOD_REGISTRAR_RECONCILE_INTERVAL=often"},
			wantCode: 2, wantErr: []string{"HEARTWOOD_REGISTRAR_RECONCILE_INTERVAL (registrar.reconcile-interval): want a duration"}},
		{desc: "unknown flag", args: []string{"run", "--no-such-flag"}, wantCode: 2, wantErr: []string{"flag provided but not defined: -no-such-flag"}},
		{desc: "disabled subsystem's settings are not checked", args: []string{"config", "check", "--watchman.enabled=false", "--watchman.interval=-1s"}, wantOut: []string{"enabled: false"}},
		{desc: "pause needs a name", args: []string{"pause"}, wantCode: 2, wantErr: []string{"usage: heartwood pause"}},
		{desc: "setup with nothing to do", args: []string{"setup", "--templates=false"}, wantCode: 2, wantErr: []string{"nothing to do"}},
		{desc: "setup prints the alert rules", args: []string{"setup", "--templates=false", "--alert-rules", "-"}, wantOut: []string{"alert: HeartwoodDockerDisconnected"}},
		{desc: "config check redacts es-url credentials", args: []string{"config", "check", "--es-url", "https://elastic:pw-9f8e7d@es1:9200"},
			wantOut: []string{"https://redacted@es1:9200"}, notInOuput: []string{"pw-9f8e7d", "elastic:"}},
		{desc: "invalid es-url errors redact credentials", args: []string{"config", "check", "--es-url", "ftp://elastic:pw-9f8e7d@es1"},
			wantCode: 2, wantErr: []string{"es-url: want http(s)://host:port", "ftp://redacted@es1"}, notInOuput: []string{"pw-9f8e7d"}},
		{desc: "inline and file API keys exclude each other", args: []string{"config", "check", "--es-api-key", "c2VjcmV0", "--es-api-key-file", "main_test.go"},
			wantCode: 2, wantErr: []string{"es-api-key-file: set either es-api-key or es-api-key-file"}},
		{desc: "short API token refused", args: []string{"config", "check", "--api-token", "short"},
			wantCode: 2, wantErr: []string{"api-token: is shorter than 16 bytes"}, notInOuput: []string{"short\n"}},
		{desc: "ps without an agent", args: []string{"ps", "--agent", "127.0.0.1:1"}, wantCode: 1, wantErr: []string{"is the agent running at 127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tc.args, tc.env, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			for _, n := range tc.notInOuput {
				if strings.Contains(out.String()+errOut.String(), n) {
					t.Errorf("output contains %q", n)
				}
			}
		})
	}
}

func TestClientSendsWhatTheAPIRequires(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		_, _ = io.WriteString(w, `{"name":"web","result":"woken"}`)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"wake", "--agent", addr, "--force", "--token", "0123456789abcdef", "web"}, nil, &out, &errOut)
	if code != 0 {
		t.Fatalf("wake exit %d: %s", code, errOut.String())
	}
	if got.Method != http.MethodPost || got.URL.Path != "/v1/containers/web/wake" || got.URL.Query().Get("force") != "true" {
		t.Errorf("request = %s %s, want POST /v1/containers/web/wake?force=true", got.Method, got.URL)
	}
	if got.Header.Get("X-Heartwood-Request") == "" {
		t.Error("the CLI did not send X-Heartwood-Request")
	}
	if a := got.Header.Get("Authorization"); a != "Bearer 0123456789abcdef" {
		t.Errorf("Authorization = %q", a)
	}
	if code := run(context.Background(), []string{"pause", "--agent", addr, "--force", "web"}, nil, &out, &errOut); code != 2 {
		t.Errorf("pause --force: exit %d, want 2", code)
	}
}
