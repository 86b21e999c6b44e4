package agent

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
)

// Core holds the agent's own settings; subsystem settings live in their
// packages and are nested under their names in Config.
type Core struct {
	DockerHost string `yaml:"docker-host" help:"Docker engine endpoint (unix:///path or tcp://host:port)"`

	ConsulAddr          string `yaml:"consul-addr" help:"local Consul agent's HTTP API: host:port or http(s)://host:port"`
	ConsulToken         string `yaml:"consul-token" secret:"true" help:"Consul ACL token (default: $CONSUL_HTTP_TOKEN)"`
	ConsulTokenFile     string `yaml:"consul-token-file" help:"file holding the Consul ACL token, re-read when it changes"`
	ConsulCAFile        string `yaml:"consul-ca-file" help:"CA certificate file for Consul's TLS"`
	ConsulCAPath        string `yaml:"consul-ca-path" help:"directory of CA certificates for Consul's TLS"`
	ConsulCertFile      string `yaml:"consul-cert-file" help:"client certificate for Consul's TLS"`
	ConsulKeyFile       string `yaml:"consul-key-file" help:"client key for Consul's TLS"`
	ConsulTLSServerName string `yaml:"consul-tls-server-name" help:"server name to verify in Consul's certificate"`

	ESURL      []string `yaml:"es-url" help:"Elasticsearch URL; repeat for several nodes"`
	ESAPIKey   string   `yaml:"es-api-key" secret:"true" help:"Elasticsearch API key (base64 id:key)"`
	ESUsername string   `yaml:"es-username" help:"Elasticsearch basic-auth user"`
	ESPassword string   `yaml:"es-password" secret:"true" help:"Elasticsearch basic-auth password"`
	// ESPasswordFile and ESAPIKeyFile are read once at start.
	ESPasswordFile string `yaml:"es-password-file" help:"file holding the Elasticsearch password (instead of es-password)"`
	ESAPIKeyFile   string `yaml:"es-api-key-file" help:"file holding the Elasticsearch API key (instead of es-api-key)"`
	ESCAFile       string `yaml:"es-ca-file" help:"CA certificate file for Elasticsearch's TLS"`

	Listen       string `yaml:"listen" help:"address of the agent's HTTP API (metrics, health, status, pause/wake)"`
	APIToken     string `yaml:"api-token" secret:"true" help:"bearer token (at least 16 bytes) for mutating API calls, and for reads when --listen is not loopback; required then"`
	APITokenFile string `yaml:"api-token-file" help:"file holding the API bearer token, re-read on every call"`
	// APIOpenMetrics serves /metrics without the token on an exposed API.
	APIOpenMetrics bool `yaml:"api-open-metrics" help:"serve /metrics without the bearer token when --listen is not loopback, for Prometheus scrapers"`

	DataDir  string `yaml:"data-dir" help:"directory for the agent's state (log shipping checkpoints)"`
	NodeName string `yaml:"node-name" help:"this node's name in service IDs and log metadata (default: hostname)"`
	// SelfContainerID is detected from /proc/self when empty.
	SelfContainerID string `yaml:"self-container-id" help:"the agent's own container ID when it runs in a container (detected if empty)"`

	// MemoryLimit is the Go runtime's soft memory limit.
	MemoryLimit config.ByteSize `yaml:"memory-limit" help:"soft memory limit of the agent's Go runtime (0 turns it off; $GOMEMLIMIT, when set, wins)"`

	// HealthInterval is the period of the agent's health documents.
	HealthInterval time.Duration `yaml:"health-interval" help:"period of the agent's health documents in Elasticsearch (metrics-heartwood.agent-<namespace>: shipping lag, retries, drift, Consul errors, restarts), written through the shipper; 0 turns them off"`

	LogLevel        string        `yaml:"log-level" help:"debug, info, warn or error"`
	LogFormat       string        `yaml:"log-format" help:"text or json"`
	ShutdownTimeout time.Duration `yaml:"shutdown-timeout" help:"how long a clean shutdown may take before the agent exits anyway"`
}

// DefaultCore returns the agent's defaults: everything on this host.
func DefaultCore() Core {
	return Core{
		DockerHost:      "unix:///var/run/docker.sock",
		ConsulAddr:      "127.0.0.1:8500",
		ESURL:           []string{"http://127.0.0.1:9200"},
		Listen:          "127.0.0.1:9321",
		DataDir:         "/var/lib/heartwood",
		MemoryLimit:     48 << 20,
		HealthInterval:  30 * time.Second,
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 15 * time.Second,
	}
}

// Validate checks the settings and says what to fix.
func (c *Core) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: "+format, append([]any{name}, args...)...))
	}
	if u, err := url.Parse(c.DockerHost); err != nil || (u.Scheme != "unix" && u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https") {
		bad("docker-host", "want unix:///path/to/docker.sock or tcp://host:port, got %q", c.DockerHost)
	}
	if c.ConsulAddr == "" {
		bad("consul-addr", "must not be empty")
	} else if addr := strings.TrimPrefix(strings.TrimPrefix(c.ConsulAddr, "http://"), "https://"); !validHostPort(addr) {
		bad("consul-addr", "want host:port, got %q", c.ConsulAddr)
	}
	if c.ConsulToken != "" && c.ConsulTokenFile != "" {
		bad("consul-token-file", "set either consul-token or consul-token-file, not both")
	}
	for _, f := range []struct{ name, path string }{
		{"consul-token-file", c.ConsulTokenFile}, {"consul-ca-file", c.ConsulCAFile},
		{"consul-cert-file", c.ConsulCertFile}, {"consul-key-file", c.ConsulKeyFile},
		{"es-ca-file", c.ESCAFile}, {"api-token-file", c.APITokenFile},
		{"es-password-file", c.ESPasswordFile}, {"es-api-key-file", c.ESAPIKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			bad(f.name, "cannot read %s: %v", f.path, errors.Unwrap(err))
		}
	}
	if (c.ConsulCertFile == "") != (c.ConsulKeyFile == "") {
		bad("consul-cert-file", "consul-cert-file and consul-key-file go together")
	}
	if len(c.ESURL) == 0 {
		bad("es-url", "give at least one Elasticsearch URL")
	}
	for _, raw := range c.ESURL {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("es-url", "want http(s)://host:port, got %q", config.RedactURL(raw))
		}
	}
	if c.ESAPIKey != "" && c.ESAPIKeyFile != "" {
		bad("es-api-key-file", "set either es-api-key or es-api-key-file, not both")
	}
	if c.ESPassword != "" && c.ESPasswordFile != "" {
		bad("es-password-file", "set either es-password or es-password-file, not both")
	}
	hasKey := c.ESAPIKey != "" || c.ESAPIKeyFile != ""
	hasPassword := c.ESPassword != "" || c.ESPasswordFile != ""
	if hasKey && (c.ESUsername != "" || hasPassword) {
		bad("es-api-key", "use either an API key or a username and password, not both")
	}
	if (c.ESUsername == "") != !hasPassword {
		bad("es-username", "es-username and es-password (or es-password-file) go together")
	}
	if !validHostPort(c.Listen) {
		bad("listen", "want host:port such as 127.0.0.1:9321, got %q", c.Listen)
	} else if !c.ListenIsLoopback() && c.APIToken == "" && c.APITokenFile == "" {
		bad("listen", "%s is reachable from other hosts: set api-token or api-token-file so pause/wake need a bearer token", c.Listen)
	}
	if c.APIToken != "" && c.APITokenFile != "" {
		bad("api-token-file", "set either api-token or api-token-file, not both")
	}
	if c.APIToken != "" {
		if _, err := checkAPIToken(c.APIToken); err != nil {
			bad("api-token", "%v", err)
		}
	}
	if c.APITokenFile != "" {
		if b, err := os.ReadFile(c.APITokenFile); err == nil {
			if _, err := checkAPIToken(string(b)); err != nil {
				bad("api-token-file", "%s %v", c.APITokenFile, err)
			}
		}
	}
	if c.DataDir == "" {
		bad("data-dir", "must not be empty")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "want debug, info, warn or error, got %q", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		bad("log-format", "want text or json, got %q", c.LogFormat)
	}
	if c.MemoryLimit < 0 || (c.MemoryLimit > 0 && c.MemoryLimit < 16<<20) {
		bad("memory-limit", "want 0 (off) or at least 16MiB, got %s", c.MemoryLimit)
	}
	if c.HealthInterval < 0 || (c.HealthInterval > 0 && c.HealthInterval < time.Second) {
		bad("health-interval", "want 0 (off) or at least 1s, got %s", c.HealthInterval)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown-timeout", "must be > 0, got %s", c.ShutdownTimeout)
	}
	return errors.Join(errs...)
}

// ListenIsLoopback reports whether the API is reachable only from this host.
func (c *Core) ListenIsLoopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHostPort(s string) bool {
	_, port, err := net.SplitHostPort(s)
	return err == nil && port != ""
}
