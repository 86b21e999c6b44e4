package hoststat

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, tc := range []struct {
		name, line string
		want       time.Duration
		wantErr    bool
	}{
		{"plain", "42 (heartwood) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 9 0 100 0 0", 3800 * time.Millisecond, false},
		{"name with spaces and parens", "7 (a (b) c) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 5 0 0", 70 * time.Millisecond, false},
		{"short", "7 (x) R 1 7", 0, true},
		{"no name", "garbage", 0, true},
		{"not a number", "7 (x) R 1 7 7 0 -1 0 0 0 0 0 x 4 0", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tc.line))
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("= %s, %v; want %s (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add([]byte("42 (heartwood) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseStatCPU(b) })
}

func TestOwnProcess(t *testing.T) {
	if got := LoadAvg(); len(strings.Fields(got)) != 3 {
		t.Errorf("LoadAvg() = %q, want three figures", got)
	}
	end := time.Now().Add(30 * time.Millisecond)
	for time.Now().Before(end) {
	}
	if d, err := ProcessCPU(os.Getpid()); err != nil || d <= 0 {
		t.Errorf("ProcessCPU(self) = %s, %v; want a positive time", d, err)
	}
}
