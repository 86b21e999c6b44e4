//go:build integration

package watchman_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// probeResult is what testdata/incontainer prints.
type probeResult struct {
	Source      string             `json:"source"`
	SampleError string             `json:"sample_error"`
	Metrics     map[string]float64 `json:"metrics"`
	IDLabel     string             `json:"id_label"`
	OwnCgroup   string             `json:"own_cgroup"`
}

// TestIntegrationWatchmanInContainer runs the watchman inside a container
// set up as stack/heartwood.yml sets up the agent (the host's /proc at
// /host/proc and /sys/fs/cgroup at /host/sys/fs/cgroup, both read-only, the
// Docker socket, the host network), once in the host's cgroup namespace
// and once in a private one, where the kernel shows other containers'
// cgroups as /../<id>. In both, the watchman must find the target's cgroup
// and network namespace (not fall back to Docker stats) and report what the
// host itself reads.
func TestIntegrationWatchmanInContainer(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Busybox(t, cli)
	runID := testenv.RunID()
	t.Cleanup(func() { testenv.RemoveLabelled(t, cli, runID) })
	probe := testenv.GoImage(t, cli, "heartwood-test/watchman-incontainer:latest", filepath.Join("testdata", "incontainer"))
	pids := int64(50)
	target := testenv.Run(t, cli, runID, testenv.Spec{Name: "wm-ic-target-" + runID,
		Config:     &container.Config{Image: testenv.BusyboxImage, Cmd: []string{"sleep", "3600"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, PidsLimit: &pids}}})
	ctx := context.Background()
	in, err := cli.ContainerInspect(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	pid := in.State.Pid

	for _, mode := range []container.CgroupnsMode{"host", "private"} {
		t.Run("cgroupns="+string(mode), func(t *testing.T) {
			id := testenv.Run(t, cli, runID, testenv.Spec{Name: "wm-ic-" + string(mode) + "-" + runID,
				Config:     &container.Config{Image: probe, Cmd: []string{target}},
				HostConfig: agentLikeHostConfig(func(hc *container.HostConfig) { hc.CgroupnsMode = mode })})
			exit := waitProbe(t, cli, id)
			// The host's own readings, right after the probe's.
			hostCPU := readUint(t, filepath.Join(cgroupRoot, "cpuacct", "docker", target, "cpuacct.usage"))
			hostMem := readUint(t, filepath.Join(cgroupRoot, "memory", "docker", target, "memory.usage_in_bytes"))
			hostRx := hostNetRx(t, pid, "eth0")

			stdout := probeStdout(t, cli, id, exit)
			var res probeResult
			if err := json.Unmarshal(stdout, &res); err != nil {
				t.Fatalf("probe output %q: %v", stdout, err)
			}
			t.Logf("probe: source %s, id %s, metrics %v", res.Source, res.IDLabel, res.Metrics)

			// The probe really ran in the namespace asked for.
			ownRoot := strings.Contains(res.OwnCgroup, "cpuacct:/\n")
			if (mode == "private") != ownRoot {
				t.Fatalf("probe's own cgroup in mode %s:\n%s", mode, res.OwnCgroup)
			}
			if res.Source != "cgroup" {
				t.Fatalf("the watchman in the container read the target through %q (%s), not its cgroup", res.Source, res.SampleError)
			}
			if want := "/docker/" + target; res.IDLabel != want {
				t.Errorf("id label %q, want %q", res.IDLabel, want)
			}
			m := res.Metrics
			if got := m["container_spec_memory_limit_bytes"]; got != 64<<20 {
				t.Errorf("memory limit %v, want %d", got, 64<<20)
			}
			if got := m["container_threads_max"]; got != 50 {
				t.Errorf("threads max %v, want 50", got)
			}
			if got := m["container_threads"]; got != 1 {
				t.Errorf("threads %v, want 1", got)
			}
			// An idle sleep: its CPU time hardly moves between the two
			// readings, its memory neither.
			if got, want := m["container_cpu_usage_seconds_total{total}"], float64(hostCPU)/1e9; got > want || want-got > 0.05 {
				t.Errorf("CPU %.6f s, host %.6f s", got, want)
			}
			if got, want := m["container_memory_usage_bytes"], float64(hostMem); math.Abs(got-want) > 1<<20 {
				t.Errorf("memory %v, host %v", got, want)
			}
			// /proc/<pid>/net/dev of the target's namespace, through the
			// host's /proc.
			if got, want := m["container_network_receive_bytes_total{eth0}"], float64(hostRx); got > want || want-got > 64<<10 {
				t.Errorf("eth0 receive bytes %v, host %v", got, want)
			}
		})
	}
}

func readUint(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hostNetRx(t *testing.T, pid int, iface string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "net", "dev"))
	if err != nil {
		t.Fatal(err)
	}
	ifs, err := procfs.ParseNetDev(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Name == iface {
			return i.RxBytes
		}
	}
	t.Fatalf("no %s in the target's net/dev", iface)
	return 0
}

// agentLikeHostConfig is a probe container's host configuration as
// stack/heartwood.yml sets up the agent: the host network, the Docker
// socket, the host's /proc and cgroup tree under /host, read-only. mod
// adjusts it.
func agentLikeHostConfig(mod func(*container.HostConfig)) *container.HostConfig {
	hc := &container.HostConfig{
		NetworkMode: "host",
		Binds: []string{
			"/var/run/docker.sock:/var/run/docker.sock",
			"/proc:/host/proc:ro",
			"/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
		},
	}
	if mod != nil {
		mod(hc)
	}
	return hc
}

// waitProbe waits (3 minutes at most) for the probe container id to exit
// and returns its exit code.
func waitProbe(t *testing.T, cli *client.Client, id string) int64 {
	t.Helper()
	wctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	waitC, errC := cli.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	select {
	case st := <-waitC:
		return st.StatusCode
	case err := <-errC:
		t.Fatalf("wait for the probe: %v", err)
	}
	return -1
}

// probeStdout returns what the probe container id printed; it fails the
// test, with everything the probe printed, if exit is not 0.
func probeStdout(t *testing.T, cli *client.Client, id string, exit int64) []byte {
	t.Helper()
	logs, err := cli.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	var stdout, stderr bytes.Buffer
	if _, err := stdcopy.StdCopy(&stdout, &stderr, logs); err != nil {
		t.Fatal(err)
	}
	if exit != 0 {
		t.Fatalf("probe exited %d: %s%s", exit, stderr.String(), stdout.String())
	}
	return stdout.Bytes()
}
