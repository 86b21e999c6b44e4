package shipper

import (
	"math"
	"strconv"
	"testing"
)

func TestParseDockerSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"", 0, false}, {"100", 100, false}, {"10m", 10e6, false}, {"10M", 10e6, false}, {"1g", 1e9, false},
		{"512k", 512e3, false}, {"1.5m", 1.5e6, false}, {"10mb", 10e6, false}, {"10 MB", 10e6, false}, {"2kib", 2e3, false},
		{"1t", 1e12, false}, {" 7k ", 7e3, false},
		{"-1m", 0, true}, {"m", 0, true}, {"1e3", 0, true}, {"inf", 0, true}, {"NaN", 0, true}, {"0x10", 0, true},
		{"1..2k", 0, true}, {".5k", 0, true}, {"5.k", 0, true}, {"99999999999999p", 0, true}, {"10q", 0, true},
	}
	for _, tt := range tests {
		got, err := parseDockerSize(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("parseDockerSize(%q) = %d, %v; want %d (error %v)", tt.in, got, err, tt.want, tt.bad)
		}
	}
}

func TestLogCapacity(t *testing.T) {
	tests := []struct {
		opts map[string]string
		want int64
	}{
		{map[string]string{"max-size": "2k", "max-file": "2"}, 4000},
		{map[string]string{"max-size": "10m"}, 10e6},
		{map[string]string{"max-file": "3"}, 0},
		{map[string]string{"max-size": "bogus", "max-file": "3"}, 0},
		{map[string]string{"max-size": "1000p", "max-file": "999999999"}, math.MaxInt64},
	}
	for _, tt := range tests {
		if got := logCapacity(tt.opts); got != tt.want {
			t.Errorf("logCapacity(%v) = %d, want %d", tt.opts, got, tt.want)
		}
	}
}

// FuzzDockerSize: Docker's size and file-count log options come from
// container owners; parsing them never panics, never yields a negative
// size, and a plain integer parses to itself.
func FuzzDockerSize(f *testing.F) {
	for _, s := range []string{"10m", "1.5g", "512kb", "10 MB", "-1", "1e9", "99999999999999999999p", ""} {
		f.Add(s, "3")
	}
	f.Fuzz(func(t *testing.T, size, files string) {
		n, err := parseDockerSize(size)
		if err == nil && n < 0 {
			t.Fatalf("parseDockerSize(%q) = %d", size, n)
		}
		if v, perr := strconv.ParseInt(size, 10, 64); perr == nil && validDecimal(size) && float64(v) < 1<<53 && (err != nil || n != v) {
			t.Fatalf("parseDockerSize(%q) = %d, %v; want %d", size, n, err, v)
		}
		if c := logCapacity(map[string]string{"max-size": size, "max-file": files}); c < 0 {
			t.Fatalf("logCapacity(%q, %q) = %d", size, files, c)
		}
	})
}
