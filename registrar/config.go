package registrar

import (
	"net"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
)

// Deregistration policies for containers that stop.
const (
	DeregisterAlways    = "always"
	DeregisterOnSuccess = "on-success"
	DeregisterNever     = "never"
)

// Config configures the registrar. Every field maps to the flag
// --registrar.<yaml name>; registrar/README.md maps Registrator's flags to
// these.
type Config struct {
	Enabled bool `yaml:"enabled" help:"register this node's containers as Consul services"`
	// IP is Registrator's -ip.
	IP       string `yaml:"ip" help:"address registered for published ports (Registrator -ip); empty: the local Consul agent's advertise address"`
	Internal bool   `yaml:"internal" help:"register container IPs and exposed ports instead of published ports (Registrator -internal)"`
	Explicit bool   `yaml:"explicit" help:"register only ports with SERVICE_NAME or SERVICE_<port>_NAME (Registrator -explicit)"`
	// IPFromLabel is Registrator's -useIpFromLabel.
	// It lets each container choose the address its services announce and
	// their checks probe.
	IPFromLabel string   `yaml:"ip-from-label" help:"container label holding the service IP; text after the last / is dropped (Registrator -useIpFromLabel); lets a container choose the address its checks probe"`
	Tags        []string `yaml:"tags" help:"tags added to every service (Registrator -tags, without templates)"`
	Deregister  string   `yaml:"deregister" help:"when a container stops: always, on-success (keep services of containers that failed) or never (keep until the container is removed)"`
	// ReconcileInterval replaces Registrator's -resync and -cleanup.
	ReconcileInterval    time.Duration `yaml:"reconcile-interval" help:"period of the full reconcile against the local Consul agent (reads only; writes only differences)"`
	RetryInterval        time.Duration `yaml:"retry-interval" help:"first wait before retrying when Consul is unreachable (Registrator -retry-interval)"`
	RetryMaxInterval     time.Duration `yaml:"retry-max-interval" help:"longest wait between retries while Consul is unreachable"`
	DeregisterOnShutdown bool          `yaml:"deregister-on-shutdown" help:"deregister every service of this node when Heartwood stops (default: leave them, containers keep running)"`
	Network              string        `yaml:"network" help:"default network whose container address is registered (internal mode, Swarm tasks), overridden by SERVICE_NETWORK"`
	IPv6                 bool          `yaml:"ipv6" help:"prefer IPv6 addresses for container addresses and host bindings"`
	DockerHealth         bool          `yaml:"docker-health" help:"mirror a container's Docker HEALTHCHECK as a Consul TTL check"`
	CheckInterval        time.Duration `yaml:"check-interval" help:"default interval of SERVICE_CHECK_* checks"`
	DrainTimeout         time.Duration `yaml:"drain-timeout" help:"how long services stay in maintenance after a kill/stop event if the container keeps running"`
	CleanupRegistrator   bool          `yaml:"cleanup-registrator" help:"also remove stale services in Registrator's ID format <node>:<container>:<port> on this node that no container backs (Registrator -cleanup)"`
	RequireLabels        []string      `yaml:"require-labels" help:"register only containers that carry all these labels (key or key=value)"`
	WriteConcurrency     int           `yaml:"write-concurrency" help:"parallel writes to the local Consul agent"`
	// AllowScriptChecks lets container labels define script checks, which
	// the Consul agent runs as its own user on the host.
	AllowScriptChecks bool `yaml:"allow-script-checks" help:"register SERVICE_CHECK_SCRIPT and SERVICE_CHECKS args checks; the Consul agent runs them on the host, so anyone who can label a container can run commands there (default: dropped with a warning)"`
	// ConsulTimeout bounds every call to the local Consul agent.
	ConsulTimeout time.Duration `yaml:"consul-timeout" help:"deadline of each call to the local Consul agent"`
}

// DefaultConfig returns the registrar's defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:           true,
		Deregister:        DeregisterAlways,
		ReconcileInterval: 30 * time.Second,
		RetryInterval:     200 * time.Millisecond,
		RetryMaxInterval:  10 * time.Second,
		DockerHealth:      true,
		CheckInterval:     10 * time.Second,
		DrainTimeout:      2 * time.Minute,
		WriteConcurrency:  16,
		ConsulTimeout:     10 * time.Second,
	}
}

// Validate reports every invalid setting, naming its key.
func (c Config) Validate() error {
	p := config.NewProblems("registrar")
	if c.IP != "" && net.ParseIP(c.IP) == nil {
		p.Add("ip", "must be an IP address, got %q", c.IP)
	}
	switch c.Deregister {
	case DeregisterAlways, DeregisterOnSuccess, DeregisterNever:
	default:
		p.Add("deregister", "must be always, on-success or never, got %q", c.Deregister)
	}
	p.Positive("reconcile-interval", c.ReconcileInterval)
	p.Positive("retry-interval", c.RetryInterval)
	if c.RetryMaxInterval < c.RetryInterval {
		p.Add("retry-max-interval", "must be >= retry-interval (%s), got %s", c.RetryInterval, c.RetryMaxInterval)
	}
	p.Positive("check-interval", c.CheckInterval)
	p.Positive("drain-timeout", c.DrainTimeout)
	p.Positive("consul-timeout", c.ConsulTimeout)
	if c.WriteConcurrency < 1 || c.WriteConcurrency > 64 {
		p.Add("write-concurrency", "must be 1..64, got %d", c.WriteConcurrency)
	}
	for _, t := range c.Tags {
		if strings.Contains(t, "{{") {
			p.Add("tags", "templates are not supported, got %q", t)
		} else if strings.TrimSpace(t) == "" {
			p.Add("tags", "empty tag")
		}
	}
	for _, l := range c.RequireLabels {
		if k, _, _ := strings.Cut(l, "="); k == "" {
			p.Add("require-labels", "empty label key in %q", l)
		}
	}
	return p.Err()
}
