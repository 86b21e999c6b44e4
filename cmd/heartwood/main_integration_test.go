//go:build integration

package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// TestIntegrationBinaryShutsDownOnSIGTERM builds the real binary, runs it
// against the real Docker engine and checks that SIGTERM ends it cleanly and
// quickly.
func TestIntegrationBinaryShutsDownOnSIGTERM(t *testing.T) {
	testenv.Docker(t)
	bin := filepath.Join(t.TempDir(), "heartwood")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cmd := exec.Command(bin, "run", "--listen", listen, "--data-dir", t.TempDir(),
		"--docker-host", testenv.DockerHost(), "--shutdown-timeout", "5s",
		"--registrar.enabled=false", "--shipper.enabled=false", "--watchman.enabled=false")
	logPath := filepath.Join(t.TempDir(), "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("agent not ready within 90s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, log)
		}
		t.Logf("clean exit %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("agent still running 10s after SIGTERM")
	}
}
