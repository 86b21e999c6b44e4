package config

import (
	"errors"
	"testing"
	"time"
)

func TestProblems(t *testing.T) {
	tests := []struct {
		name    string
		section string
		report  func(p *Problems)
		want    string // "" for no error
	}{
		{"none", "registrar", func(p *Problems) { p.Positive("interval", time.Second) }, ""},
		{"one, in a section", "registrar", func(p *Problems) { p.Add("ip", "must be an IP address, got %q", "x") },
			`registrar.ip: must be an IP address, got "x"`},
		{"top level", "", func(p *Problems) { p.Add("listen", "want host:port") }, "listen: want host:port"},
		{"zero duration", "shipper", func(p *Problems) { p.Positive("poll-interval", 0) }, "shipper.poll-interval: must be > 0, got 0s"},
		{"negative duration", "watchman", func(p *Problems) { p.Positive("window", -time.Minute) }, "watchman.window: must be > 0, got -1m0s"},
		{"subsection", "shipper", func(p *Problems) {
			p.Include("output", nil)
			p.Include("output", errors.New("workers: must be between 1 and 64, got 0"))
		}, "shipper.output.workers: must be between 1 and 64, got 0"},
		{"all of them, in order", "s", func(p *Problems) {
			p.Add("a", "first")
			p.Positive("b", 0)
			p.Add("c", "third %d", 3)
		}, "s.a: first\ns.b: must be > 0, got 0s\ns.c: third 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewProblems(tt.section)
			tt.report(p)
			err := p.Err()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Err() = %v, want %q", err, tt.want)
			}
		})
	}
}
