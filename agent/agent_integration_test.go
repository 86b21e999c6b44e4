//go:build integration

package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/heartwood-ops/heartwood/agent"
	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

// startAgent runs an agent against dockerHost with every subsystem off and
// returns its API base URL.
func startAgent(t *testing.T, dockerHost string, tweak func(*agent.Config)) string {
	t.Helper()
	cfg := agent.DefaultConfig()
	cfg.DockerHost = dockerHost
	cfg.Listen = fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg.DataDir = t.TempDir()
	cfg.NodeName = "hwtest-" + testenv.RunID()
	disableSubsystems(&cfg)
	if tweak != nil {
		tweak(&cfg)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	a, err := agent.New(cfg, agent.BuildInfo{Version: "test", Revision: "test"}, logger)
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent.Run: %v", err)
		}
	})
	base := "http://" + cfg.Listen
	poll.Until(t, 90*time.Second, "agent ready", func() (bool, string) {
		code, body := get(base + "/readyz")
		return code == 200, body
	})
	return base
}

func get(url string) (int, string) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// dockerPSA renders `docker ps -a` as "id status" lines, sorted.
func dockerPSA(t *testing.T, cli *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, c.ID+" "+string(c.State))
	}
	sort.Strings(out)
	return out
}

// agentPSA renders GET /v1/containers the same way.
func agentPSA(base string) ([]string, error) {
	code, body := get(base + "/v1/containers")
	if code != 200 {
		return nil, fmt.Errorf("GET /v1/containers: %d %s", code, body)
	}
	var list []struct {
		ID    string `json:"id"`
		State struct {
			Status string `json:"status"`
		} `json:"state"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(list))
	for _, c := range list {
		out = append(out, c.ID+" "+c.State.Status)
	}
	sort.Strings(out)
	return out, nil
}

func TestIntegrationInventoryFollowsDockerdRestart(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	cli := d.Client()
	img := testenv.Busybox(t, cli)
	run := testenv.RunID()
	base := startAgent(t, d.Host, nil)

	for i := range 20 {
		hc := &container.HostConfig{}
		if i%2 == 0 {
			hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
		}
		testenv.Run(t, cli, run, testenv.Spec{Name: fmt.Sprintf("inv-%s-%d", run, i),
			Config: &container.Config{Image: img, Cmd: []string{"sleep", "3600"}}, HostConfig: hc})
	}
	poll.Until(t, 10*time.Second, "inventory has the 20 containers", func() (bool, string) {
		got, err := agentPSA(base)
		want := dockerPSA(t, cli)
		return err == nil && len(want) == 20 && strings.Join(got, "\n") == strings.Join(want, "\n"), fmt.Sprint(err, got)
	})

	d.Stop()
	d.Start()
	returned := time.Now()
	// Change the node right as the engine returns, before the agent has
	// reconnected: three new containers, two removed.
	ids := dockerPSA(t, cli)
	for i := range 3 {
		testenv.Run(t, cli, run, testenv.Spec{Name: fmt.Sprintf("inv-%s-new-%d", run, i),
			Config: &container.Config{Image: img, Cmd: []string{"sleep", "3600"}}})
	}
	for _, line := range ids[:2] {
		testenv.Remove(cli, strings.Fields(line)[0])
	}

	var got, want []string
	deadline := returned.Add(5 * time.Second)
	for {
		var err error
		got, err = agentPSA(base)
		want = dockerPSA(t, cli)
		if err == nil && strings.Join(got, "\n") == strings.Join(want, "\n") && len(want) == 21 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("inventory != docker ps -a 5s after dockerd returned (err %v)\ngot  %q\nwant %q", err, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("inventory equal to docker ps -a %s after dockerd returned", time.Since(returned).Round(time.Millisecond))
}

func TestIntegrationMetricsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not installed (apt-get install prometheus; `make services` does): %v", err)
	}
	cli := testenv.Docker(t)
	base := startAgent(t, testenv.DockerHost(), nil)
	_ = cli
	code, body := get(base + "/metrics")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, name := range []string{"heartwood_build_info{", "heartwood_inventory_containers{", "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewBufferString(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestIntegrationStatusAndContainerView(t *testing.T) {
	cli := testenv.Docker(t)
	img := testenv.Busybox(t, cli)
	run := testenv.RunID()
	id := testenv.Run(t, cli, run, testenv.Spec{Name: "view-" + run, Config: &container.Config{
		Image: img, Cmd: []string{"sleep", "3600"}, Env: []string{"SECRET_TOKEN=hunter2"},
	}})
	base := startAgent(t, testenv.DockerHost(), nil)
	poll.Until(t, 10*time.Second, "container visible", func() (bool, string) {
		code, body := get(base + "/v1/containers/view-" + run)
		return code == 200 && strings.Contains(body, id), body
	})
	_, body := get(base + "/v1/containers")
	if strings.Contains(body, "hunter2") {
		t.Fatal("/v1/containers exposes a container's environment")
	}
	code, body := get(base + "/v1/status")
	if code != 200 || !strings.Contains(body, `"connected": true`) {
		t.Fatalf("/v1/status = %d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", testenv.LabelTest+"="+run))})
	if err != nil || len(list) != 1 {
		t.Fatalf("docker ps: %v %d", err, len(list))
	}
}
