//go:build integration

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := startAgent(t, "--listen", listen,
		"--registrar.enabled=false", "--shipper.enabled=false", "--watchman.enabled=false")
	p.waitReady(t, listen)
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("agent exited with %v after SIGTERM:\n%s", err, p.log())
		}
		t.Logf("clean exit %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("agent still running 10s after SIGTERM")
	}
}

// TestIntegrationMakeBuildStampsVersion: `make build` stamps the binary with
// the exact release tag of HEAD or, without one, the VERSION file.
func TestIntegrationMakeBuildStampsVersion(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command("git", "-C", root, "describe", "--tags", "--exact-match").Output()
	if err != nil {
		want, err = os.ReadFile(filepath.Join(root, "VERSION"))
		if err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "heartwood")
	if out, err := exec.Command("make", "-s", "-C", root, "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if got, w := string(out), fmt.Sprintf("heartwood %s (%s)\n", strings.TrimSpace(string(want)), strings.TrimSpace(string(rev))); got != w {
		t.Errorf("heartwood version = %q, want %q", got, w)
	}
}
