package testenv

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// ConsulBinary returns the path of the Consul v1.14.0 binary that
// stack/dev/services.sh built, or $HEARTWOOD_CONSUL_BIN.
func ConsulBinary(t testing.TB) string {
	t.Helper()
	p := os.Getenv("HEARTWOOD_CONSUL_BIN")
	if p == "" {
		p = filepath.Join(envOr("HEARTWOOD_CACHE", "/var/cache/heartwood"), "consul-1.14.0", "consul")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("testenv: consul binary %s missing (run `make services` or set HEARTWOOD_CONSUL_BIN): %v", p, err)
	}
	return p
}

// PrivateConsul is a Consul dev agent of the test's own, on free loopback
// ports, that the test may stop and restart (a restart loses every
// registration, as a real dev agent's does). It is stopped at test end.
type PrivateConsul struct {
	// Addr is the host:port of its HTTP API.
	Addr string

	t     testing.TB
	bin   string
	node  string
	ports [4]int // http, server, serf lan, serf wan
	cmd   *exec.Cmd
	log   string
}

// StartPrivateConsul starts a private Consul dev agent and waits for its
// leader.
func StartPrivateConsul(t testing.TB) *PrivateConsul {
	t.Helper()
	c := &PrivateConsul{t: t, bin: ConsulBinary(t), node: "hwtest-" + RunID()}
	for i := range c.ports {
		c.ports[i] = FreePort(t)
	}
	c.Addr = "127.0.0.1:" + strconv.Itoa(c.ports[0])
	c.log = filepath.Join(t.TempDir(), "consul.log")
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// Start starts the agent if it is not running and waits for its leader.
func (c *PrivateConsul) Start() {
	c.t.Helper()
	if c.cmd != nil {
		return
	}
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatalf("testenv: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command(c.bin, "agent", "-dev", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-node", c.node, "-log-level", "warn",
		"-http-port", strconv.Itoa(c.ports[0]), "-server-port", strconv.Itoa(c.ports[1]),
		"-serf-lan-port", strconv.Itoa(c.ports[2]), "-serf-wan-port", strconv.Itoa(c.ports[3]),
		"-dns-port", "-1", "-grpc-port", "-1", "-hcl", "ports { grpc_tls = -1 }")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("testenv: start private consul: %v", err)
	}
	c.cmd = cmd
	if err := waitHTTP(30*time.Second, "http://"+c.Addr+"/v1/status/leader", func(body string) bool { return len(body) > 4 }); err != nil {
		b, _ := os.ReadFile(c.log)
		c.t.Fatalf("testenv: private consul did not come up: %v\n%s", err, b)
	}
}

// Stop stops the agent; its registrations are lost.
func (c *PrivateConsul) Stop() {
	if c.cmd == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// Restart stops and starts the agent.
func (c *PrivateConsul) Restart() {
	c.t.Helper()
	c.Stop()
	c.Start()
}

// PrivateDockerd is a Docker engine of the test's own (own data root, exec
// root, socket and bridge, no iptables), which the test may stop and restart
// without disturbing the shared engine. It shares the kernel and cgroups
// with the shared engine. It is stopped, and its data and bridge removed, at
// test end.
//
// Its default bridge is a Linux bridge of its own (hwd<random>, a /24 in
// 10.213.0.0/16): started with --bridge=none, dockerd would delete the shared
// engine's docker0 interface.
type PrivateDockerd struct {
	// Host is its endpoint, e.g. unix:///tmp/.../docker.sock.
	Host string

	t      testing.TB
	root   string
	bridge string
	cmd    *exec.Cmd
}

// StartPrivateDockerd starts a private dockerd and waits until it answers.
func StartPrivateDockerd(t testing.TB) *PrivateDockerd {
	t.Helper()
	root, err := os.MkdirTemp("/tmp", "hwdockerd-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	d := &PrivateDockerd{t: t, root: root, Host: "unix://" + filepath.Join(root, "docker.sock")}
	d.bridge = makeBridge(t)
	d.Start()
	t.Cleanup(func() {
		d.Stop()
		_ = os.RemoveAll(root)
		_ = exec.Command("ip", "link", "del", d.bridge).Run()
	})
	return d
}

// makeBridge creates a Linux bridge with a random 10.213.x.1/24 address.
func makeBridge(t testing.TB) string {
	t.Helper()
	id := RunID()
	name := "hwd" + id[:8]
	b, err := hex.DecodeString(id[8:10])
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	cmds := [][]string{
		{"ip", "link", "add", name, "type", "bridge"},
		{"ip", "addr", "add", fmt.Sprintf("10.213.%d.1/24", b[0]), "dev", name},
		{"ip", "link", "set", name, "up"},
	}
	for _, c := range cmds {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("testenv: %v: %v\n%s", c, err, out)
		}
	}
	return name
}

// Start starts the engine if it is not running and waits until it answers.
func (d *PrivateDockerd) Start() {
	d.t.Helper()
	if d.cmd != nil {
		return
	}
	logf, err := os.OpenFile(filepath.Join(d.root, "dockerd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatalf("testenv: %v", err)
	}
	defer logf.Close()
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(d.root, "data"),
		"--exec-root", filepath.Join(d.root, "exec"),
		"--pidfile", filepath.Join(d.root, "docker.pid"),
		"-H", d.Host, "--bridge", d.bridge, "--iptables=false", "--ip-masq=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("testenv: start private dockerd: %v", err)
	}
	d.cmd = cmd
	cli := d.client()
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Ping(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(d.root, "dockerd.log"))
			d.t.Fatalf("testenv: private dockerd did not answer: %v\n%s", err, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the engine (SIGTERM, as systemd would). Containers without a
// restart policy are stopped with it.
func (d *PrivateDockerd) Stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
}

// Restart stops and starts the engine.
func (d *PrivateDockerd) Restart() {
	d.t.Helper()
	d.Stop()
	d.Start()
}

// Client returns a new client for the engine, closed at test end.
func (d *PrivateDockerd) Client() *client.Client {
	d.t.Helper()
	cli := d.client()
	d.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func (d *PrivateDockerd) client() *client.Client {
	cli, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		d.t.Fatalf("testenv: docker client: %v", err)
	}
	return cli
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitHTTP(timeout time.Duration, url string, ok func(body string) bool) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			var buf [256]byte
			n, _ := resp.Body.Read(buf[:])
			_ = resp.Body.Close()
			if resp.StatusCode == 200 && ok(string(buf[:n])) {
				return nil
			}
			last = fmt.Errorf("%s: %s %q", url, resp.Status, buf[:n])
		} else {
			last = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return last
}

// ContainersRoot is the engine's containers directory, where its json-file
// logs live (<root>/<id>/<id>-json.log).
func (d *PrivateDockerd) ContainersRoot() string {
	return filepath.Join(d.root, "data", "containers")
}
