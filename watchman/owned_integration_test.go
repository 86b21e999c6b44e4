//go:build integration

package watchman_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/internal/poll"
	"github.com/heartwood-ops/heartwood/internal/testenv"
	"github.com/heartwood-ops/heartwood/watchman"
)

// frozenGet sends a request and reports whether an answer came within d.
func frozenGet(t *testing.T, addr string, d time.Duration) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		return false
	}
	b, _ := io.ReadAll(c)
	return strings.Contains(string(b), "hello-watchman")
}

// TestIntegrationOperatorPauseAndRestart: a container an operator paused
// with `docker pause` is woken neither by a connection nor by a plain wake,
// only by a forced one; a container the watchman paused is still its own
// after the watchman restarts on the same data directory, and a connection
// wakes it then.
func TestIntegrationOperatorPauseAndRestart(t *testing.T) {
	cli := testenv.Docker(t)
	testenv.Busybox(t, cli)
	e := &env{cli: cli, runID: testenv.RunID(), maint: &recMaintainer{}, sink: &recSink{}}
	t.Cleanup(func() { testenv.RemoveLabelled(t, cli, e.runID) })
	dataDir := t.TempDir()
	cfg := testConfig()
	stop := e.startInstance(t, cfg, nil, dataDir)
	netName := e.netFor(t)
	httpd := func(name string) (id, addr string) {
		id = e.runSpec(t, testenv.Spec{Name: "wm-" + e.runID + "-" + name,
			Config: &container.Config{Image: testenv.BusyboxImage,
				Labels: map[string]string{"heartwood.watchman.enable": "true"},
				Cmd:    []string{"sh", "-c", "mkdir -p /www && echo hello-watchman > /www/index.html && exec httpd -f -p 8080 -h /www"}},
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(netName)}})
		addr = net.JoinHostPort(e.ip(t, id, netName), "8080")
		poll.UntilTrue(t, 10*time.Second, name+" up", func() bool { _, _, err := httpGet(addr); return err == nil })
		return id, addr
	}
	opID, opAddr := httpd("operator")
	ownID, ownAddr := httpd("own")
	ctx := context.Background()
	paused := func(id string) bool {
		in, err := cli.ContainerInspect(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return in.State.Paused
	}
	stateIs := func(id, want string) func() (bool, string) {
		return func() (bool, string) {
			v := e.view(t, id)
			if v == nil {
				return false, "unknown"
			}
			return v.State == want, v.State
		}
	}
	poll.Until(t, 15*time.Second, "watchman sees both", func() (bool, string) {
		a, b := e.view(t, opID), e.view(t, ownID)
		return a != nil && b != nil && a.LastSample != nil && b.LastSample != nil, ""
	})

	// The operator pauses one; the watchman pauses the other.
	if err := cli.ContainerPause(ctx, opID); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "operator's pause seen", stateIs(opID, watchman.StatePausedExternal))
	if err := e.w.Pause(ctx, ownID, "test"); err != nil {
		t.Fatal(err)
	}

	// A connection does not wake the operator's container...
	if frozenGet(t, opAddr, 2*time.Second) {
		t.Fatal("a connection woke the container the operator paused")
	}
	if !paused(opID) {
		t.Fatal("the operator's container is no longer paused")
	}
	// ... nor does a plain wake.
	err := e.w.Wake(ctx, opID, watchman.TriggerAPI)
	if !errors.Is(err, watchman.ErrForceRequired) || !strings.Contains(err.Error(), "force") {
		t.Fatalf("plain wake of the operator's pause: %v", err)
	}
	if !paused(opID) {
		t.Fatal("a plain wake unpaused the operator's container")
	}

	// The watchman restarts on the same data directory.
	stop()
	e.startInstance(t, cfg, nil, dataDir)
	poll.Until(t, 15*time.Second, "own container still the watchman's after the restart", stateIs(ownID, watchman.StatePaused))
	poll.Until(t, 5*time.Second, "operator's container still not the watchman's", stateIs(opID, watchman.StatePausedExternal))
	if err := e.w.Wake(ctx, opID, watchman.TriggerAPI); !errors.Is(err, watchman.ErrForceRequired) {
		t.Fatalf("plain wake of the operator's pause after the restart: %v", err)
	}
	// A connection wakes the container the watchman paused before the
	// restart.
	body, _, err := httpGet(ownAddr)
	if err != nil || !strings.Contains(body, "hello-watchman") {
		t.Fatalf("GET of the watchman's paused container after the restart: %v %q", err, body)
	}
	poll.Until(t, 10*time.Second, "own container woken", stateIs(ownID, watchman.StateActive))
	if !paused(opID) {
		t.Fatal("the operator's container was unpaused along the way")
	}

	// Force unpauses the operator's container.
	if err := e.w.WakeWith(ctx, opID, watchman.WakeOptions{Trigger: watchman.TriggerCLI, Reason: "operator asked", Force: true}); err != nil {
		t.Fatal(err)
	}
	if paused(opID) {
		t.Fatal("a forced wake left the operator's container paused")
	}
	if !frozenGet(t, opAddr, 5*time.Second) {
		t.Error("no answer after the forced wake")
	}
}
