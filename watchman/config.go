package watchman

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
	"github.com/heartwood-ops/heartwood/watchman/policy"
)

// Config configures the watchman. The agent maps every field to the flag
// --watchman.<yaml name>, the variable HEARTWOOD_WATCHMAN_<NAME> and the YAML
// key watchman.<name>.
type Config struct {
	Enabled    bool          `yaml:"enabled" help:"measure containers, export their metrics and pause idle opted-in ones"`
	Interval   time.Duration `yaml:"interval" help:"sample period for every running container"`
	ESInterval time.Duration `yaml:"es-interval" help:"period of the utilization samples written to Elasticsearch (metrics-heartwood.container-<namespace>); 0 turns them off"`
	ProcRoot   string        `yaml:"proc-root" help:"the host's /proc (bind-mount it when the agent runs in a container)"`
	CgroupRoot string        `yaml:"cgroup-root" help:"the host's cgroup mount point"`

	Window   time.Duration `yaml:"window" help:"default idle window: every sample in it must be idle before acting (label heartwood.watchman.window)"`
	MinAge   time.Duration `yaml:"min-age" help:"default minimum container age before acting (label heartwood.watchman.min-age)"`
	CPU      float64       `yaml:"cpu" help:"default CPU threshold in cores (label heartwood.watchman.cpu)"`
	Net      float64       `yaml:"net" help:"default network threshold in bytes/s, receive+transmit (label heartwood.watchman.net)"`
	Disk     float64       `yaml:"disk" help:"default block I/O threshold in bytes/s, read+write (label heartwood.watchman.disk)"`
	GPU      float64       `yaml:"gpu" help:"default GPU utilization threshold in percent (label heartwood.watchman.gpu)"`
	Pressure float64       `yaml:"pressure" help:"PSI stall ratio (0-1) of memory or io above which a container is never idle (cpu pressure is not used: it measures contention from other cgroups)"`
	Action   string        `yaml:"action" help:"default action for idle containers: pause, stop or notify (label heartwood.watchman.action)"`
	DryRun   bool          `yaml:"dry-run" help:"node-wide dry run: record what would be done, do nothing"`

	MaxPausesPerMinute int      `yaml:"max-pauses-per-minute" help:"node-wide cap on automatic pauses and stops per minute"`
	Exclude            []string `yaml:"exclude" help:"container names or IDs (or ID prefixes) that are never paused"`
	KVPrefix           string   `yaml:"kv-prefix" help:"Consul KV prefix for live cluster-wide defaults (window, cpu, ..., dry-run, nodes/<node>/dry-run); empty disables"`

	WakeOnConnect     bool          `yaml:"wake-on-connect" help:"unpause a paused container when a new TCP connection reaches one of its listening ports"`
	WakeMechanism     string        `yaml:"wake-mechanism" help:"how connections to a paused container are found: auto (socket events where the agent can hold the container's sockets, polling elsewhere) or poll"`
	WakePoll          time.Duration `yaml:"wake-poll" help:"how often a paused container's socket tables are checked for new connections when polling"`
	HealthCheckPeers  []string      `yaml:"health-check-peers" help:"IPs or CIDRs whose connections never wake a container (e.g. the Consul agent)"`
	WakeHealthTimeout time.Duration `yaml:"wake-health-timeout" help:"how long a wake waits for the Docker health check to pass before ending maintenance anyway"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:            true,
		Interval:           5 * time.Second,
		ESInterval:         10 * time.Second,
		ProcRoot:           "/proc",
		CgroupRoot:         "/sys/fs/cgroup",
		Window:             30 * time.Minute,
		MinAge:             10 * time.Minute,
		CPU:                0.05,
		Net:                4096,
		Disk:               65536,
		GPU:                5,
		Pressure:           0.10,
		Action:             string(policy.ActionPause),
		MaxPausesPerMinute: 10,
		KVPrefix:           "heartwood/watchman/",
		WakeOnConnect:      true,
		WakeMechanism:      MechanismAuto,
		WakePoll:           50 * time.Millisecond,
		WakeHealthTimeout:  2 * time.Minute,
	}
}

// Validate reports every invalid field, naming its key.
func (c Config) Validate() error {
	p := config.NewProblems("watchman")
	if c.Interval < 100*time.Millisecond {
		p.Add("interval", "must be >= 100ms, got %s", c.Interval)
	}
	if c.ESInterval != 0 && c.ESInterval < time.Second {
		p.Add("es-interval", "must be 0 (off) or >= 1s, got %s", c.ESInterval)
	}
	if c.ProcRoot == "" {
		p.Add("proc-root", "must not be empty")
	}
	if c.CgroupRoot == "" {
		p.Add("cgroup-root", "must not be empty")
	}
	p.Positive("window", c.Window)
	if c.MinAge < 0 {
		p.Add("min-age", "must be >= 0, got %s", c.MinAge)
	}
	if c.CPU < 0 {
		p.Add("cpu", "must be >= 0, got %g", c.CPU)
	}
	if c.Net < 0 {
		p.Add("net", "must be >= 0, got %g", c.Net)
	}
	if c.Disk < 0 {
		p.Add("disk", "must be >= 0, got %g", c.Disk)
	}
	if c.GPU < 0 || c.GPU > 100 {
		p.Add("gpu", "must be between 0 and 100, got %g", c.GPU)
	}
	if c.Pressure < 0 || c.Pressure > 1 {
		p.Add("pressure", "must be between 0 and 1, got %g", c.Pressure)
	}
	if _, err := policy.ParseAction(c.Action); err != nil {
		p.Add("action", "%v", err)
	}
	if c.MaxPausesPerMinute < 0 {
		p.Add("max-pauses-per-minute", "must be >= 0, got %d", c.MaxPausesPerMinute)
	}
	for _, e := range c.Exclude {
		if strings.TrimSpace(e) == "" {
			p.Add("exclude", "empty entry")
		}
	}
	if c.KVPrefix != "" && strings.HasPrefix(c.KVPrefix, "/") {
		p.Add("kv-prefix", "must not start with '/', got %q", c.KVPrefix)
	}
	if c.WakeMechanism != MechanismAuto && c.WakeMechanism != MechanismPoll {
		p.Add("wake-mechanism", "must be %s or %s, got %q", MechanismAuto, MechanismPoll, c.WakeMechanism)
	}
	if c.WakePoll < 5*time.Millisecond || c.WakePoll > 10*time.Second {
		p.Add("wake-poll", "must be between 5ms and 10s, got %s", c.WakePoll)
	}
	if _, err := parsePeers(c.HealthCheckPeers); err != nil {
		p.Add("health-check-peers", "%v", err)
	}
	p.Positive("wake-health-timeout", c.WakeHealthTimeout)
	return p.Err()
}

// defaults returns the policy defaults the configuration describes.
func (c Config) defaults() policy.Defaults {
	a, _ := policy.ParseAction(c.Action)
	return policy.Defaults{
		Window: c.Window, MinAge: c.MinAge, CPU: c.CPU, Net: c.Net,
		Disk: c.Disk, GPU: c.GPU, Action: a, DryRun: c.DryRun,
	}
}

// parsePeers parses IPs and CIDRs.
func parsePeers(in []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an IP nor a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
