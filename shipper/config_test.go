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
		{"max removed readers", func(c *Config) { c.MaxRemovedReaders = 0 }, "shipper.max-removed-readers: must be > 0"},
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

// TestLabelsCannotTargetAgentStreams: a container's dataset/namespace
// labels cannot send its logs into the agent's own streams (dead letters,
// watchman decisions, or any heartwood.* dataset); such a label is
// reported as malformed and the defaults are used.
func TestLabelsCannotTargetAgentStreams(t *testing.T) {
	custom := DefaultConfig()
	custom.Output.DeadLetter.Dataset, custom.Output.DeadLetter.Namespace = "quarantine", "ops"
	tests := []struct {
		name   string
		cfg    Config
		labels map[string]string
		index  string
	}{
		{"dead letters", DefaultConfig(), map[string]string{LabelDataset: "heartwood.deadletter"}, "logs-docker.container-default"},
		{"watchman decisions", DefaultConfig(), map[string]string{LabelDataset: "heartwood.watchman", LabelNamespace: "prod"}, "logs-docker.container-prod"},
		{"any heartwood dataset", DefaultConfig(), map[string]string{LabelDataset: "heartwood"}, "logs-docker.container-default"},
		{"configured dead-letter stream", custom, map[string]string{LabelDataset: "quarantine", LabelNamespace: "ops"}, "logs-docker.container-default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := settingsFor(tt.cfg, &inventory.Container{Labels: tt.labels})
			if s.index() != tt.index || len(s.problems) == 0 {
				t.Fatalf("index %s, problems %q; want %s and the label reported", s.index(), s.problems, tt.index)
			}
		})
	}
	ok := settingsFor(DefaultConfig(), &inventory.Container{Labels: map[string]string{LabelDataset: "heartwoodish.app"}})
	if ok.index() != "logs-heartwoodish.app-default" || len(ok.problems) != 0 {
		t.Fatalf("an unrelated dataset was rejected: %s %q", ok.index(), ok.problems)
	}
}

// FuzzLabelSettings: container labels come from container owners; any
// values give settings without a panic, a valid data stream name, and never
// one of the agent's own streams.
func FuzzLabelSettings(f *testing.F) {
	f.Add("false", "shop.web", "prod", "true", `^\s`, "true", "after", "java")
	f.Add("maybe", "heartwood.deadletter", "default", "x", "(", "no", "sideways", "cobol")
	f.Add("", "A-B", "ns ", "", "", "", "", "")
	cfg := DefaultConfig()
	f.Fuzz(func(t *testing.T, enable, dataset, namespace, js, pattern, negate, match, preset string) {
		c := &inventory.Container{Labels: map[string]string{LabelEnable: enable, LabelDataset: dataset, LabelNamespace: namespace,
			LabelJSON: js, LabelMultilinePattern: pattern, LabelMultilineNegate: negate, LabelMultilineMatch: match, LabelMultilinePreset: preset}}
		s := settingsFor(cfg, c)
		if err := validDataStreamPart(s.dataset); err != nil {
			t.Fatalf("dataset %q: %v", s.dataset, err)
		}
		if err := validDataStreamPart(s.namespace); err != nil {
			t.Fatalf("namespace %q: %v", s.namespace, err)
		}
		if strings.HasPrefix(s.dataset, "heartwood") && (s.dataset == "heartwood" || strings.HasPrefix(s.dataset, "heartwood.")) {
			t.Fatalf("labels reached the agent's stream %s", s.index())
		}
		if s.multiline.Enabled() && s.multiline.MaxBytes != int(cfg.MaxEventBytes) {
			t.Fatalf("multiline max bytes %d", s.multiline.MaxBytes)
		}
	})
}

// TestDeprecatedOutputInflightAlias: output.max-inflight-bytes is still
// accepted; the one in-flight budget is the smaller of the two settings,
// and the writer gets no budget of its own.
func TestDeprecatedOutputInflightAlias(t *testing.T) {
	c := DefaultConfig()
	if got := c.inflightBytes(); got != int64(c.MaxInflightBytes) {
		t.Fatalf("budget %d, want max-inflight-bytes %d", got, c.MaxInflightBytes)
	}
	c.Output.MaxInflightBytes = 4 << 20
	if err := c.Validate(); err != nil {
		t.Fatalf("deprecated alias rejected: %v", err)
	}
	if got := c.inflightBytes(); got != 4<<20 {
		t.Fatalf("budget %d, want the smaller alias 4MiB", got)
	}
	if w := c.Output.writerConfig(); w.MaxInflightBytes != 0 {
		t.Fatalf("writer has its own budget of %v", w.MaxInflightBytes)
	}
	c.Output.MaxInflightBytes = 1
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shipper.output.max-inflight-bytes") || !strings.Contains(err.Error(), "deprecated") {
		t.Fatalf("Validate() = %v, want an error naming the deprecated setting", err)
	}
}
