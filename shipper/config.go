// Package shipper ships every container log line to Elasticsearch exactly
// once, as ECS documents in logs-<dataset>-<namespace> data streams.
//
// It tails Docker's json-file logs directly (following rotation by file
// identity), reassembles Docker's 16 KiB partial lines, groups multi-line
// events, optionally decodes JSON logs, and writes through shipper/esout
// with a deterministic _id per event derived from its position in its file,
// so that replays after a crash, restart or retry are no-ops. Per-container
// checkpoints advance only past acknowledged events.
//
// Subpackages, each with one job: jsonfile (record decoder), partial
// (16 KiB reassembly), multiline (event grouping), jsonlog (JSON logs), ecs
// (document encoding), template (index template), checkpoint (persistent
// offsets), tail (rotation-aware file follower), esout (bulk writer).
package shipper

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
	"github.com/heartwood-ops/heartwood/internal/esschema"
	"github.com/heartwood-ops/heartwood/shipper/esout"
)

// ByteSize is a size in bytes with human units (e.g. 32MiB, 512k).
type ByteSize = config.ByteSize

// Config configures the shipper.
type Config struct {
	Enabled bool `yaml:"enabled" help:"ship container logs to Elasticsearch"`
	// ContainersRoot is Docker's containers directory as seen by the agent.
	ContainersRoot string `yaml:"containers-root" help:"Docker's containers directory holding <id>/<id>-json.log (mount it read-only when the agent runs in a container)"`
	// Selector limits shipping to containers that carry every listed label
	// ("key" or "key=value"); empty ships all containers.
	Selector []string `yaml:"selector" help:"ship only containers carrying all these labels (key or key=value); empty ships every container"`
	// Dataset and Namespace name the data stream logs-<dataset>-<namespace>;
	// containers override them with labels heartwood.logs.dataset/namespace.
	Dataset   string `yaml:"dataset" help:"default data stream dataset (logs-<dataset>-<namespace>)"`
	Namespace string `yaml:"namespace" help:"default data stream namespace (logs-<dataset>-<namespace>)"`
	// MaxEventBytes bounds one event (a reassembled or multi-line message);
	// longer ones are truncated and tagged.
	MaxEventBytes ByteSize `yaml:"max-event-bytes" help:"largest event (reassembled line or multi-line group); longer ones are truncated and tagged"`
	// MaxInflightBytes bounds the documents read but not yet acknowledged;
	// reading stops when it is full (Docker's files are the buffer).
	MaxInflightBytes ByteSize `yaml:"max-inflight-bytes" help:"memory bound for read, not yet acknowledged documents (reading pauses when full)"`
	// BatchBytes is the size at which a reader hands a batch to the output.
	BatchBytes ByteSize `yaml:"batch-bytes" help:"size at which a container's reader hands a batch of documents to the output"`
	// Multiline holds the defaults for containers that enable multiline.
	Multiline MultilineConfig `yaml:"multiline"`
	// CheckpointInterval batches checkpoint writes.
	CheckpointInterval time.Duration `yaml:"checkpoint-interval" help:"how often acknowledged positions are written to the data directory"`
	// PollInterval is how often an idle reader looks for new data.
	PollInterval time.Duration `yaml:"poll-interval" help:"how often an idle reader checks its log file for new data and rotation"`
	// RemovalGrace bounds how long a removed container's reader keeps
	// waiting for its last acknowledgements.
	RemovalGrace time.Duration `yaml:"removal-grace" help:"how long a removed container's reader may take to drain and get its last lines acknowledged"`
	// MaxRemovedReaders bounds how many removed containers' readers may
	// keep their deleted log files open at once while they drain; beyond
	// it the longest-removed give up as if their removal grace had passed.
	MaxRemovedReaders int `yaml:"max-removed-readers" help:"removed containers whose readers may keep their deleted log files open at once to drain them; beyond this the longest-removed give up and their unread logs count as lost"`
	// MaxDeletedFiles bounds the rotated files per container that Docker
	// deleted before they were read and that are kept open to be read.
	MaxDeletedFiles int `yaml:"max-deleted-files" help:"rotated log files per container kept open after Docker deleted them unread; beyond this they count as lost"`
	// HeadroomWarn warns when unread bytes exceed this fraction of the
	// container's max-size × max-file.
	HeadroomWarn float64 `yaml:"headroom-warn" help:"warn when unread log bytes exceed this fraction of the container's max-size x max-file"`
	// Template is the index templates installed at start.
	Template TemplateConfig `yaml:"template"`
	// Retention is how long Elasticsearch keeps each kind of data.
	Retention RetentionConfig `yaml:"retention"`
	// Output configures the Elasticsearch bulk writer.
	Output OutputConfig `yaml:"output"`
}

// OutputConfig configures the Elasticsearch bulk writer. Its in-flight
// memory is bounded by Config.MaxInflightBytes, the shipper's one budget
// for log bytes read and not yet acknowledged.
type OutputConfig struct {
	esout.Config `yaml:",inline"`
	// MaxInflightBytes is the deprecated output.max-inflight-bytes. When
	// set, the in-flight budget is the smaller of it and
	// Config.MaxInflightBytes.
	MaxInflightBytes ByteSize `yaml:"max-inflight-bytes" help:"deprecated: use shipper.max-inflight-bytes (when set, the smaller of the two bounds the log bytes in flight)"`
}

// MultilineConfig holds multiline defaults.
type MultilineConfig struct {
	MaxLines int           `yaml:"max-lines" help:"most lines joined into one multi-line event"`
	Timeout  time.Duration `yaml:"timeout" help:"a gap longer than this between two lines ends a multi-line event"`
}

// TemplateConfig configures Heartwood's index templates.
type TemplateConfig struct {
	Install  bool     `yaml:"install" help:"install Heartwood's component and index templates (and retention) at start"`
	Name     string   `yaml:"name" help:"prefix of the templates' names (<name>-logs, <name>@base, ...)"`
	Patterns []string `yaml:"patterns" help:"index patterns of the container logs' template (default logs-<dataset>-*); never all of logs-*"`
	Priority int      `yaml:"priority" help:"index templates' priority (Elastic's built-in logs and metrics templates use 100)"`
	// Namespace restricts the templates of Heartwood's own streams
	// (decisions, dead letters, utilization) to one namespace.
	Namespace string `yaml:"namespace" help:"restrict the templates of Heartwood's own streams to this namespace (default: all)"`
}

// RetentionConfig says how long each kind of data is kept where the
// cluster supports retention (data stream lifecycle, else ILM).
type RetentionConfig struct {
	Logs        time.Duration `yaml:"logs" help:"retention of container logs (0 keeps them)"`
	Decisions   time.Duration `yaml:"decisions" help:"retention of watchman decisions (0 keeps them)"`
	DeadLetters time.Duration `yaml:"dead-letters" help:"retention of dead letters (0 keeps them)"`
	Metrics     time.Duration `yaml:"metrics" help:"retention of utilization samples (0 keeps them)"`
}

// SchemaOptions are the templates this configuration installs, for a
// cluster with features f.
func (c Config) SchemaOptions(f esschema.Features) esschema.Options {
	patterns := c.Template.Patterns
	if len(patterns) == 0 {
		patterns = esschema.LogPatterns(c.Dataset)
	}
	return esschema.Options{
		LogPatterns:       patterns,
		Priority:          c.Template.Priority,
		Prefix:            c.Template.Name,
		DeadLetterDataset: c.Output.DeadLetter.Dataset,
		Namespace:         c.Template.Namespace,
		Retention: map[esschema.Kind]time.Duration{
			esschema.Logs: c.Retention.Logs, esschema.Decisions: c.Retention.Decisions,
			esschema.DeadLetters: c.Retention.DeadLetters, esschema.Metrics: c.Retention.Metrics,
		},
		Features: f,
	}
}

const day = 24 * time.Hour

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Enabled:            true,
		ContainersRoot:     "/var/lib/docker/containers",
		Dataset:            "docker.container",
		Namespace:          "default",
		MaxEventBytes:      1 << 20,
		MaxInflightBytes:   16 << 20,
		BatchBytes:         128 << 10,
		Multiline:          MultilineConfig{MaxLines: 500, Timeout: 2 * time.Second},
		CheckpointInterval: time.Second,
		PollInterval:       250 * time.Millisecond,
		RemovalGrace:       5 * time.Minute,
		MaxRemovedReaders:  64,
		MaxDeletedFiles:    4,
		HeadroomWarn:       0.8,
		Template: TemplateConfig{
			Install:  true,
			Name:     "heartwood",
			Priority: esschema.DefaultPriority,
		},
		Retention: RetentionConfig{
			Logs: 30 * day, Decisions: 90 * day, DeadLetters: 30 * day, Metrics: 14 * day,
		},
		Output: OutputConfig{Config: esout.DefaultConfig()},
	}
}

// Validate reports every invalid field, naming its key.
func (c Config) Validate() error {
	p := config.NewProblems("shipper")
	if c.ContainersRoot == "" {
		p.Add("containers-root", "must not be empty")
	}
	if err := validDataStreamPart(c.Dataset); err != nil {
		p.Add("dataset", "%v", err)
	}
	if err := validDataStreamPart(c.Namespace); err != nil {
		p.Add("namespace", "%v", err)
	}
	if c.MaxEventBytes < 1024 {
		p.Add("max-event-bytes", "must be at least 1KiB, got %v", c.MaxEventBytes)
	}
	if c.BatchBytes < 1024 {
		p.Add("batch-bytes", "must be at least 1KiB, got %v", c.BatchBytes)
	}
	if c.MaxInflightBytes < c.BatchBytes {
		p.Add("max-inflight-bytes", "must be at least batch-bytes (%v), got %v", c.BatchBytes, c.MaxInflightBytes)
	}
	if c.Output.MaxInflightBytes != 0 && c.Output.MaxInflightBytes < c.BatchBytes {
		p.Add("output.max-inflight-bytes", "(deprecated: use shipper.max-inflight-bytes) must be at least batch-bytes (%v), got %v", c.BatchBytes, c.Output.MaxInflightBytes)
	}
	if c.Multiline.MaxLines <= 0 {
		p.Add("multiline.max-lines", "must be > 0, got %d", c.Multiline.MaxLines)
	}
	p.Positive("multiline.timeout", c.Multiline.Timeout)
	p.Positive("checkpoint-interval", c.CheckpointInterval)
	p.Positive("poll-interval", c.PollInterval)
	p.Positive("removal-grace", c.RemovalGrace)
	if c.MaxRemovedReaders <= 0 {
		p.Add("max-removed-readers", "must be > 0, got %d", c.MaxRemovedReaders)
	}
	if c.MaxDeletedFiles < 0 {
		p.Add("max-deleted-files", "must be >= 0, got %d", c.MaxDeletedFiles)
	}
	if c.HeadroomWarn <= 0 || c.HeadroomWarn > 1 {
		p.Add("headroom-warn", "must be in (0, 1], got %v", c.HeadroomWarn)
	}
	for k, d := range map[string]time.Duration{"logs": c.Retention.Logs, "decisions": c.Retention.Decisions,
		"dead-letters": c.Retention.DeadLetters, "metrics": c.Retention.Metrics} {
		if d < 0 || d > 0 && d < time.Hour {
			p.Add("retention."+k, "must be 0 (keep) or at least 1h, got %v", d)
		}
	}
	if c.Template.Install {
		if c.Template.Name == "" {
			p.Add("template.name", "must not be empty")
		}
		for _, pattern := range c.Template.Patterns {
			ds, ns, _ := strings.Cut(strings.TrimPrefix(pattern, "logs-"), "-")
			if !strings.HasPrefix(pattern, "logs-") || ds == "" || ds == "*" && (ns == "" || ns == "*") {
				p.Add("template.patterns", "%q: want logs-<dataset>-* (or logs-*-<namespace>), never all of logs-*", pattern)
			}
		}
		if c.Template.Priority <= 100 {
			p.Add("template.priority", "must be above 100 (Elastic's built-in logs template), got %d", c.Template.Priority)
		}
	}
	p.Include("output", c.Output.writerConfig().Validate())
	return p.Err()
}

// validDataStreamPart checks a dataset or namespace against Elasticsearch's
// data stream naming rules.
func validDataStreamPart(s string) error {
	switch {
	case s == "":
		return errors.New("must not be empty")
	case len(s) > 100:
		return fmt.Errorf("must be at most 100 characters, got %d", len(s))
	case strings.ToLower(s) != s:
		return fmt.Errorf("must be lower case, got %q", s)
	case strings.ContainsAny(s, "-\\/*?\"<>| ,#:"):
		return fmt.Errorf("must not contain '-' or any of \\/*?\"<>| ,#:, got %q", s)
	case strings.HasPrefix(s, "_") || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "."):
		return fmt.Errorf("must not start with _, + or ., got %q", s)
	}
	return nil
}

// inflightBytes is the one bound on log bytes in flight: max-inflight-bytes,
// or the deprecated output.max-inflight-bytes if that is smaller.
func (c Config) inflightBytes() int64 {
	n := int64(c.MaxInflightBytes)
	if o := int64(c.Output.MaxInflightBytes); o > 0 && o < n {
		n = o
	}
	return n
}

// writerConfig is the bulk writer's config. The writer has no budget of its
// own: every document it holds was taken from the shipper's.
func (c OutputConfig) writerConfig() esout.Config {
	w := c.Config
	w.MaxInflightBytes = 0
	return w
}

// deadLetterStream is the dead-letter data stream's name.
func (c OutputConfig) deadLetterStream() string {
	return "logs-" + c.DeadLetter.Dataset + "-" + c.DeadLetter.Namespace
}
