// Command wakeincontainer runs the watchman the way the agent's container
// runs it (the host's /proc and cgroup tree under /host, the Docker socket,
// the host network), pauses one target container that serves HTTP, reads
// which mechanism watches it for connections, connects to it and prints,
// as one JSON object, the mechanism, the reason the watchman logged for
// polling, and the reply.
//
//	wakeincontainer <container ID> <host:port>
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman"
)

// Result is what the probe prints.
type Result struct {
	Mechanism string `json:"mechanism"`
	Log       string `json:"log"` // the watchman's log lines
	Reply     string `json:"reply"`
	State     string `json:"state"` // the target's state after the reply
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "wakeincontainer:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 3 {
		return fmt.Errorf("usage: wakeincontainer <container ID> <host:port>")
	}
	target, addr := os.Args[1], os.Args[2]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	inv := inventory.New(cli, inventory.Options{})
	reg := prometheus.NewRegistry()
	cfg := watchman.DefaultConfig()
	cfg.ProcRoot = "/host/proc"
	cfg.CgroupRoot = "/host/sys/fs/cgroup"
	cfg.Interval = 500 * time.Millisecond
	cfg.KVPrefix = ""
	cfg.MinAge = 0
	w, err := watchman.New(cfg, watchman.Deps{Source: inv, Docker: cli, Registerer: reg, Logger: log})
	if err != nil {
		return err
	}
	go func() { _ = inv.Run(ctx) }()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	state := func() string {
		if v, _ := w.DescribeContainer(target).(*watchman.ContainerView); v != nil {
			return v.State
		}
		return ""
	}
	wait := func(what string, ok func() bool) error {
		for !ok() {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", what, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
		return nil
	}
	if err := wait("track the target", func() bool { s := state(); return s == watchman.StateActive || s == watchman.StateIdle }); err != nil {
		return err
	}
	if err := w.Pause(ctx, target, "probe"); err != nil {
		return err
	}
	var res Result
	if err := wait("connection watch", func() bool { res.Mechanism = mechanism(reg); return res.Mechanism != "" }); err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	b, err := io.ReadAll(c)
	c.Close()
	if err != nil {
		return err
	}
	res.Reply = string(b)
	_ = wait("wake finished", func() bool { return state() == watchman.StateActive })
	res.State = state()
	res.Log = logs.String()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// lockedBuffer is a bytes.Buffer the watchman's goroutines can log to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// mechanism is the mechanism label of the connection_watch series.
func mechanism(reg *prometheus.Registry) string {
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "heartwood_watchman_connection_watch" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "mechanism" {
					return l.GetValue()
				}
			}
		}
	}
	return ""
}
