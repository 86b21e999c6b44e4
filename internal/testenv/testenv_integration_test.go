//go:build integration

package testenv_test

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

func TestIntegrationProxyCutAndRestore(t *testing.T) {
	es := testenv.RequireES(t)
	p := testenv.NewProxy(t, es[len("http://"):])
	get := func() error {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Get("http://" + p.Addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil {
		t.Fatalf("through proxy: %v", err)
	}
	p.Cut()
	if err := get(); err == nil {
		t.Fatal("request succeeded through a cut proxy")
	}
	p.Restore()
	if err := get(); err != nil {
		t.Fatalf("after restore: %v", err)
	}
}

func TestIntegrationPrivateConsulRestart(t *testing.T) {
	c := testenv.StartPrivateConsul(t)
	c.Restart()
	conn, err := net.DialTimeout("tcp", c.Addr, time.Second)
	if err != nil {
		t.Fatalf("private consul after restart: %v", err)
	}
	conn.Close()
}

func TestIntegrationPrivateDockerdRunsBusybox(t *testing.T) {
	d := testenv.StartPrivateDockerd(t)
	cli := d.Client()
	img := testenv.Busybox(t, cli)
	id := testenv.Run(t, cli, testenv.RunID(), testenv.Spec{Config: &container.Config{Image: img, Cmd: []string{"sleep", "60"}}})
	d.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		t.Fatalf("inspect after restart: %v", err)
	}
	if got.State.Running {
		t.Fatalf("container without restart policy still running after dockerd restart")
	}
}
