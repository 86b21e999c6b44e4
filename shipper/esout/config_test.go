package esout

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr []string // substrings, each naming the key
	}{
		{name: "defaults", mod: func(*Config) {}},
		{name: "flush bytes", mod: func(c *Config) { c.FlushBytes = 0 }, wantErr: []string{"flush-bytes: must be > 0, got 0"}},
		{name: "interval", mod: func(c *Config) { c.FlushInterval = -time.Second }, wantErr: []string{"flush-interval: must be > 0, got -1s"}},
		{name: "workers", mod: func(c *Config) { c.Workers = 0 }, wantErr: []string{"workers: must be between 1 and 64, got 0"}},
		{name: "too many workers", mod: func(c *Config) { c.Workers = 65 }, wantErr: []string{"workers:"}},
		{name: "inflight", mod: func(c *Config) { c.MaxInflightBytes = 1 << 20 }, wantErr: []string{"max-inflight-bytes: must be >= flush-bytes (2MiB), got 1MiB"}},
		{name: "level", mod: func(c *Config) { c.CompressionLevel = 0 }, wantErr: []string{"compression-level:"}},
		{name: "level ignored without compression", mod: func(c *Config) { c.CompressionLevel = 0; c.Compression = false }},
		{name: "backoff", mod: func(c *Config) { c.RetryBackoffMin = 0; c.RetryBackoffMax = -1 }, wantErr: []string{"retry-backoff-min:", "retry-backoff-max:"}},
		{name: "timeout", mod: func(c *Config) { c.RequestTimeout = 0 }, wantErr: []string{"request-timeout:"}},
		{name: "dataset dash", mod: func(c *Config) { c.DeadLetter.Dataset = "dead-letter" }, wantErr: []string{"dead-letter.dataset:"}},
		{name: "namespace upper", mod: func(c *Config) { c.DeadLetter.Namespace = "Prod" }, wantErr: []string{"dead-letter.namespace:"}},
		{name: "namespace empty", mod: func(c *Config) { c.DeadLetter.Namespace = "" }, wantErr: []string{"dead-letter.namespace: must not be empty"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mod(&c)
			err := c.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
