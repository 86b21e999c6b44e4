package main

import (
	"bytes"
	"context"
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
		{desc: "setup prints the alert rules", args: []string{"setup", "--alert-rules", "-"}, wantOut: []string{"alert: HeartwoodDockerDisconnected"}},
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
