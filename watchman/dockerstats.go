package watchman

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/procfs"
)

// dockerSample fills s from Docker's one-shot stats.
func (w *Watchman) dockerSample(ctx context.Context, id string, s *Sample) error {
	resp, err := w.deps.Docker.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return fmt.Errorf("docker stats: %w", err)
	}
	defer resp.Body.Close()
	if err := parseDockerStats(resp.Body, s); err != nil {
		return err
	}
	s.At = w.now()
	return nil
}

// maxDockerStatsSize bounds a one-shot stats response (a few KiB in
// practice, more with many networks or block devices).
const maxDockerStatsSize = 1 << 20

// parseDockerStats decodes one Docker stats response into s.
func parseDockerStats(r io.Reader, s *Sample) error {
	var st container.StatsResponse
	dec := json.NewDecoder(io.LimitReader(r, maxDockerStatsSize))
	if err := dec.Decode(&st); err != nil {
		return fmt.Errorf("decode docker stats: %w", err)
	}
	statsFromDocker(&st, s)
	return nil
}

// statsFromDocker converts a Docker stats response into a Sample.
func statsFromDocker(st *container.StatsResponse, s *Sample) {
	s.FromDocker = true
	c := &s.Cgroup
	c.CPUUsage = st.CPUStats.CPUUsage.TotalUsage
	c.CPUUser = st.CPUStats.CPUUsage.UsageInUsermode
	c.CPUSystem = st.CPUStats.CPUUsage.UsageInKernelmode
	c.CFSPeriods = st.CPUStats.ThrottlingData.Periods
	c.CFSThrottled = st.CPUStats.ThrottlingData.ThrottledPeriods
	c.CFSThrottledTime = st.CPUStats.ThrottlingData.ThrottledTime
	c.MemoryUsage = st.MemoryStats.Usage
	c.MemoryLimit = st.MemoryStats.Limit
	inactive := st.MemoryStats.Stats["total_inactive_file"]
	if v, ok := st.MemoryStats.Stats["inactive_file"]; ok && inactive == 0 {
		inactive = v
	}
	c.MemoryInactiveFile = inactive
	if inactive < c.MemoryUsage {
		c.MemoryWorkingSet = c.MemoryUsage - inactive
	}
	c.MemoryRSS = st.MemoryStats.Stats["total_rss"] + st.MemoryStats.Stats["anon"]
	c.MemoryCache = st.MemoryStats.Stats["total_cache"] + st.MemoryStats.Stats["file"]
	c.Pids = st.PidsStats.Current
	c.PidsMax = st.PidsStats.Limit
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		found := false
		for i := range c.BlkIO {
			if uint64(c.BlkIO[i].Major) == e.Major && uint64(c.BlkIO[i].Minor) == e.Minor {
				addBlk(&c.BlkIO[i].ReadBytes, &c.BlkIO[i].WriteBytes, e.Op, e.Value)
				found = true
				break
			}
		}
		if !found {
			c.BlkIO = append(c.BlkIO, blkDev(e.Major, e.Minor))
			addBlk(&c.BlkIO[len(c.BlkIO)-1].ReadBytes, &c.BlkIO[len(c.BlkIO)-1].WriteBytes, e.Op, e.Value)
		}
	}
	s.Net = s.Net[:0]
	for name, n := range st.Networks {
		s.Net = append(s.Net, procfs.Iface{Name: name, RxBytes: n.RxBytes, RxPackets: n.RxPackets,
			RxErrors: n.RxErrors, RxDrops: n.RxDropped, TxBytes: n.TxBytes, TxPackets: n.TxPackets,
			TxErrors: n.TxErrors, TxDrops: n.TxDropped})
	}
	s.HasNet = len(st.Networks) > 0
}

func blkDev(major, minor uint64) cgroup.BlkDev {
	return cgroup.BlkDev{Major: uint32(major), Minor: uint32(minor)}
}

func addBlk(read, write *uint64, op string, v uint64) {
	switch strings.ToLower(op) {
	case "read":
		*read += v
	case "write":
		*write += v
	}
}
