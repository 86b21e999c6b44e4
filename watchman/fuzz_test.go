package watchman

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzParseOwnedFile: the record of paused containers never panics the
// parser, and what it accepts survives a write and a re-read unchanged.
func FuzzParseOwnedFile(f *testing.F) {
	for _, s := range []string{
		`{"version":1,"containers":[]}`,
		`{"version":1,"containers":[{"id":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","action":"pause","since":"2026-11-28T11:00:00Z","maintenance":true}]}`,
		`{"version":1,"containers":[{"id":"a","action":"stop","since":"2026-11-28T11:00:00.5+02:00"}]}`,
		`{"version":1,"containers":[{"id":"a","action":"pause","since":"x"}]}`,
		`{"version":1}`,
		`[]`,
		`null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := parseOwnedFile(b)
		if err != nil {
			return
		}
		var list []ownedRecord
		for _, r := range recs {
			list = append(list, r)
		}
		out, err := json.Marshal(ownedFile{Version: ownedFileVersion, Containers: list})
		if err != nil {
			t.Fatalf("marshal accepted records: %v", err)
		}
		again, err := parseOwnedFile(out)
		if err != nil {
			t.Fatalf("re-read of %s: %v", out, err)
		}
		if len(again) != len(recs) {
			t.Fatalf("re-read %d records, want %d", len(again), len(recs))
		}
		for id, r := range recs {
			a := again[id]
			if a.Action != r.Action || a.Maintenance != r.Maintenance || !a.Since.Equal(r.Since) {
				t.Fatalf("record %s changed: %+v -> %+v", id, r, a)
			}
		}
	})
}

// FuzzParseDockerStats: the Docker stats fallback never panics on what the
// engine (or something posing as it) sends, and what it accepts gives sane
// samples.
func FuzzParseDockerStats(f *testing.F) {
	for _, s := range []string{
		`{}`,
		`{"cpu_stats":{"cpu_usage":{"total_usage":123,"usage_in_usermode":100,"usage_in_kernelmode":23},"throttling_data":{"periods":5,"throttled_periods":1,"throttled_time":7}},` +
			`"memory_stats":{"usage":1000,"limit":4000,"stats":{"total_inactive_file":100,"total_rss":500,"total_cache":300}},"pids_stats":{"current":3,"limit":100},` +
			`"blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":10},{"major":8,"minor":0,"op":"Write","value":20},{"major":8,"minor":16,"op":"read","value":1}]},` +
			`"networks":{"eth0":{"rx_bytes":1,"tx_bytes":2},"eth1":{"rx_bytes":3}}}`,
		`{"memory_stats":{"usage":10,"stats":{"inactive_file":50,"anon":5,"file":5}}}`,
		`{"networks":{"\xff":{}}}`,
		`{"blkio_stats":{"io_service_bytes_recursive":[{"major":18446744073709551615,"minor":1,"op":"Total","value":1}]}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sample
		if err := parseDockerStats(bytes.NewReader(b), &s); err != nil {
			return
		}
		if !s.FromDocker {
			t.Fatal("sample not marked as from Docker")
		}
		if s.Cgroup.MemoryWorkingSet > s.Cgroup.MemoryUsage {
			t.Fatalf("working set %d above usage %d", s.Cgroup.MemoryWorkingSet, s.Cgroup.MemoryUsage)
		}
		seen := map[[2]uint32]bool{}
		for _, d := range s.Cgroup.BlkIO {
			k := [2]uint32{d.Major, d.Minor}
			if seen[k] {
				t.Fatalf("device %d:%d listed twice", d.Major, d.Minor)
			}
			seen[k] = true
		}
		if s.HasNet != (len(s.Net) > 0) {
			t.Fatalf("HasNet %v with %d interfaces", s.HasNet, len(s.Net))
		}
		// Parsing the same input twice gives the same sample.
		var s2 Sample
		_ = parseDockerStats(strings.NewReader(string(b)), &s2)
		if !reflect.DeepEqual(sortNet(s), sortNet(s2)) {
			t.Fatal("parsing is not deterministic")
		}
	})
}

// sortNet orders the interfaces (Docker's map has no order).
func sortNet(s Sample) Sample {
	n := append(s.Net[:0:0], s.Net...)
	for i := range n {
		for j := i + 1; j < len(n); j++ {
			if n[j].Name < n[i].Name {
				n[i], n[j] = n[j], n[i]
			}
		}
	}
	s.Net = n
	return s
}
