package watchman

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/watchman/cgroup"
	"github.com/heartwood-ops/heartwood/watchman/gpu"
)

// Container labels, as cAdvisor names them, plus the Swarm labels
// swarmprom's dashboards and rules group by: service, node ID, task name
// and stack namespace.
var ctrLabels = []string{"id", "name", "image", "container_label_com_docker_swarm_service_name",
	"container_label_com_docker_swarm_node_id", "container_label_com_docker_swarm_task_name",
	"container_label_com_docker_stack_namespace"}

type desc struct {
	d     *prometheus.Desc
	t     prometheus.ValueType
	extra string // name of the extra label, if any
	// extraPos is where the extra label goes among the container labels
	// sorted by name.
	extraPos int
}

// collector produces the cAdvisor-compatible container metrics and the
// per-container watchman state at scrape time from the last samples, so
// removed containers leave no stale series.
type collector struct {
	w     *Watchman
	descs map[string]*desc
	order []string
	// sorted are the container label names in the order of their label
	// pairs (sorted by name), and sortedIdx[i] the index in ctrLabels of
	// sorted[i].
	sorted    []string
	sortedIdx []int
}

func newCollector(w *Watchman) *collector {
	c := &collector{w: w, descs: map[string]*desc{}, sorted: slices.Sorted(slices.Values(ctrLabels))}
	for _, n := range c.sorted {
		c.sortedIdx = append(c.sortedIdx, slices.Index(ctrLabels, n))
	}
	add := func(name, help string, t prometheus.ValueType, extra ...string) {
		labels := append([]string(nil), ctrLabels...)
		e := ""
		if len(extra) > 0 {
			e = extra[0]
			labels = append(labels, e)
		}
		pos, _ := slices.BinarySearch(c.sorted, e)
		c.descs[name] = &desc{prometheus.NewDesc(name, help, labels, nil), t, e, pos}
		c.order = append(c.order, name)
	}
	C, G := prometheus.CounterValue, prometheus.GaugeValue
	add("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", C, "cpu")
	add("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", C)
	add("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", C)
	add("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", C)
	add("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", C)
	add("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", C)
	add("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", G)
	add("container_memory_working_set_bytes", "Current working set in bytes.", G)
	add("container_memory_rss", "Size of RSS in bytes.", G)
	add("container_memory_cache", "Number of bytes of page cache memory.", G)
	add("container_spec_memory_limit_bytes", "Memory limit for the container.", G)
	add("container_network_receive_bytes_total", "Cumulative count of bytes received.", C, "interface")
	add("container_network_receive_packets_total", "Cumulative count of packets received.", C, "interface")
	add("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", C, "interface")
	add("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", C, "interface")
	add("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", C, "interface")
	add("container_network_transmit_packets_total", "Cumulative count of packets transmitted.", C, "interface")
	add("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", C, "interface")
	add("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", C, "interface")
	add("container_fs_reads_bytes_total", "Cumulative count of bytes read.", C, "device")
	add("container_fs_writes_bytes_total", "Cumulative count of bytes written.", C, "device")
	add("container_fs_reads_total", "Cumulative count of reads completed.", C, "device")
	add("container_fs_writes_total", "Cumulative count of writes completed.", C, "device")
	add("container_threads", "Number of threads running inside the container.", G)
	add("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", G)
	add("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", C)
	add("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", C)
	add("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", C)
	add("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", C)
	add("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", C)
	add("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", C)
	add("container_accelerator_duty_cycle", "Percent of time over the past sample period during which the accelerator was actively processing.", G)
	add("container_accelerator_memory_used_bytes", "Total accelerator memory allocated.", G)
	add("container_last_seen", "Last time a container was seen by the exporter.", G)
	add("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", G)
	add("heartwood_watchman_container_state", "The watchman's state of the container (1 for the current state).", G, "state")
	add("heartwood_watchman_container_idle_seconds", "How long an opted-in container has been idle without a break.", G)
	add("heartwood_watchman_container_seconds_until_action", "Idle time left before an opted-in container is acted on.", G)
	add("heartwood_watchman_container_paused_memory_bytes", "Memory held by a container while the watchman keeps it paused.", G)
	c.descs["heartwood_watchman_gpu_support"] = &desc{d: prometheus.NewDesc("heartwood_watchman_gpu_support", "1 if this build reads GPUs through NVML, 0 if GPU support is absent.", nil, nil), t: G}
	c.order = append(c.order, "heartwood_watchman_gpu_support")
	for _, h := range []struct{ name, help string }{
		{"heartwood_watchman_gpu_utilization_ratio", "Fraction of the last sample period in which a kernel ran on the GPU (NVML)."},
		{"heartwood_watchman_gpu_memory_used_bytes", "GPU memory in use (NVML)."},
		{"heartwood_watchman_gpu_memory_total_bytes", "GPU memory (NVML)."},
	} {
		c.descs[h.name] = &desc{d: prometheus.NewDesc(h.name, h.help, []string{"gpu", "uuid", "model"}, nil), t: G}
		c.order = append(c.order, h.name)
	}
	for _, h := range []struct{ name, help string }{
		{"heartwood_watchman_host_cpu_seconds_total", "Host CPU time by mode, from gopsutil."},
	} {
		c.descs[h.name] = &desc{d: prometheus.NewDesc(h.name, h.help, []string{"mode"}, nil), t: C, extra: "mode"}
		c.order = append(c.order, h.name)
	}
	for _, h := range []struct{ name, help string }{
		{"heartwood_watchman_host_memory_total_bytes", "Host memory, from gopsutil."},
		{"heartwood_watchman_host_memory_available_bytes", "Host memory available, from gopsutil."},
		{"heartwood_watchman_host_load1", "Host 1-minute load average, from gopsutil."},
	} {
		c.descs[h.name] = &desc{d: prometheus.NewDesc(h.name, h.help, nil, nil), t: G}
		c.order = append(c.order, h.name)
	}
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, n := range c.order {
		ch <- c.descs[n].d
	}
}

// point is one value queued under the lock and emitted after it: a GPU
// series with its labels, or a container series with the value of its
// family's extra label (the container labels are its container's).
type point struct {
	name   string
	v      float64
	labels []string
	extra  string
}

// ctrPoints are the points of one container, pts[from:to], and the values
// of its container labels.
type ctrPoints struct {
	base     []string
	from, to int
}

// seriesKey identifies a container series after sanitizing: its name, the
// index of its container labels among the distinct ones, and its extra
// label.
type seriesKey struct {
	name  string
	base  int
	extra string
}

// series is one container series handed to the registry. Its label pairs
// are built once per container and scrape (the series without an extra
// label share them), and it writes itself without allocating.
type series struct {
	desc   *prometheus.Desc
	typ    prometheus.ValueType
	v      float64
	labels []*dto.LabelPair
	ctr    dto.Counter
	gauge  dto.Gauge
}

// Desc implements prometheus.Metric.
func (s *series) Desc() *prometheus.Desc { return s.desc }

// Write implements prometheus.Metric.
func (s *series) Write(out *dto.Metric) error {
	out.Label = s.labels
	if s.typ == prometheus.CounterValue {
		s.ctr.Value = &s.v
		out.Counter = &s.ctr
	} else {
		s.gauge.Value = &s.v
		out.Gauge = &s.gauge
	}
	return nil
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	w := c.w
	var pts []point
	w.mu.Lock()
	ctrs := make([]ctrPoints, 0, len(w.ctrs))
	for _, t := range w.ctrs {
		from := len(pts)
		var base []string
		pts, base = c.containerPoints(pts, t)
		ctrs = append(ctrs, ctrPoints{base, from, len(pts)})
	}
	gpuFrom := len(pts)
	for _, d := range w.gpuDevs {
		l := []string{strconv.Itoa(d.Index), d.UUID, d.Name}
		pts = append(pts,
			point{name: "heartwood_watchman_gpu_utilization_ratio", v: d.Util / 100, labels: l},
			point{name: "heartwood_watchman_gpu_memory_used_bytes", v: float64(d.MemoryUsed), labels: l},
			point{name: "heartwood_watchman_gpu_memory_total_bytes", v: float64(d.MemoryTotal), labels: l})
	}
	w.mu.Unlock()
	// One bad series (a label value that is no valid UTF-8, two values that
	// become equal once sanitized) is left out and counted; it never fails
	// the whole scrape.
	seen := make(map[seriesKey]struct{}, len(pts))
	bases := make(map[string]int, len(ctrs))
	all := make([]series, 0, gpuFrom) // never grows: &all[i] stays valid
	pairs := make([]dto.LabelPair, len(ctrs)*len(ctrLabels))
	for _, r := range ctrs {
		for i, l := range r.base {
			r.base[i] = sanitizeLabel(l)
		}
	}
	// The registry sorts every family by label values; in that order
	// already, its sort is a single pass.
	slices.SortFunc(ctrs, func(a, b ctrPoints) int {
		for _, i := range c.sortedIdx {
			if d := strings.Compare(a.base[i], b.base[i]); d != 0 {
				return d
			}
		}
		return 0
	})
	for _, r := range ctrs {
		bk := strings.Join(r.base, "\x00")
		bi, ok := bases[bk]
		if !ok {
			bi = len(bases)
			bases[bk] = bi
		}
		own := pairs[:len(c.sorted)]
		pairs = pairs[len(c.sorted):]
		basePairs := make([]*dto.LabelPair, len(c.sorted))
		for j := range c.sorted {
			own[j].Name, own[j].Value = &c.sorted[j], &r.base[c.sortedIdx[j]]
			basePairs[j] = &own[j]
		}
		for _, p := range pts[r.from:r.to] {
			d := c.descs[p.name]
			extra := ""
			if d.extra != "" {
				extra = sanitizeLabel(p.extra)
			}
			k := seriesKey{p.name, bi, extra}
			if _, dup := seen[k]; dup {
				w.m.seriesDropped.Inc()
				continue
			}
			seen[k] = struct{}{}
			labels := basePairs
			if d.extra != "" {
				v := extra
				labels = make([]*dto.LabelPair, 0, len(basePairs)+1)
				labels = append(labels, basePairs[:d.extraPos]...)
				labels = append(labels, &dto.LabelPair{Name: &d.extra, Value: &v})
				labels = append(labels, basePairs[d.extraPos:]...)
			}
			all = append(all, series{desc: d.d, typ: d.t, v: p.v, labels: labels})
			ch <- &all[len(all)-1]
		}
	}
	gpuSeen := map[string]struct{}{}
	var key strings.Builder
	for _, p := range pts[gpuFrom:] {
		d := c.descs[p.name]
		key.Reset()
		key.WriteString(p.name)
		for i, l := range p.labels {
			p.labels[i] = sanitizeLabel(l)
			key.WriteByte(0)
			key.WriteString(p.labels[i])
		}
		if _, dup := gpuSeen[key.String()]; dup {
			w.m.seriesDropped.Inc()
			continue
		}
		gpuSeen[key.String()] = struct{}{}
		m, err := prometheus.NewConstMetric(d.d, d.t, p.v, p.labels...)
		if err != nil {
			w.m.seriesDropped.Inc()
			continue
		}
		ch <- m
	}
	gs := 0.0
	if gpu.Supported {
		gs = 1
	}
	ch <- prometheus.MustNewConstMetric(c.descs["heartwood_watchman_gpu_support"].d, prometheus.GaugeValue, gs)
	c.host(ch)
}

func (c *collector) host(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ctx = context.WithValue(ctx, common.EnvKey, common.EnvMap{common.HostProcEnvKey: c.w.cfg.ProcRoot})
	if ts, err := cpu.TimesWithContext(ctx, false); err == nil && len(ts) == 1 {
		d := c.descs["heartwood_watchman_host_cpu_seconds_total"].d
		t := ts[0]
		for _, x := range []struct {
			mode string
			v    float64
		}{{"user", t.User}, {"system", t.System}, {"idle", t.Idle}, {"nice", t.Nice}, {"iowait", t.Iowait},
			{"irq", t.Irq}, {"softirq", t.Softirq}, {"steal", t.Steal}} {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, x.v, x.mode)
		}
	}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.descs["heartwood_watchman_host_memory_total_bytes"].d, prometheus.GaugeValue, float64(vm.Total))
		ch <- prometheus.MustNewConstMetric(c.descs["heartwood_watchman_host_memory_available_bytes"].d, prometheus.GaugeValue, float64(vm.Available))
	}
	if l, err := load.AvgWithContext(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(c.descs["heartwood_watchman_host_load1"].d, prometheus.GaugeValue, l.Load1)
	}
}

func serviceName(c *inventory.Container) string {
	if c.Swarm != nil {
		return c.Swarm.ServiceName
	}
	return c.Labels[inventory.LabelSwarmServiceName]
}

// swarmLabels returns the Swarm node ID, task name and stack namespace.
func swarmLabels(c *inventory.Container) (node, task, stack string) {
	if c.Swarm != nil {
		return c.Swarm.NodeID, c.Swarm.TaskName, c.Swarm.Stack
	}
	return c.Labels[inventory.LabelSwarmNodeID], c.Labels[inventory.LabelSwarmTaskName], c.Labels[inventory.LabelStackNamespace]
}

// containerPoints appends t's series and returns the values of its
// container labels. Called with w.mu held.
func (c *collector) containerPoints(pts []point, t *tracked) ([]point, []string) {
	id := "/docker/" + t.c.ID
	if t.sm != nil && t.sm.cgPath != "" {
		id = t.sm.cgPath
	}
	node, task, stack := swarmLabels(t.c)
	base := []string{id, t.c.Name, t.c.Image, serviceName(t.c), node, task, stack}
	state := t.state
	if state == "" {
		state = StateNotRunning
	}
	pts = append(pts, point{name: "heartwood_watchman_container_state", v: 1, extra: state})
	if t.managed && t.verdict.Idle {
		pts = append(pts, point{name: "heartwood_watchman_container_idle_seconds", v: t.verdict.IdleFor.Seconds()},
			point{name: "heartwood_watchman_container_seconds_until_action", v: t.verdict.Until.Seconds()})
	}
	if !t.hasCur || !t.c.State.Running {
		return pts, base
	}
	s := &t.cur.Cgroup
	ns := func(v uint64) float64 { return float64(v) / 1e9 }
	if t.pausedByUs() {
		pts = append(pts, point{name: "heartwood_watchman_container_paused_memory_bytes", v: float64(s.MemoryUsage)})
	}
	pts = append(pts,
		point{name: "container_cpu_usage_seconds_total", v: ns(s.CPUUsage), extra: "total"},
		point{name: "container_cpu_user_seconds_total", v: ns(s.CPUUser)},
		point{name: "container_cpu_system_seconds_total", v: ns(s.CPUSystem)},
		point{name: "container_cpu_cfs_periods_total", v: float64(s.CFSPeriods)},
		point{name: "container_cpu_cfs_throttled_periods_total", v: float64(s.CFSThrottled)},
		point{name: "container_cpu_cfs_throttled_seconds_total", v: ns(s.CFSThrottledTime)},
		point{name: "container_memory_usage_bytes", v: float64(s.MemoryUsage)},
		point{name: "container_memory_working_set_bytes", v: float64(s.MemoryWorkingSet)},
		point{name: "container_memory_rss", v: float64(s.MemoryRSS)},
		point{name: "container_memory_cache", v: float64(s.MemoryCache)},
		point{name: "container_threads", v: float64(s.Pids)},
		point{name: "container_last_seen", v: float64(t.cur.At.Unix())},
	)
	if s.MemoryLimit != cgroup.Unlimited {
		pts = append(pts, point{name: "container_spec_memory_limit_bytes", v: float64(s.MemoryLimit)})
	} else {
		pts = append(pts, point{name: "container_spec_memory_limit_bytes", v: 0})
	}
	if s.PidsMax != cgroup.Unlimited {
		pts = append(pts, point{name: "container_threads_max", v: float64(s.PidsMax)})
	} else {
		pts = append(pts, point{name: "container_threads_max", v: 0})
	}
	if !t.c.State.StartedAt.IsZero() {
		pts = append(pts, point{name: "container_start_time_seconds", v: float64(t.c.State.StartedAt.Unix())})
	}
	if t.cur.HasNet {
		for _, i := range t.cur.Net {
			if i.Name == "lo" {
				continue
			}
			l := i.Name
			pts = append(pts,
				point{name: "container_network_receive_bytes_total", v: float64(i.RxBytes), extra: l},
				point{name: "container_network_receive_packets_total", v: float64(i.RxPackets), extra: l},
				point{name: "container_network_receive_errors_total", v: float64(i.RxErrors), extra: l},
				point{name: "container_network_receive_packets_dropped_total", v: float64(i.RxDrops), extra: l},
				point{name: "container_network_transmit_bytes_total", v: float64(i.TxBytes), extra: l},
				point{name: "container_network_transmit_packets_total", v: float64(i.TxPackets), extra: l},
				point{name: "container_network_transmit_errors_total", v: float64(i.TxErrors), extra: l},
				point{name: "container_network_transmit_packets_dropped_total", v: float64(i.TxDrops), extra: l},
			)
		}
	}
	for _, d := range s.BlkIO {
		l := strconv.FormatUint(uint64(d.Major), 10) + ":" + strconv.FormatUint(uint64(d.Minor), 10)
		pts = append(pts,
			point{name: "container_fs_reads_bytes_total", v: float64(d.ReadBytes), extra: l},
			point{name: "container_fs_writes_bytes_total", v: float64(d.WriteBytes), extra: l},
			point{name: "container_fs_reads_total", v: float64(d.Reads), extra: l},
			point{name: "container_fs_writes_total", v: float64(d.Writes), extra: l},
		)
	}
	if s.HasPSI {
		us := func(v uint64) float64 { return float64(v) / 1e6 }
		pts = append(pts,
			point{name: "container_pressure_cpu_waiting_seconds_total", v: us(s.CPUPressure.Some.Total)},
			point{name: "container_pressure_cpu_stalled_seconds_total", v: us(s.CPUPressure.Full.Total)},
			point{name: "container_pressure_memory_waiting_seconds_total", v: us(s.MemoryPressure.Some.Total)},
			point{name: "container_pressure_memory_stalled_seconds_total", v: us(s.MemoryPressure.Full.Total)},
			point{name: "container_pressure_io_waiting_seconds_total", v: us(s.IOPressure.Some.Total)},
			point{name: "container_pressure_io_stalled_seconds_total", v: us(s.IOPressure.Full.Total)},
		)
	}
	if t.cur.HasGPU {
		pts = append(pts,
			point{name: "container_accelerator_duty_cycle", v: t.cur.GPUUtil},
			point{name: "container_accelerator_memory_used_bytes", v: float64(t.cur.GPUMemBytes)},
		)
	}
	return pts, base
}

// maxLabelLen bounds a label value taken from outside (interface, container
// and image names).
const maxLabelLen = 256

// sanitizeLabel returns s as a valid UTF-8 label value of at most
// maxLabelLen bytes: bytes that are not UTF-8 become \xNN, and a longer
// value is cut at a character boundary.
func sanitizeLabel(s string) string {
	if len(s) <= maxLabelLen && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		var part string
		if r == utf8.RuneError && n <= 1 {
			part = fmt.Sprintf("\\x%02x", s[i])
			n = 1
		} else {
			part = s[i : i+n]
		}
		if b.Len()+len(part) > maxLabelLen {
			break
		}
		b.WriteString(part)
		i += n
	}
	return b.String()
}
