//go:build integration

// Package utilization measures what writing utilization samples to
// Elasticsearch costs the agent at 100 containers.
package utilization

import (
	"bytes"

	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/bench/internal/hoststat"
	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

const containers = 100

// TestIntegrationUtilizationCost runs the real agent (watchman and shipper)
// against a private engine with 100 containers, once with utilization
// samples every 10s and once without, and reports the agent's CPU and the
// documents per hour.
func TestIntegrationUtilizationCost(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	cli := d.Client()
	esURL := testenv.RequireES(t)
	consul := testenv.RequireConsul(t)
	img := testenv.Busybox(t, cli)
	run := testenv.RunID()
	for i := range containers {
		testenv.Run(t, cli, run, testenv.Spec{Name: fmt.Sprintf("cost-%s-%d", run, i),
			Config: &container.Config{Image: img, Cmd: []string{"sleep", "3600"}}})
	}
	bin := filepath.Join(t.TempDir(), "heartwood")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/heartwood")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// Shared cluster: a priority no other test's overlapping template has.
	priority := 30000 + int(time.Now().UnixNano()%10000)*2
	measure := func(esInterval string) (cpu float64, docs int) {
		ns := "cost" + strings.ReplaceAll(esInterval, "s", "") + run
		listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		cmd := exec.Command(bin, "run", "--listen", listen, "--data-dir", t.TempDir(), "--docker-host", d.Host,
			"--consul-addr", consul, "--es-url", esURL, "--registrar.enabled=false",
			"--shipper.containers-root", d.ContainersRoot(), "--shipper.namespace", ns,
			"--shipper.template.name", "hwtest-cost-"+ns, "--shipper.template.patterns", "logs-*-"+ns,
			"--shipper.template.namespace", ns, "--shipper.template.priority", strconv.Itoa(priority),
			"--watchman.es-interval", esInterval, "--log-level", "warn")
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
		poll.Until(t, 2*time.Minute, "agent ready", func() (bool, string) {
			resp, err := http.Get("http://" + listen + "/readyz")
			if err != nil {
				return false, err.Error()
			}
			resp.Body.Close()
			return resp.StatusCode == 200, resp.Status + " " + logs.String()
		})
		time.Sleep(30 * time.Second) // warm up: first samples, template
		index := "metrics-heartwood.container-" + ns
		c0, n0 := procCPU(t, cmd.Process.Pid), count(esURL, index)
		const window = 60 * time.Second
		time.Sleep(window)
		c1, n1 := procCPU(t, cmd.Process.Pid), count(esURL, index)
		return (c1 - c0) / window.Seconds(), int(float64(n1-n0) * float64(time.Hour) / float64(window))
	}
	cpuOn, docsOn := measure("10s")
	cpuOff, docsOff := measure("0s")
	t.Logf("%d containers: es-interval 10s: agent CPU %.3f cores, %d utilization documents/hour; es-interval 0: CPU %.3f cores, %d documents/hour",
		containers, cpuOn, docsOn, cpuOff, docsOff)
	if docsOn < containers*360*8/10 || docsOff != 0 {
		t.Errorf("documents/hour: %d with samples (want about %d), %d without", docsOn, containers*360, docsOff)
	}
}

// procCPU returns the process's user+system CPU seconds.
func procCPU(t *testing.T, pid int) float64 {
	d, err := hoststat.ProcessCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	return d.Seconds()
}

func count(esURL, index string) int {
	http.Post(esURL+"/"+index+"/_refresh", "application/json", nil) //nolint:errcheck
	resp, err := http.Get(esURL + "/" + index + "/_count?ignore_unavailable=true")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var c struct{ Count int }
	_ = json.NewDecoder(resp.Body).Decode(&c)
	return c.Count
}
