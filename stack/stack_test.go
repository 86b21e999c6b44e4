// Package stack holds the tests of the platform's Swarm stack files: the
// structural rules of stack/platform.yml and its local variant here, the real
// deployment in the integration test.
package stack

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of a compose file the rules look at.
type composeFile struct {
	Version  string             `yaml:"version"`
	Services map[string]service `yaml:"services"`
	Networks map[string]struct {
		External bool   `yaml:"external"`
		Name     string `yaml:"name"`
		Driver   string `yaml:"driver"`
	} `yaml:"networks"`
	Secrets map[string]map[string]any `yaml:"secrets"`
	Configs map[string]map[string]any `yaml:"configs"`
}

type service struct {
	Image       string            `yaml:"image"`
	Command     any               `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Volumes     []string          `yaml:"volumes"`
	Networks    []string          `yaml:"networks"`
	Ports       []any             `yaml:"ports"`
	Labels      map[string]string `yaml:"labels"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	Deploy struct {
		Mode          string         `yaml:"mode"`
		Replicas      *int           `yaml:"replicas"`
		UpdateConfig  map[string]any `yaml:"update_config"`
		RollbackCfg   map[string]any `yaml:"rollback_config"`
		RestartPolicy struct {
			Condition string `yaml:"condition"`
		} `yaml:"restart_policy"`
		Placement struct {
			Constraints []string `yaml:"constraints"`
		} `yaml:"placement"`
	} `yaml:"deploy"`
}

func load(t *testing.T, path string) composeFile {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return f
}

// oneShot reports whether a service is a job that runs to completion.
func oneShot(s service) bool {
	c := s.Deploy.RestartPolicy.Condition
	return c == "on-failure" || c == "none"
}

// wantNetworks is every service's networks: each tier talks only to the
// tiers it needs.
var wantNetworks = map[string][]string{
	"consul-server":   {"hostnet"},
	"consul-agent":    {"hostnet"},
	"consul-seed":     {"ops"},
	"elasticsearch":   {"ops"},
	"kibana":          {"ops"},
	"heartwood-setup": {"ops"},
	"postgres":        {"data"},
	"mongodb":         {"data"},
	"influxdb":        {"data"},
	"redis":           {"data"},
	"web":             {"app", "data"},
	"trainer":         {"app", "data"},
	"simulator":       {"app"},
	"heartwood":       {"hostnet"},
}

// wantPorts is every port published through the routing mesh.
var wantPorts = map[string][]string{
	"elasticsearch": {"${ES_PUBLISHED_PORT:-9200}:9200"},
	"kibana":        {"${KIBANA_PUBLISHED_PORT:-5601}:5601"},
	"web":           {"${WEB_PUBLISHED_PORT:-8080}:8000"},
}

// Upstream images are pinned to an exact version; ours to a tag variable
// that must be set.
var (
	pinnedUpstream = regexp.MustCompile(`^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9]+)?$`)
	pinnedOwn      = regexp.MustCompile(`^(heartwood|heartwood-platform/[a-z]+):\$\{(HEARTWOOD|PLATFORM)_VERSION:\?[^}]+\}$`)
	localImage     = regexp.MustCompile(`^\$\{LOCAL_[A-Z]+_IMAGE:\?\}$`)
	secretish      = regexp.MustCompile(`(?i)(pass|secret|token|api_?key|credential)`)
)

func TestPlatformStructure(t *testing.T) {
	f := load(t, "platform.yml")
	if f.Version != "3.8" {
		t.Errorf("version = %q, want 3.8", f.Version)
	}
	var names []string
	for name := range f.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	var want []string
	for name := range wantNetworks {
		want = append(want, name)
	}
	sort.Strings(want)
	if !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v", names, want)
	}
	for _, name := range names {
		s := f.Services[name]
		t.Run(name, func(t *testing.T) {
			if !pinnedUpstream.MatchString(s.Image) && !pinnedOwn.MatchString(s.Image) {
				t.Errorf("image %q is not pinned to an exact version", s.Image)
			}
			if !oneShot(s) {
				if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
					t.Errorf("long-running service without a CMD health check: %+v", s.Healthcheck)
				}
				if len(s.Deploy.UpdateConfig) == 0 || len(s.Deploy.RollbackCfg) == 0 {
					t.Errorf("long-running service without update_config and rollback_config")
				}
			}
			got := slices.Clone(s.Networks)
			sort.Strings(got)
			if !slices.Equal(got, wantNetworks[name]) {
				t.Errorf("networks = %v, want %v", got, wantNetworks[name])
			}
			var ports []string
			for _, p := range s.Ports {
				ports = append(ports, fmt.Sprint(p))
			}
			if !slices.Equal(ports, wantPorts[name]) {
				t.Errorf("published ports = %v, want %v", s.Ports, wantPorts[name])
			}
			checkNoInlineSecrets(t, s)
			if name != "heartwood" && name != "consul-server" && name != "consul-agent" && !oneShot(s) {
				if s.Labels["SERVICE_NAME"] != name {
					t.Errorf("label SERVICE_NAME = %q, want %q (the Consul name of the service)", s.Labels["SERVICE_NAME"], name)
				}
				if net := s.Labels["SERVICE_NETWORK"]; net == "" || !slices.ContainsFunc(s.Networks, func(n string) bool { return f.Networks[n].Name == net }) {
					t.Errorf("label SERVICE_NETWORK = %q is none of the service's networks %v", net, s.Networks)
				}
			}
		})
	}
	for name, sec := range f.Secrets {
		if sec["external"] != true {
			t.Errorf("secret %s is not external (created with docker secret create, never in the repository): %v", name, sec)
		}
	}
	for name, n := range f.Networks {
		if name != "hostnet" && (n.Driver != "overlay" || n.External) {
			t.Errorf("network %s: want a stack-owned overlay, got %+v", name, n)
		}
	}
}

func checkNoInlineSecrets(t *testing.T, s service) {
	t.Helper()
	for k, v := range s.Environment {
		if secretish.MatchString(k) && !strings.HasSuffix(k, "_FILE") {
			t.Errorf("environment %s=%q looks like an inline secret: use a Swarm secret and *_FILE", k, v)
		}
		if strings.HasSuffix(k, "_FILE") && secretish.MatchString(k) && !strings.HasPrefix(v, "/run/secrets/") {
			t.Errorf("environment %s=%q: secrets come from /run/secrets", k, v)
		}
	}
}

func TestHeartwoodService(t *testing.T) {
	s := load(t, "platform.yml").Services["heartwood"]
	if s.Deploy.Mode != "global" {
		t.Errorf("deploy.mode = %q, want global", s.Deploy.Mode)
	}
	for _, v := range []string{
		"/var/run/docker.sock:/var/run/docker.sock",
		"/var/lib/docker/containers:/var/lib/docker/containers:ro",
		"/proc:/host/proc:ro",
		"/sys/fs/cgroup:/host/sys/fs/cgroup:ro",
		"heartwood-data:/var/lib/heartwood",
	} {
		if !slices.Contains(s.Volumes, v) {
			t.Errorf("volume %s missing: %v", v, s.Volumes)
		}
	}
	for k, v := range map[string]string{
		"HEARTWOOD_WATCHMAN_PROC_ROOT":      "/host/proc",
		"HEARTWOOD_WATCHMAN_CGROUP_ROOT":    "/host/sys/fs/cgroup",
		"HEARTWOOD_SHIPPER_CONTAINERS_ROOT": "/var/lib/docker/containers",
		"HEARTWOOD_API_TOKEN_FILE":          "/run/secrets/heartwood_api_token",
	} {
		if s.Environment[k] != v {
			t.Errorf("%s = %q, want %q", k, s.Environment[k], v)
		}
	}
	// The agent runs on the host network: its Elasticsearch and Consul must
	// be addresses that resolve there, never a Swarm service name.
	for _, k := range []string{"HEARTWOOD_ES_URL", "HEARTWOOD_CONSUL_ADDR"} {
		if !strings.Contains(s.Environment[k], "127.0.0.1") {
			t.Errorf("%s = %q is not reachable from the host network", k, s.Environment[k])
		}
	}
	if hc := s.Healthcheck; hc == nil || len(hc.Test) < 3 || !slices.Equal(hc.Test[:3], []string{"CMD", "/heartwood", "healthcheck"}) {
		t.Errorf("health check = %+v, want the heartwood healthcheck subcommand", hc)
	} else if !slices.Contains(hc.Test, "--live") {
		// Swarm kills unhealthy tasks: a readiness check would restart every
		// agent of the cluster during an Elasticsearch or Consul outage.
		t.Errorf("health check = %v, want liveness (--live)", hc.Test)
	}
	if s.Deploy.UpdateConfig["failure_action"] != "rollback" {
		t.Errorf("update_config.failure_action = %v, want rollback", s.Deploy.UpdateConfig["failure_action"])
	}
	if s.Labels["SERVICE_IGNORE"] == "" {
		t.Error("the agent must not register itself (SERVICE_IGNORE)")
	}
}

func TestLocalVariant(t *testing.T) {
	base := load(t, "platform.yml")
	local := load(t, "local/local.yml")
	if local.Version != base.Version {
		t.Errorf("version %q, want the production file's %q", local.Version, base.Version)
	}
	if len(local.Networks)+len(local.Secrets)+len(local.Configs) != 0 {
		t.Error("the local variant adds networks, secrets or configs: it must only override services")
	}
	for name, s := range local.Services {
		b, ok := base.Services[name]
		if !ok {
			t.Errorf("service %s is not in platform.yml", name)
			continue
		}
		if s.Image != "" && !localImage.MatchString(s.Image) {
			t.Errorf("%s: local image %q is not a required LOCAL_*_IMAGE variable", name, s.Image)
		}
		if s.Networks != nil || s.Volumes != nil || s.Secrets != nil {
			t.Errorf("%s: the local variant changes networks, volumes or secrets", name)
		}
		// Ports may only switch a production port to host mode (no IPVS for
		// the routing mesh here), never publish another one.
		if len(s.Ports) != len(wantPorts[name]) {
			t.Errorf("%s: local ports %v do not replace the production ports %v one for one", name, s.Ports, wantPorts[name])
		}
		for i, p := range s.Ports {
			m, ok := p.(map[string]any)
			if !ok || m["mode"] != "host" || i >= len(wantPorts[name]) ||
				!strings.HasSuffix(wantPorts[name][i], fmt.Sprintf(":%v", m["target"])) {
				t.Errorf("%s: local port %v is not the production port %v in host mode", name, p, wantPorts[name])
			}
		}
		if s.Image != "" && !oneShot(b) && b.Healthcheck != nil && strings.Contains(strings.Join(b.Healthcheck.Test, " "), "curl") &&
			(s.Healthcheck == nil || strings.Contains(strings.Join(s.Healthcheck.Test, " "), "curl")) {
			t.Errorf("%s: the production health check uses curl, which the local image lacks", name)
		}
		checkNoInlineSecrets(t, s)
	}
	// Every image of a long-running service is replaced by a local build,
	// except Heartwood's, which is the same image everywhere.
	for name, b := range base.Services {
		s := local.Services[name]
		if s.Image == "" && !strings.HasPrefix(b.Image, "heartwood:") && (s.Deploy.Replicas == nil || *s.Deploy.Replicas != 0) {
			t.Errorf("%s: upstream image %s is not replaced by a local build and not scaled to 0", name, b.Image)
		}
	}
	for _, name := range []string{"kibana", "heartwood-setup"} {
		if r := local.Services[name].Deploy.Replicas; r == nil || *r != 0 {
			t.Errorf("%s must have 0 replicas locally (no Kibana here)", name)
		}
	}
}
