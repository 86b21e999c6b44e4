package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			w.Write([]byte("ok"))
		case r.URL.Path == "/readyz" && ready.Load():
			w.Write([]byte("ready"))
		case r.URL.Path == "/readyz":
			http.Error(w, "docker: not connected", http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	tests := []struct {
		desc     string
		args     []string
		env      []string
		notReady bool
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{desc: "ready", args: []string{"--agent", addr}, wantOut: "/readyz ok"},
		{desc: "not ready", args: []string{"--agent", addr}, notReady: true, wantCode: 1, wantErr: "503 Service Unavailable: docker: not connected"},
		{desc: "live while not ready", args: []string{"--agent", addr, "--live"}, notReady: true, wantOut: "/healthz ok"},
		{desc: "address from HEARTWOOD_LISTEN, unspecified host", env: []string{"HEARTWOOD_LISTEN=0.0.0.0:" + port}, wantOut: "/readyz ok"},
		{desc: "empty host", args: []string{"--agent", ":" + port}, wantOut: "/readyz ok"},
		{desc: "no agent", args: []string{"--agent", "127.0.0.1:1"}, wantCode: 1, wantErr: "connection refused"},
		{desc: "bad address", args: []string{"--agent", "nowhere"}, wantCode: 2, wantErr: `agent address "nowhere"`},
		{desc: "stray argument", args: []string{"extra"}, wantCode: 2, wantErr: "usage: heartwood healthcheck"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			ready.Store(!tc.notReady)
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"healthcheck"}, tc.args...), tc.env, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit code = %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("stdout = %q, want %q", out.String(), tc.wantOut)
			}
			if !strings.Contains(errOut.String(), tc.wantErr) {
				t.Errorf("stderr = %q, want %q", errOut.String(), tc.wantErr)
			}
		})
	}
}

func TestProbeAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:9321":    "127.0.0.1:9321",
		"[::]:9321":       "[::1]:9321",
		":9321":           "127.0.0.1:9321",
		"10.0.0.5:9321":   "10.0.0.5:9321",
		"localhost:19321": "localhost:19321",
	} {
		if got, err := probeAddr(in); err != nil || got != want {
			t.Errorf("probeAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
