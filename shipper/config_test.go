package shipper

import (
	"strings"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
)

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"dataset dash", func(c *Config) { c.Dataset = "a-b" }, "shipper.dataset: must not contain '-'"},
		{"namespace upper", func(c *Config) { c.Namespace = "Prod" }, "shipper.namespace: must be lower case"},
		{"small event", func(c *Config) { c.MaxEventBytes = 10 }, "shipper.max-event-bytes"},
		{"inflight below batch", func(c *Config) { c.MaxInflightBytes = 1024 }, "shipper.max-inflight-bytes"},
		{"poll", func(c *Config) { c.PollInterval = 0 }, "shipper.poll-interval: must be > 0"},
		{"priority", func(c *Config) { c.Template.Priority = 100 }, "shipper.template.priority"},
		{"multiline timeout", func(c *Config) { c.Multiline.Timeout = -time.Second }, "shipper.multiline.timeout"},
		{"headroom", func(c *Config) { c.HeadroomWarn = 2 }, "shipper.headroom-warn"},
		{"output", func(c *Config) { c.Output.Workers = 0 }, "shipper.output."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestSettingsFromLabels(t *testing.T) {
	cfg := DefaultConfig()
	tests := []struct {
		name     string
		labels   map[string]string
		enabled  bool
		json     bool
		index    string
		ml       string
		problems int
	}{
		{name: "defaults", labels: nil, enabled: true, index: "logs-docker.container-default"},
		{name: "opt out", labels: map[string]string{LabelEnable: "false"}, enabled: false, index: "logs-docker.container-default"},
		{name: "overrides", labels: map[string]string{LabelDataset: "shop.web", LabelNamespace: "prod", LabelJSON: "true",
			LabelMultilinePreset: "Java"}, enabled: true, json: true, index: "logs-shop.web-prod", ml: "java"},
		{name: "pattern", labels: map[string]string{LabelMultilinePattern: `^\s`, LabelMultilineMatch: "after"},
			enabled: true, index: "logs-docker.container-default", ml: `^\s`},
		{name: "bad values ignored", labels: map[string]string{LabelEnable: "maybe", LabelDataset: "a-b",
			LabelMultilinePattern: "(", LabelMultilinePreset: ""}, enabled: true, index: "logs-docker.container-default", problems: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settingsFor(cfg, &inventory.Container{Labels: tt.labels})
			if s.enabled != tt.enabled || s.json != tt.json || s.index() != tt.index ||
				s.multiline.Preset+s.multiline.Pattern != tt.ml || len(s.problems) != tt.problems {
				t.Fatalf("settings = %+v", s)
			}
		})
	}
}

func TestSourceOf(t *testing.T) {
	s := &Shipper{cfg: DefaultConfig(), deps: Deps{SelfContainerID: "5e1f12345678"}}
	s.cfg.Selector = []string{"team=shop"}
	c := func(id, driver string, labels map[string]string) *inventory.Container {
		return &inventory.Container{ID: id, LogDriver: driver, Labels: labels}
	}
	shop := map[string]string{"team": "shop"}
	tests := []struct {
		name string
		c    *inventory.Container
		want logSource
	}{
		{"json-file", c("a", "json-file", shop), fileLogs},
		{"self", c("5e1f123456789abcdef", "json-file", shop), skipLogs},
		{"not selected", c("b", "json-file", nil), skipLogs},
		{"opted out", c("d", "json-file", map[string]string{"team": "shop", LabelEnable: "false"}), skipLogs},
		{"none driver", c("e", "none", shop), skipLogs},
		{"local without docker client", c("f", "local", shop), skipLogs},
	}
	for _, tt := range tests {
		if got := s.sourceOf(tt.c, settingsFor(s.cfg, tt.c)); got != tt.want {
			t.Errorf("%s: sourceOf = %v, want %v", tt.name, got, tt.want)
		}
	}
}
