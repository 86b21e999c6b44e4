//go:build integration

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/go-connections/nat"
	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// heartwoodBinary builds the binary once per test run.
func heartwoodBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "heartwood-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "heartwood")
		build := exec.Command("go", "build", "-o", binPath, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// agentProcess is the real binary running against the real engine.
type agentProcess struct {
	cmd     *exec.Cmd
	logPath string
	done    chan error
}

func (p *agentProcess) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// startAgent runs `heartwood run` with args.
func startAgent(t *testing.T, args ...string) *agentProcess {
	t.Helper()
	bin := heartwoodBinary(t)
	p := &agentProcess{logPath: filepath.Join(t.TempDir(), "agent.log"), done: make(chan error, 1)}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logf.Close() })
	p.cmd = exec.Command(bin, append([]string{"run", "--data-dir", t.TempDir(), "--docker-host", testenv.DockerHost(), "--shutdown-timeout", "5s"}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitReady waits until the agent at listen answers /readyz with 200.
func (p *agentProcess) waitReady(t *testing.T, listen string) {
	t.Helper()
	poll.Until(t, 90*time.Second, "agent ready", func() (bool, string) {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("agent exited (%v) before it was ready:\n%s", err, p.log())
		default:
		}
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

func call(t *testing.T, method, url string, header map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestIntegrationEmptyTokenFileRefusesToStart: an empty, blank or short
// token file stops the real binary before it listens.
func TestIntegrationEmptyTokenFileRefusesToStart(t *testing.T) {
	testenv.Docker(t)
	for _, content := range []string{"", " \n\t\n", "short\n"} {
		tokenFile := filepath.Join(t.TempDir(), "token")
		writeFile(t, tokenFile, content)
		listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		p := startAgent(t, "--listen", listen, "--api-token-file", tokenFile,
			"--registrar.enabled=false", "--shipper.enabled=false", "--watchman.enabled=false")
		select {
		case err := <-p.done:
			p.done <- err
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("token file %q: exit %v, want exit status 2\n%s", content, err, p.log())
			}
			if !strings.Contains(p.log(), "api-token-file: "+tokenFile) {
				t.Errorf("token file %q: the error does not name the file:\n%s", content, p.log())
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("token file %q: agent still running after 30s:\n%s", content, p.log())
		}
	}
}

// TestIntegrationTokenFileEmptiedWhileRunning: once the token file is
// emptied, mutating calls are refused whatever they carry, and the problem
// is logged once.
func TestIntegrationTokenFileEmptiedWhileRunning(t *testing.T) {
	testenv.Docker(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	const token = "integration-token-0123456789"
	writeFile(t, tokenFile, token+"\n")
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := startAgent(t, "--listen", listen, "--api-token-file", tokenFile,
		"--registrar.enabled=false", "--shipper.enabled=false", "--watchman.enabled=false")
	p.waitReady(t, listen)
	url := "http://" + listen + "/v1/containers/heartwood-no-such-container/pause"
	marker := map[string]string{"X-Heartwood-Request": "1"}
	withToken := map[string]string{"X-Heartwood-Request": "1", "Authorization": "Bearer " + token}

	if code, body := call(t, "POST", url, marker); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d %s, want 401", code, body)
	}
	// With the token the call gets past authentication (the watchman is
	// off, so it ends there).
	if code, body := call(t, "POST", url, withToken); code != http.StatusServiceUnavailable || !strings.Contains(body, "watchman is disabled") {
		t.Fatalf("valid token: %d %s, want the watchman's 503", code, body)
	}
	for _, content := range []string{"", "  \n", "short"} {
		writeFile(t, tokenFile, content)
		for _, h := range []map[string]string{marker, withToken, {"X-Heartwood-Request": "1", "Authorization": "Bearer "}} {
			for range 3 {
				code, body := call(t, "POST", url, h)
				if code != http.StatusServiceUnavailable || !strings.Contains(body, "API token is unusable") {
					t.Fatalf("token file %q, headers %v: %d %s, want 503 naming the token", content, h, code, body)
				}
			}
		}
	}
	// Reads stay open on loopback.
	if code, body := call(t, "GET", "http://"+listen+"/v1/containers", nil); code != http.StatusOK {
		t.Errorf("GET /v1/containers = %d %s", code, body)
	}
	log := p.log()
	// One line per distinct problem (empty, then short), not per request.
	if n := strings.Count(log, "API token unusable"); n != 2 {
		t.Errorf("logged the token problem %d times, want 2 (once per change):\n%s", n, log)
	}
	writeFile(t, tokenFile, token)
	if code, body := call(t, "POST", url, withToken); code != http.StatusServiceUnavailable || !strings.Contains(body, "watchman is disabled") {
		t.Errorf("restored token: %d %s, want the watchman's 503", code, body)
	}
}

// TestIntegrationContainersHideSecrets runs a container holding secrets in
// a SERVICE_CHECKS header, a HEALTHCHECK and a log option, and reads it back
// through the real binary's API with the registrar on.
func TestIntegrationContainersHideSecrets(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.RequireConsul(t)
	img := testenv.Busybox(t, cli)
	runID := testenv.RunID()
	name := "hw-secrets-" + runID
	secrets := []string{"hdr-secret-51f2", "hc-secret-77ab", "logopt-secret-c3d9", "env-secret-9e01"}
	id := testenv.Run(t, cli, runID, testenv.Spec{
		Name: name,
		Config: &container.Config{
			Image: img,
			Cmd:   []string{"sleep", "300"},
			Env:   []string{"API_KEY=" + secrets[3]},
			Labels: map[string]string{
				"SERVICE_NAME":   "hw-secrets-" + runID,
				"SERVICE_CHECKS": `[{"id":"ready","http":"/ready","interval":"30s","header":{"Authorization":["Bearer ` + secrets[0] + `"]}}]`,
			},
			ExposedPorts: map[nat.Port]struct{}{"8080/tcp": {}},
			Healthcheck:  &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -u user:" + secrets[1] + " http://localhost/ || true"}, Interval: time.Minute},
		},
		HostConfig: &container.HostConfig{
			PortBindings: nat.PortMap{"8080/tcp": {{HostIP: "127.0.0.1", HostPort: ""}}},
			LogConfig:    container.LogConfig{Type: "json-file", Config: map[string]string{"tag": secrets[2]}},
		},
	})
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	p := startAgent(t, "--listen", listen, "--consul-addr", testenv.ConsulAddr(), "--node-name", "hw-secrets-"+runID,
		"--shipper.enabled=false", "--watchman.enabled=false")
	p.waitReady(t, listen)
	var list, one string
	poll.Until(t, 60*time.Second, "container listed with the registrar's view", func() (bool, string) {
		var code int
		code, list = call(t, "GET", "http://"+listen+"/v1/containers", nil)
		return code == 200 && strings.Contains(list, id) && strings.Contains(list, `"headers"`), list
	})
	code, one := call(t, "GET", "http://"+listen+"/v1/containers/"+name, nil)
	if code != 200 {
		t.Fatalf("GET /v1/containers/%s = %d %s", name, code, one)
	}
	for _, out := range []string{list, one} {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the API exposes %q:\n%s", s, out)
			}
		}
		for _, want := range []string{`"SERVICE_CHECKS"`, `"healthcheck": true`, `"log_driver": "json-file"`} {
			if !strings.Contains(out, want) {
				t.Errorf("the API lacks %s:\n%s", want, out)
			}
		}
	}
}
