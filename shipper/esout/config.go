package esout

import (
	"compress/gzip"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/heartwood-ops/heartwood/config"
)

// DeadLetterConfig names the dead-letter data stream,
// logs-<dataset>-<namespace>.
type DeadLetterConfig struct {
	// Dataset is the data stream's dataset.
	Dataset string `yaml:"dataset" help:"dataset of the dead-letter data stream logs-<dataset>-<namespace>"`
	// Namespace is the data stream's namespace.
	Namespace string `yaml:"namespace" help:"namespace of the dead-letter data stream logs-<dataset>-<namespace>"`
}

// Config configures the Elasticsearch output. Validate's messages name the
// offending key relative to this struct (e.g. "flush-bytes: ..."); a parent
// config prefixes its own path, e.g. fmt.Errorf("shipper.output.%w", err).
type Config struct {
	// ExternalTemplates says that the caller installs the dead-letter data
	// stream's template (the shipper installs all of Heartwood's), so the
	// writer does not install its own.
	ExternalTemplates bool `yaml:"-"`
	// FlushBytes is the uncompressed size at which a bulk request is sent.
	FlushBytes config.ByteSize `yaml:"flush-bytes" help:"uncompressed bulk request size that triggers a flush"`
	// FlushInterval is the longest a queued document waits for a flush.
	FlushInterval time.Duration `yaml:"flush-interval" help:"longest time a queued document waits before its bulk request is sent"`
	// Workers is the number of concurrent bulk requests.
	Workers int `yaml:"workers" help:"number of concurrent bulk requests"`
	// MaxInflightBytes bounds the memory held by accepted but unacknowledged
	// documents; Write blocks while it is full. Zero leaves the bound to
	// the caller: the shipper bounds the same bytes with its own in-flight
	// budget (shipper.max-inflight-bytes), so it is not a setting of its
	// own.
	MaxInflightBytes config.ByteSize `yaml:"-"`
	// Compression gzips bulk request bodies.
	Compression bool `yaml:"compression" help:"gzip bulk request bodies"`
	// CompressionLevel is the gzip level, 1 (fastest) to 9 (smallest).
	CompressionLevel int `yaml:"compression-level" help:"gzip level, 1 (fastest) to 9 (smallest)"`
	// RetryBackoffMin is the first retry delay.
	RetryBackoffMin time.Duration `yaml:"retry-backoff-min" help:"first retry delay (doubles per attempt, with jitter)"`
	// RetryBackoffMax caps the retry delay.
	RetryBackoffMax time.Duration `yaml:"retry-backoff-max" help:"longest retry delay"`
	// RequestTimeout bounds one bulk request, response included.
	RequestTimeout time.Duration `yaml:"request-timeout" help:"timeout of one bulk request, response included"`
	// DeadLetter names the dead-letter data stream.
	DeadLetter DeadLetterConfig `yaml:"dead-letter"`
}

// DefaultConfig returns the defaults: 2 MiB / 500 ms flushes, 2 workers,
// 16 MiB in flight (for callers that do not bound memory themselves), gzip level 1, 100 ms..30 s backoff, 60 s requests, dead
// letters to logs-heartwood.deadletter-default.
func DefaultConfig() Config {
	return Config{
		FlushBytes:       2 << 20,
		FlushInterval:    500 * time.Millisecond,
		Workers:          2,
		MaxInflightBytes: 16 << 20,
		Compression:      true,
		CompressionLevel: gzip.BestSpeed,
		RetryBackoffMin:  100 * time.Millisecond,
		RetryBackoffMax:  30 * time.Second,
		RequestTimeout:   60 * time.Second,
		DeadLetter:       DeadLetterConfig{Dataset: "heartwood.deadletter", Namespace: "default"},
	}
}

// maxWorkers bounds Workers.
const maxWorkers = 64

// Validate reports every invalid field, naming its key.
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf(key+": "+format, args...))
	}
	if c.FlushBytes <= 0 {
		bad("flush-bytes", "must be > 0, got %d", int64(c.FlushBytes))
	}
	if c.FlushInterval <= 0 {
		bad("flush-interval", "must be > 0, got %s", c.FlushInterval)
	}
	if c.Workers < 1 || c.Workers > maxWorkers {
		bad("workers", "must be between 1 and %d, got %d", maxWorkers, c.Workers)
	}
	if c.MaxInflightBytes != 0 && c.MaxInflightBytes < c.FlushBytes {
		bad("max-inflight-bytes", "must be >= flush-bytes (%s), got %s", c.FlushBytes, c.MaxInflightBytes)
	}
	if c.Compression && (c.CompressionLevel < gzip.BestSpeed || c.CompressionLevel > gzip.BestCompression) {
		bad("compression-level", "must be between 1 and 9, got %d", c.CompressionLevel)
	}
	if c.RetryBackoffMin <= 0 {
		bad("retry-backoff-min", "must be > 0, got %s", c.RetryBackoffMin)
	}
	if c.RetryBackoffMax < c.RetryBackoffMin {
		bad("retry-backoff-max", "must be >= retry-backoff-min (%s), got %s", c.RetryBackoffMin, c.RetryBackoffMax)
	}
	if c.RequestTimeout <= 0 {
		bad("request-timeout", "must be > 0, got %s", c.RequestTimeout)
	}
	if err := validDataStreamPart(c.DeadLetter.Dataset); err != nil {
		bad("dead-letter.dataset", "%v", err)
	}
	if err := validDataStreamPart(c.DeadLetter.Namespace); err != nil {
		bad("dead-letter.namespace", "%v", err)
	}
	return errors.Join(errs...)
}

// validDataStreamPart applies the data stream naming rules to a dataset or
// namespace: non-empty, at most 100 bytes, lowercase, none of -\/*?"<>|,#
// or space.
func validDataStreamPart(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > 100 {
		return fmt.Errorf("must be at most 100 bytes, got %d", len(s))
	}
	if strings.ContainsAny(s, "-\\/*?\"<>|,# ") || strings.ToLower(s) != s {
		return fmt.Errorf("must be lowercase without any of -\\/*?\"<>|,# or space, got %q", s)
	}
	return nil
}

// deadLetterStream is the dead-letter data stream's name.
func (c Config) deadLetterStream() string {
	return "logs-" + c.DeadLetter.Dataset + "-" + c.DeadLetter.Namespace
}
