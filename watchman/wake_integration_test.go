//go:build integration

package watchman_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/watchman"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// connWatchMechanism returns the mechanism label of the connection_watch
// series of the container named name, "" if it has none.
func connWatchMechanism(t *testing.T, reg *prometheus.Registry, name string) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "heartwood_watchman_connection_watch" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["name"] == name && m.GetGauge().GetValue() == 1 {
				return labels["mechanism"]
			}
		}
	}
	return ""
}

// listenInode returns the inode of the socket listening on port in pid's
// network namespace (TCP, or UDP with udp).
func listenInode(t *testing.T, pid int, port uint16, udp bool) uint64 {
	t.Helper()
	files := []string{"tcp", "tcp6"}
	if udp {
		files = []string{"udp", "udp6"}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "net", f))
		if err != nil {
			continue
		}
		var ino uint64
		_ = procfs.ParseTCP(b, func(s procfs.Socket) {
			if s.Local.Port() == port && (udp || s.State == procfs.TCPListen) {
				ino = s.Inode
			}
		})
		if ino != 0 {
			return ino
		}
	}
	t.Fatalf("no socket on port %d in the namespace of pid %d", port, pid)
	return 0
}

// heldByTest counts this process's descriptors that refer to socket ino:
// the watchman's duplicates.
func heldByTest(t *testing.T, ino uint64) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	want := fmt.Sprintf("socket:[%d]", ino)
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && l == want {
			n++
		}
	}
	return n
}

func (e *env) pid(t *testing.T, id string) int {
	t.Helper()
	in, err := e.cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return in.State.Pid
}

// optedInHTTPD runs a busybox httpd serving body on port 8080, opted in,
// on the test's bridge network netName, and waits until it answers and
// the watchman tracks it. It returns its ID and address.
func (e *env) optedInHTTPD(t *testing.T, netName, name, body string) (id, addr string) {
	t.Helper()
	id = e.runSpec(t, testenv.Spec{Name: name,
		Config: &container.Config{Image: testenv.BusyboxImage,
			Labels: map[string]string{"heartwood.watchman.enable": "true"},
			Cmd:    []string{"sh", "-c", "mkdir -p /www && echo " + body + " > /www/index.html && exec httpd -f -p 8080 -h /www"}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(netName)}})
	addr = net.JoinHostPort(e.ip(t, id, netName), "8080")
	poll.UntilTrue(t, 10*time.Second, "httpd up", func() bool { _, _, err := httpGet(addr); return err == nil })
	e.waitTracked(t, id)
	return id, addr
}

func (e *env) waitTracked(t *testing.T, id string) {
	t.Helper()
	poll.UntilTrue(t, 10*time.Second, "watchman sees the container", func() bool {
		v := e.view(t, id)
		return v != nil && (v.State == watchman.StateActive || v.State == watchman.StateIdle)
	})
}

// TestIntegrationWakeOnConnectSocketEvents: with the default mechanism the
// watchman holds a duplicate of the paused httpd's listening socket (and
// nothing else of it), reports mechanism pidfd, wakes the container on a
// connection without polling, and closes the duplicate on the wake; the
// client gets its reply. An API wake of a paused container, and removing
// it, close the duplicate too.
func TestIntegrationWakeOnConnectSocketEvents(t *testing.T) {
	e := start(t, testConfig())
	netName := e.netFor(t)
	ctx := context.Background()
	// One container per way the watch ends: pausing again right after a
	// wake is TestIntegrationWakeOnConnect's job.
	for _, end := range []string{"connection", "api", "remove"} {
		t.Run(end, func(t *testing.T) {
			name := "wm-" + e.runID + "-ev" + end
			id, addr := e.optedInHTTPD(t, netName, name, "hello-events")
			ino := listenInode(t, e.pid(t, id), 8080, false)
			if err := e.w.Pause(ctx, id, "test"); err != nil {
				t.Fatal(err)
			}
			poll.UntilTrue(t, 10*time.Second, "connection watch by socket events", func() bool {
				return connWatchMechanism(t, e.reg, name) == watchman.MechanismEvents
			})
			if n := heldByTest(t, ino); n != 1 {
				t.Fatalf("the watchman holds %d duplicates of the listener, want 1", n)
			}
			switch end {
			case "connection":
				body, d, err := httpGet(addr)
				if err != nil || !strings.Contains(body, "hello-events") {
					t.Fatalf("GET: %v %q", err, body)
				}
				t.Logf("connect to reply %s", d)
				poll.UntilTrue(t, 10*time.Second, "wake finished", func() bool { return e.view(t, id).State == watchman.StateActive })
				wakes := e.sink.await(t, id, "wake", 1)
				if len(wakes) != 1 {
					t.Fatalf("%d wake events, want 1", len(wakes))
				}
				if ev := wakes[0]["heartwood"].(map[string]any)["watchman"].(map[string]any); ev["trigger"] != "connect" {
					t.Errorf("wake trigger %v", ev["trigger"])
				}
			case "api":
				if err := e.w.Wake(ctx, id, "test"); err != nil {
					t.Fatal(err)
				}
			case "remove":
				if err := e.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
					t.Fatal(err)
				}
			}
			poll.UntilTrue(t, 10*time.Second, "duplicate closed", func() bool { return heldByTest(t, ino) == 0 })
			poll.UntilTrue(t, 10*time.Second, "connection_watch series removed", func() bool { return connWatchMechanism(t, e.reg, name) == "" })
		})
	}
}

// TestIntegrationWakeOnDatagram: a datagram to a paused container's bound
// UDP socket wakes it, and the application receives that very datagram
// (the watchman never reads it): the echo comes back.
func TestIntegrationWakeOnDatagram(t *testing.T) {
	e := start(t, testConfig())
	img := testenv.GoImage(t, e.cli, "heartwood-test/udpecho:latest", filepath.Join("testdata", "udpecho"))
	netName := e.netFor(t)
	name := "wm-" + e.runID + "-udpecho"
	id := e.runSpec(t, testenv.Spec{Name: name,
		Config:     &container.Config{Image: img, Labels: map[string]string{"heartwood.watchman.enable": "true"}},
		HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(netName)}})
	addr := net.JoinHostPort(e.ip(t, id, netName), "9999")
	exchange := func(msg string, wait time.Duration) (string, time.Duration, error) {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return "", 0, err
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", 0, err
		}
		_ = c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 256)
		n, err := c.Read(buf)
		return string(buf[:n]), time.Since(start), err
	}
	poll.UntilTrue(t, 10*time.Second, "udpecho up", func() bool { _, _, err := exchange("ping", 200*time.Millisecond); return err == nil })
	e.waitTracked(t, id)
	ino := listenInode(t, e.pid(t, id), 9999, true)
	ctx := context.Background()
	if err := e.w.Pause(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 10*time.Second, "connection watch by socket events", func() bool {
		return connWatchMechanism(t, e.reg, name) == watchman.MechanismEvents
	})
	if n := heldByTest(t, ino); n != 1 {
		t.Fatalf("the watchman holds %d duplicates of the UDP socket, want 1", n)
	}
	got, d, err := exchange("wake-up-datagram", 10*time.Second)
	if err != nil || got != "echo: wake-up-datagram" {
		t.Fatalf("echo of the datagram sent while paused: %q, %v", got, err)
	}
	t.Logf("datagram to echo %s", d)
	poll.UntilTrue(t, 10*time.Second, "wake finished", func() bool { return e.view(t, id).State == watchman.StateActive })
	wakes := e.sink.await(t, id, "wake", 1)
	if len(wakes) != 1 {
		t.Fatalf("%d wake events, want 1", len(wakes))
	}
	ev := wakes[0]["heartwood"].(map[string]any)["watchman"].(map[string]any)
	if ev["trigger"] != "connect" {
		t.Errorf("wake trigger %v", ev["trigger"])
	}
	poll.UntilTrue(t, 10*time.Second, "duplicate closed after the wake", func() bool { return heldByTest(t, ino) == 0 })
}

// TestIntegrationWakeOnConnectPollingFallback: with wake-mechanism poll
// (what the watchman falls back to where socket events are unavailable)
// the watch holds no socket, reports mechanism poll, and a connection
// still wakes the container.
func TestIntegrationWakeOnConnectPollingFallback(t *testing.T) {
	cfg := testConfig()
	cfg.WakeMechanism = watchman.MechanismPoll
	e := start(t, cfg)
	name := "wm-" + e.runID + "-pollhttpd"
	id, addr := e.optedInHTTPD(t, e.netFor(t), name, "hello-poll")
	ino := listenInode(t, e.pid(t, id), 8080, false)
	ctx := context.Background()
	if err := e.w.Pause(ctx, id, "test"); err != nil {
		t.Fatal(err)
	}
	poll.UntilTrue(t, 10*time.Second, "connection watch by polling", func() bool {
		return connWatchMechanism(t, e.reg, name) == watchman.MechanismPoll
	})
	if n := heldByTest(t, ino); n != 0 {
		t.Fatalf("polling holds %d duplicates of the listener, want 0", n)
	}
	body, d, err := httpGet(addr)
	if err != nil || !strings.Contains(body, "hello-poll") {
		t.Fatalf("GET: %v %q", err, body)
	}
	t.Logf("connect to reply %s", d)
	poll.UntilTrue(t, 10*time.Second, "wake finished", func() bool { return e.view(t, id).State == watchman.StateActive })
	if n := len(e.sink.await(t, id, "wake", 1)); n != 1 {
		t.Fatalf("%d wake events, want 1", n)
	}
}

// TestIntegrationWakeMechanismInContainer runs the watchman in a container
// mounted as stack/heartwood.yml mounts the agent (testdata/wakeincontainer)
// and checks which mechanism it picks and that a connection wakes the
// paused target either way:
//   - in its own PID namespace (what a Swarm service gets: Swarm has no
//     PID mode), pidfd_open cannot name the target's processes: polling,
//     and the log says why;
//   - in the host's PID namespace without CAP_SYS_PTRACE, pidfd_getfd is
//     refused: polling, and the log says so;
//   - in the host's PID namespace with CAP_SYS_PTRACE: socket events.
func TestIntegrationWakeMechanismInContainer(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Busybox(t, cli)
	runID := testenv.RunID()
	t.Cleanup(func() { testenv.RemoveLabelled(t, cli, runID) })
	probe := testenv.GoImage(t, cli, "heartwood-test/watchman-wakeincontainer:latest", filepath.Join("testdata", "wakeincontainer"))
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		pid       container.PidMode
		caps      []string
		mechanism string
		logged    string
	}{
		{"own PID namespace", "", nil, watchman.MechanismPoll, "run the agent in the host's PID namespace"},
		{"host PID namespace without CAP_SYS_PTRACE", "host", nil, watchman.MechanismPoll, "the agent needs CAP_SYS_PTRACE"},
		{"host PID namespace with CAP_SYS_PTRACE", "host", []string{"SYS_PTRACE"}, watchman.MechanismEvents, "with socket events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := testenv.Run(t, cli, runID, testenv.Spec{Name: fmt.Sprintf("wm-wic-%s-%d", runID, len(tc.caps)+len(tc.pid)),
				Config: &container.Config{Image: testenv.BusyboxImage,
					Labels: map[string]string{"heartwood.watchman.enable": "true"},
					Cmd:    []string{"sh", "-c", "mkdir -p /www && echo hello-deployed > /www/index.html && exec httpd -f -p 8080 -h /www"}}})
			in, err := cli.ContainerInspect(ctx, target)
			if err != nil {
				t.Fatal(err)
			}
			addr := net.JoinHostPort(in.NetworkSettings.IPAddress, "8080")
			poll.UntilTrue(t, 10*time.Second, "httpd up", func() bool { _, _, err := httpGet(addr); return err == nil })
			id := testenv.Run(t, cli, runID, testenv.Spec{Name: fmt.Sprintf("wm-wic-probe-%s-%d", runID, len(tc.caps)+len(tc.pid)),
				Config:     &container.Config{Image: probe, Cmd: []string{target, addr}},
				HostConfig: agentLikeHostConfig(func(hc *container.HostConfig) { hc.PidMode, hc.CapAdd = tc.pid, tc.caps })})
			stdout := probeStdout(t, cli, id, waitProbe(t, cli, id))
			var res struct{ Mechanism, Log, Reply, State string }
			if err := json.Unmarshal(stdout, &res); err != nil {
				t.Fatalf("probe output %q: %v", stdout, err)
			}
			t.Logf("mechanism %s; watchman log:\n%s", res.Mechanism, res.Log)
			if res.Mechanism != tc.mechanism {
				t.Errorf("mechanism %q, want %q", res.Mechanism, tc.mechanism)
			}
			if !strings.Contains(res.Log, tc.logged) {
				t.Errorf("the log does not say %q", tc.logged)
			}
			if !strings.Contains(res.Reply, "hello-deployed") {
				t.Errorf("reply %q", res.Reply)
			}
			if res.State != watchman.StateActive {
				t.Errorf("target state %q after the reply, want active", res.State)
			}
		})
	}
}
