// Command incontainer runs the watchman the way the agent's container runs
// it (the host's /proc and cgroup tree mounted under /host, the Docker
// socket mounted) and prints, as one JSON object, what it measured of one
// target container: the test that starts it compares that with the host's
// own reading.
//
//	incontainer <target container ID>
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman"
)

// Result is what the probe prints.
type Result struct {
	Source      string             `json:"source"` // cgroup, or docker when the cgroup was not found
	SampleError string             `json:"sample_error,omitempty"`
	Metrics     map[string]float64 `json:"metrics"` // the target's container_* series
	IDLabel     string             `json:"id_label"`
	OwnCgroup   string             `json:"own_cgroup"` // this process's /proc/self/cgroup
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "incontainer:", err)
		os.Exit(1)
	}
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: incontainer <container ID>")
	}
	target := os.Args[1]
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return err
	}
	inv := inventory.New(cli, inventory.Options{})
	reg := prometheus.NewRegistry()
	cfg := watchman.DefaultConfig()
	cfg.ProcRoot = "/host/proc"
	cfg.CgroupRoot = "/host/sys/fs/cgroup"
	cfg.Interval = 500 * time.Millisecond
	cfg.KVPrefix = ""
	w, err := watchman.New(cfg, watchman.Deps{Source: inv, Docker: cli, Registerer: reg})
	if err != nil {
		return err
	}
	go func() { _ = inv.Run(ctx) }()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	var res Result
	for {
		v, _ := w.DescribeContainer(target).(*watchman.ContainerView)
		if v != nil && v.LastSample != nil {
			res.Source, res.SampleError = v.LastSample.Source, v.SampleError
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no sample of %s: %w", target, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		return err
	}
	res.Metrics = map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if !strings.HasSuffix(labels["id"], target) || !strings.HasPrefix(mf.GetName(), "container_") {
				continue
			}
			res.IDLabel = labels["id"]
			name := mf.GetName()
			if iface := labels["interface"]; iface != "" {
				name += "{" + iface + "}"
			}
			if cpu := labels["cpu"]; cpu != "" {
				name += "{" + cpu + "}"
			}
			switch {
			case m.GetCounter() != nil:
				res.Metrics[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				res.Metrics[name] = m.GetGauge().GetValue()
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		res.OwnCgroup = string(b)
	}
	cancel()
	<-done
	return json.NewEncoder(os.Stdout).Encode(res)
}
