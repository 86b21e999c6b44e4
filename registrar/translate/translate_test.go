package translate

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/inventory"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// base returns a running bridge-mode container like `docker run -d
// --name web -p 8080:80 nginx:1.25`.
func base() *inventory.Container {
	return &inventory.Container{
		ID:          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Name:        "web",
		Image:       "registry.example:5000/library/nginx:1.25",
		State:       inventory.State{Status: "running", Running: true, StartedAt: time.Unix(1700000000, 0).UTC()},
		NetworkMode: "bridge",
		Networks:    []inventory.Network{{Name: "bridge", ID: "b1b1b1b1b1b1b1b1", IPAddress: "172.17.0.5", IPv6: "fd00::5"}},
		Ports:       []inventory.Port{{ContainerPort: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}, {ContainerPort: 80, Proto: "tcp", HostIP: "::", HostPort: 8080}},
	}
}

func with(f func(c *inventory.Container)) *inventory.Container {
	c := base()
	f(c)
	return c
}

func defaultOpts() Options {
	return Options{Node: "node1", HostIP: "10.0.0.1", DockerHealth: true}
}

type goldenService struct {
	Registration  *consulapi.AgentServiceRegistration `json:"registration"`
	HealthCheckID string                              `json:"health_check_id,omitempty"`
	HealthStatus  string                              `json:"health_status,omitempty"`
	Warnings      []string                            `json:"warnings,omitempty"`
}

type golden struct {
	Services []goldenService `json:"services"`
	Skipped  []Skip          `json:"skipped,omitempty"`
}

func TestTranslateGolden(t *testing.T) {
	tests := []struct {
		name string
		c    *inventory.Container
		o    func(o *Options)
	}{
		{name: "default_published", c: base()},
		{name: "not_running", c: with(func(c *inventory.Container) { c.State.Running = false; c.State.Status = "exited" })},
		{name: "restarting", c: with(func(c *inventory.Container) { c.State.Restarting = true })},
		{name: "unpublished_skipped", c: with(func(c *inventory.Container) {
			c.Ports = []inventory.Port{{ContainerPort: 80, Proto: "tcp"}}
		})},
		{name: "internal", c: with(func(c *inventory.Container) {
			c.Ports = append(c.Ports, inventory.Port{ContainerPort: 9000, Proto: "tcp"})
		}), o: func(o *Options) { o.Internal = true }},
		{name: "several_ports_and_udp", c: with(func(c *inventory.Container) {
			c.Env = []string{"SERVICE_NAME=dns", "SERVICE_53_TAGS=resolver"}
			c.Ports = []inventory.Port{
				{ContainerPort: 53, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 5353},
				{ContainerPort: 53, Proto: "udp", HostIP: "0.0.0.0", HostPort: 5353},
				{ContainerPort: 8080, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 18080},
			}
		})},
		{name: "per_port_names_and_tags", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{
				"SERVICE_80_NAME": "http", "SERVICE_443_NAME": "https",
				"SERVICE_TAGS": `prod,urlprefix-/api\,v2`, "SERVICE_443_TAGS": "tls",
			}
			c.Ports = append(c.Ports, inventory.Port{ContainerPort: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443})
		}), o: func(o *Options) { o.Tags = []string{"global", "prod"} }},
		{name: "label_beats_env", c: with(func(c *inventory.Container) {
			c.Env = []string{"SERVICE_NAME=fromenv", "SERVICE_REGION=us1", "SECRET=hunter2"}
			c.Labels = map[string]string{"SERVICE_NAME": "fromlabel"}
		})},
		{name: "ignore_container", c: with(func(c *inventory.Container) { c.Labels = map[string]string{"SERVICE_IGNORE": "true"} })},
		{name: "ignore_port", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_443_IGNORE": "1"}
			c.Ports = append(c.Ports, inventory.Port{ContainerPort: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443})
		})},
		{name: "custom_id_and_meta", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_ID": "web-primary", "SERVICE_REGION": "us2", "SERVICE_Version": "1.2", "SERVICE_CHECK_TCP": "true", "SERVICE_CHECK_INTERVAL": "5s", "SERVICE_CHECK_TIMEOUT": "1s"}
		})},
		{name: "explicit_without_name", c: base(), o: func(o *Options) { o.Explicit = true }},
		{name: "explicit_with_port_name", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_443_NAME": "tls"}
			c.Ports = append(c.Ports, inventory.Port{ContainerPort: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443})
		}), o: func(o *Options) { o.Explicit = true }},
		{name: "check_http", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_HTTP": "/health", "SERVICE_CHECK_HTTP_METHOD": "HEAD", "SERVICE_CHECK_INITIAL_STATUS": "passing", "SERVICE_CHECK_DEREGISTER_AFTER": "10m", "SERVICE_CHECK_TCP": "yes"}
		})},
		{name: "check_https", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_HTTPS": "status", "SERVICE_CHECK_TLS_SKIP_VERIFY": "1", "SERVICE_CHECK_TLS_SERVER_NAME": "web.internal", "SERVICE_CHECK_TIMEOUT": "2s"}
		})},
		{name: "check_grpc_tls", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_GRPC": "true", "SERVICE_CHECK_GRPC_USE_TLS": "true", "SERVICE_CHECK_TLS_SKIP_VERIFY": "true", "SERVICE_CHECK_INTERVAL": "3s"}
		})},
		{name: "check_ttl", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_TTL": "30s", "SERVICE_CHECK_INTERVAL": "5s"}
		})},
		{name: "check_script", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_SCRIPT": "nc -z $SERVICE_IP $SERVICE_PORT"}
		}), o: func(o *Options) { o.AllowScriptChecks = true }},
		{name: "check_script_disallowed", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_SCRIPT": "nc -z $SERVICE_IP $SERVICE_PORT"}
		})},
		{name: "check_cmd_unsupported", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_CMD": "/bin/check"}
		})},
		{name: "check_bad_interval", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECK_HTTP": "/", "SERVICE_CHECK_INTERVAL": "often"}
		})},
		{name: "checks_json", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{
				"SERVICE_CHECK_HTTP": "/health",
				"SERVICE_CHECKS": `[{"id":"ready","http":"/ready","header":{"X-Probe":["consul"]},"interval":"2s","success_before_passing":2,"failures_before_critical":3},
				 {"id":"port","tcp":true},{"id":"grpc","grpc":"my.Health","use_tls":true,"tls_server_name":"svc"},
				 {"id":"hb","ttl":"1m"},{"id":"bad","tcp":true,"ttl":"1m"},{"id":"ready","tcp":true},{"id":"bad id"}]`,
			}
		})},
		{name: "checks_json_malformed", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_CHECKS": `[{"id":"x","htp":"/"}]`}
		})},
		{name: "docker_health", c: with(func(c *inventory.Container) {
			c.Healthcheck = &inventory.Healthcheck{Test: []string{"CMD", "true"}, Interval: time.Second}
			c.State.Health = "healthy"
		})},
		{name: "docker_health_starting_disabled_per_port", c: with(func(c *inventory.Container) {
			c.Healthcheck = &inventory.Healthcheck{Test: []string{"CMD", "true"}}
			c.State.Health = "starting"
			c.Labels = map[string]string{"SERVICE_443_CHECK_DOCKER_HEALTH": "false"}
			c.Ports = append(c.Ports, inventory.Port{ContainerPort: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443})
		})},
		{name: "meta_limits", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{
				"SERVICE_FOO.BAR": "dot", "SERVICE_CONSUL-X": "reserved", "SERVICE_BIG": strings.Repeat("v", 513),
				"SERVICE_MANAGED_BY": "me", "SERVICE_HEARTWOOD_NODE": "x", "SERVICE_" + strings.Repeat("k", 129): "long",
				"SERVICE_OK": "fine",
			}
			for i := 0; i < 70; i++ {
				c.Labels["SERVICE_M"+string(rune('a'+i/26))+string(rune('a'+i%26))] = "v"
			}
		})},
		{name: "invalid_names", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{"SERVICE_80_NAME": "bad name", "SERVICE_443_NAME": "under_score", "SERVICE_8443_ID": "a/b"}
			c.Ports = append(c.Ports,
				inventory.Port{ContainerPort: 443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8443},
				inventory.Port{ContainerPort: 8443, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 9443})
		})},
		{name: "extensions", c: with(func(c *inventory.Container) {
			c.Labels = map[string]string{
				"SERVICE_ENABLE_TAG_OVERRIDE": "true", "SERVICE_WEIGHT_PASSING": "10", "SERVICE_WEIGHT_WARNING": "x",
				"SERVICE_TAGGED_ADDRESS_WAN": "203.0.113.7:80", "SERVICE_TAGGED_ADDRESS_LAN_IPV6": "[fd00::5]:80", "SERVICE_TAGGED_ADDRESS_BAD": "nope",
			}
		})},
		{name: "host_ip_binding_no_flag", c: with(func(c *inventory.Container) {
			c.Ports = []inventory.Port{{ContainerPort: 80, Proto: "tcp", HostIP: "192.168.1.9", HostPort: 8080}}
		}), o: func(o *Options) { o.HostIP = "" }},
		{name: "no_host_ip_anywhere", c: base(), o: func(o *Options) { o.HostIP = "" }},
		{name: "ipv6_binding", c: base(), o: func(o *Options) { o.HostIP = ""; o.IPv6 = true }},
		{name: "ipv6_internal", c: base(), o: func(o *Options) { o.Internal = true; o.IPv6 = true }},
		{name: "ip_from_label", c: with(func(c *inventory.Container) { c.Labels = map[string]string{"ip": "192.0.2.10/24"} }),
			o: func(o *Options) { o.IPFromLabel = "ip" }},
		{name: "ip_from_label_missing", c: base(), o: func(o *Options) { o.IPFromLabel = "ip" }},
		{name: "host_network", c: with(func(c *inventory.Container) {
			c.NetworkMode = "host"
			c.Networks = []inventory.Network{{Name: "host", ID: "h"}}
			c.Ports = []inventory.Port{{ContainerPort: 9100, Proto: "tcp"}}
		})},
		{name: "container_network_mode", c: with(func(c *inventory.Container) {
			c.NetworkMode = "container:aaaabbbbccccdddd"
			c.Networks = nil
			c.Ports = []inventory.Port{{ContainerPort: 8500, Proto: "tcp"}}
		})},
		{name: "container_network_mode_missing", c: with(func(c *inventory.Container) {
			c.NetworkMode = "container:ffff"
			c.Networks = nil
			c.Ports = []inventory.Port{{ContainerPort: 8500, Proto: "tcp"}}
		})},
		{name: "network_choice", c: with(func(c *inventory.Container) {
			c.NetworkMode = "appnet"
			c.Networks = []inventory.Network{
				{Name: "appnet", ID: "a1", IPAddress: "10.1.0.2"}, {Name: "backend", ID: "b2", IPAddress: "10.2.0.2"}, {Name: "monitoring", ID: "m3", IPAddress: "10.3.0.2"},
			}
			c.Ports = []inventory.Port{{ContainerPort: 80, Proto: "tcp"}, {ContainerPort: 9090, Proto: "tcp"}, {ContainerPort: 5432, Proto: "tcp"}}
			c.Labels = map[string]string{"SERVICE_9090_NETWORK": "monitoring", "SERVICE_5432_NETWORK": "nosuch"}
		}), o: func(o *Options) { o.Internal = true; o.Network = "backend" }},
		{name: "network_mode_default", c: with(func(c *inventory.Container) {
			c.NetworkMode = "appnet"
			c.Networks = []inventory.Network{{Name: "appnet", ID: "a1", IPAddress: "10.1.0.2"}, {Name: "bridge", ID: "b", IPAddress: "172.17.0.9"}}
		}), o: func(o *Options) { o.Internal = true }},
		{name: "swarm_task", c: with(func(c *inventory.Container) {
			c.Name = "shop_api.2.x8f7a6s5d4f3g2h1"
			c.Image = "shop/api:3@sha256:abcd"
			c.NetworkMode = "default"
			c.Networks = []inventory.Network{{Name: "ingress", ID: "i", IPAddress: "10.0.0.9"}, {Name: "shop_default", ID: "s", IPAddress: "10.0.1.9"}}
			c.Ports = []inventory.Port{{ContainerPort: 8000, Proto: "tcp"}}
			c.Swarm = &inventory.SwarmTask{ServiceID: "svc1", ServiceName: "shop_api", TaskID: "x8f7a6s5d4f3g2h1", TaskName: "shop_api.2.x8f7a6s5d4f3g2h1", Slot: 2, NodeID: "n1", Stack: "shop"}
		})},
		{name: "swarm_global_named", c: with(func(c *inventory.Container) {
			c.Name = "mon_exporter.n1.t1"
			c.Networks = []inventory.Network{{Name: "ingress", ID: "i", IPAddress: "10.0.0.9"}, {Name: "mon_net", ID: "m", IPAddress: "10.0.2.9"}}
			c.Ports = []inventory.Port{{ContainerPort: 9100, Proto: "tcp"}}
			c.Labels = map[string]string{"SERVICE_NAME": "node-exporter"}
			c.Swarm = &inventory.SwarmTask{ServiceID: "svc2", ServiceName: "mon_exporter", TaskID: "t1", NodeID: "n1", Stack: "mon"}
		})},
		{name: "swarm_host_network", c: with(func(c *inventory.Container) {
			c.Name = "mon_exporter.n1.t1"
			c.NetworkMode = "host"
			c.Networks = []inventory.Network{{Name: "host", ID: "h"}}
			c.Ports = []inventory.Port{{ContainerPort: 9100, Proto: "tcp"}}
			c.Swarm = &inventory.SwarmTask{ServiceID: "svc2", ServiceName: "mon_exporter", TaskID: "t1", NodeID: "n1", Stack: "mon"}
		})},
		{name: "require_labels", c: base(), o: func(o *Options) { o.RequireLabels = []string{"team=ml"} }},
		{name: "no_ports", c: with(func(c *inventory.Container) { c.Ports = nil })},
		{name: "sctp", c: with(func(c *inventory.Container) {
			c.Ports = []inventory.Port{{ContainerPort: 3868, Proto: "sctp", HostIP: "0.0.0.0", HostPort: 3868}}
		})},
	}
	other := &inventory.Container{ID: "aaaabbbbccccdddd0000", Name: "pod", Networks: []inventory.Network{{Name: "bridge", IPAddress: "172.17.0.77"}}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := defaultOpts()
			o.Lookup = func(ref string) (*inventory.Container, bool) {
				if strings.HasPrefix(other.ID, ref) {
					return other, true
				}
				return nil, false
			}
			if tc.o != nil {
				tc.o(&o)
			}
			res := Translate(tc.c, o)
			checkInvariants(t, res)
			var g golden
			for _, s := range res.Services {
				g.Services = append(g.Services, goldenService{s.Registration(), s.HealthCheckID, s.HealthStatus, s.Warnings})
			}
			g.Skipped = res.Skipped
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			if strings.Contains(string(got), "hunter2") {
				t.Fatalf("non-SERVICE_ env value leaked into the output")
			}
			file := filepath.Join("testdata", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from golden:\n%s", file, got)
			}
			// Deterministic: translating again gives the same hashes.
			again := Translate(tc.c, o)
			for i := range again.Services {
				if again.Services[i].Hash != res.Services[i].Hash {
					t.Errorf("hash not stable for %s", res.Services[i].ID)
				}
			}
		})
	}
}

var metaKeyRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

// checkInvariants asserts what every translation must satisfy whatever the
// input: registrations Consul accepts, no setting leaked into Meta.
func checkInvariants(t *testing.T, res Result) {
	t.Helper()
	ids := map[string]bool{}
	for _, s := range res.Services {
		if ids[s.ID] {
			t.Fatalf("duplicate service ID %q", s.ID)
		}
		ids[s.ID] = true
		if validName(s.Name) != nil || validID(s.ID) != nil {
			t.Fatalf("invalid name/id %q %q", s.Name, s.ID)
		}
		if len(s.Meta) > MaxMetaPairs {
			t.Fatalf("%d meta pairs", len(s.Meta))
		}
		for k, v := range s.Meta {
			if !metaKeyRe.MatchString(k) || len(v) > MaxMetaValueLen || strings.HasPrefix(k, "consul-") {
				t.Fatalf("meta %q=%q violates Consul limits", k, v)
			}
			if strings.HasPrefix(k, "check_") || k == "ignore" || k == "name" || k == "tags" || k == "id" || k == "checks" {
				t.Fatalf("setting %q leaked into Meta", k)
			}
		}
		if s.Meta[MetaManagedBy] != ManagedByValue || s.Meta[MetaHash] != s.Hash || s.Meta[MetaContainer] == "" {
			t.Fatalf("ownership meta missing: %v", s.Meta)
		}
		checkIDs := map[string]bool{}
		for _, c := range s.Checks {
			if c.CheckID == "" || checkIDs[c.CheckID] {
				t.Fatalf("check without unique ID in %s", s.ID)
			}
			checkIDs[c.CheckID] = true
			if err := validateCheck(c); err != nil {
				t.Fatalf("invalid check %s: %v", c.CheckID, err)
			}
		}
		if s.Port < 0 || s.Port > 65535 {
			t.Fatalf("port %d", s.Port)
		}
	}
}

func TestHashIgnoresHealthStatus(t *testing.T) {
	c := with(func(c *inventory.Container) {
		c.Healthcheck = &inventory.Healthcheck{Test: []string{"CMD", "true"}}
		c.State.Health = "healthy"
	})
	a := Translate(c, defaultOpts()).Services[0]
	c.State.Health = "unhealthy"
	b := Translate(c, defaultOpts()).Services[0]
	if a.Hash != b.Hash {
		t.Errorf("health change altered the hash")
	}
	if a.HealthStatus != "passing" || b.HealthStatus != "critical" {
		t.Errorf("statuses %q %q", a.HealthStatus, b.HealthStatus)
	}
	c.Labels = map[string]string{"SERVICE_TAGS": "x"}
	if Translate(c, defaultOpts()).Services[0].Hash == a.Hash {
		t.Errorf("tag change did not alter the hash")
	}
}

func TestParseChecks(t *testing.T) {
	tests := []struct {
		in      string
		n       int
		wantErr bool
	}{
		{`[]`, 0, false},
		{`[{"id":"a","tcp":true}]`, 1, false},
		{`[{"id":"a","tcp":true},{"id":""}]`, 1, true},
		{`{"id":"a"}`, 0, true},
		{`[{"id":"a","unknown":1}]`, 0, true},
		{`[] []`, 0, true},
		{`[` + strings.Repeat(`{"id":"a"},`, 20) + `{"id":"b"}]`, MaxChecks, true},
	}
	for _, tc := range tests {
		got, err := ParseChecks(tc.in)
		if len(got) != tc.n || (err != nil) != tc.wantErr {
			t.Errorf("ParseChecks(%.40q) = %d, %v", tc.in, len(got), err)
		}
	}
}

func FuzzTranslate(f *testing.F) {
	f.Add("SERVICE_NAME=web\nSERVICE_80_CHECK_HTTP=/h", "SERVICE_CHECKS", `[{"id":"a","tcp":true}]`, "SERVICE_TAGS", `a\,b`, uint16(80), false)
	f.Add("SERVICE_80_ID=x/y", "SERVICE_80_NETWORK", "bridge", "SERVICE_CHECK_INTERVAL", "x", uint16(53), true)
	f.Add("SERVICE_FOO.BAR=1", "SERVICE_WEIGHT_PASSING", "-1", "SERVICE_TAGGED_ADDRESS_X", "[::1]:99999", uint16(0), false)
	f.Fuzz(func(t *testing.T, env, k1, v1, k2, v2 string, port uint16, internal bool) {
		c := base()
		c.Env = strings.Split(env, "\n")
		c.Labels = map[string]string{k1: v1, k2: v2}
		c.Ports = append(c.Ports, inventory.Port{ContainerPort: port, Proto: "udp", HostIP: "0.0.0.0", HostPort: port})
		c.Healthcheck = &inventory.Healthcheck{Test: []string{"CMD", "x"}}
		o := defaultOpts()
		o.Internal = internal
		res := Translate(c, o)
		checkInvariants(t, res)
		if _, err := json.Marshal(res.Skipped); err != nil {
			t.Fatal(err)
		}
		for _, s := range res.Services {
			if _, err := json.Marshal(s.Registration()); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzParseChecks(f *testing.F) {
	f.Add(`[{"id":"a","http":"/x","header":{"A":["b"]}}]`)
	f.Add(`[{"id":"g","grpc":"","use_tls":true}]`)
	f.Add(`not json`)
	f.Fuzz(func(t *testing.T, raw string) {
		list, _ := ParseChecks(raw)
		if len(list) > MaxChecks {
			t.Fatalf("%d checks", len(list))
		}
		for _, s := range list {
			if !checkIDOK(s.ID) {
				t.Fatalf("bad id %q kept", s.ID)
			}
			if c, err := s.build("svc", "10.0.0.1", 80, "10s"); err == nil {
				if validateCheck(c) != nil {
					t.Fatalf("built an invalid check")
				}
			}
		}
	})
}
