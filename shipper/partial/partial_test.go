package partial

import (
	"bytes"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
)

type rec struct {
	log    string
	stream jsonfile.Stream
}

type out struct {
	text       string
	start, end int64
	records    int
	truncated  bool
}

func run(a *Assembler, recs []rec) []out {
	var got []out
	emit := func(l *logline.Line) {
		got = append(got, out{string(l.Text), l.Start.Off, l.End.Off, l.Records, l.Truncated})
	}
	off := int64(0)
	for _, r := range recs {
		s := r.stream
		if s == 0 {
			s = jsonfile.Stdout
		}
		jr := jsonfile.Record{Log: []byte(r.log), Stream: s, TimeRaw: []byte("2026-01-01T00:00:00Z")}
		a.Push(&jr, logline.Pos{Off: off}, logline.Pos{Off: off + 10}, emit)
		off += 10
	}
	return got
}

func TestAssembler(t *testing.T) {
	tests := []struct {
		name    string
		max     int
		recs    []rec
		want    []out
		pending bool
	}{
		{name: "whole lines", max: 100, recs: []rec{{log: "a\n"}, {log: "b\n"}},
			want: []out{{"a", 0, 10, 1, false}, {"b", 10, 20, 1, false}}},
		{name: "three parts", max: 100, recs: []rec{{log: "aa"}, {log: "bb"}, {log: "cc\n"}, {log: "d\n"}},
			want: []out{{"aabbcc", 0, 30, 3, false}, {"d", 30, 40, 1, false}}},
		{name: "truncate", max: 5, recs: []rec{{log: "aaa"}, {log: "bbb"}, {log: "ccc\n"}},
			want: []out{{"aaabb", 0, 30, 3, true}}},
		{name: "truncate whole", max: 2, recs: []rec{{log: "abcdef\n"}}, want: []out{{"ab", 0, 10, 1, true}}},
		{name: "stream switch ends partial", max: 100, recs: []rec{{log: "aa"}, {log: "x\n", stream: jsonfile.Stderr}, {log: "bb\n"}},
			want: []out{{"aa", 0, 10, 1, false}, {"x", 10, 20, 1, false}, {"bb", 20, 30, 1, false}}},
		{name: "pending at end", max: 100, recs: []rec{{log: "a\n"}, {log: "bb"}},
			want: []out{{"a", 0, 10, 1, false}}, pending: true},
		{name: "empty line", max: 100, recs: []rec{{log: "\n"}}, want: []out{{"", 0, 10, 1, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := New(tt.max)
			got := run(a, tt.recs)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("line %d: got %+v, want %+v", i, got[i], tt.want[i])
				}
			}
			if _, p := a.Pending(); p != tt.pending {
				t.Fatalf("pending = %v, want %v", p, tt.pending)
			}
		})
	}
}

// FuzzAssembler splits arbitrary text into records at arbitrary points, as
// Docker does at 16 KiB, and checks that reassembly gives back every line,
// truncated at the maximum and covering contiguous positions.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte("hello\nworld\n"), []byte{3, 1, 7}, uint16(100))
	f.Add([]byte("a very long line without a break"), []byte{5, 5, 5}, uint16(4))
	f.Add([]byte("\n\n\n"), []byte{}, uint16(1))
	f.Fuzz(func(t *testing.T, text []byte, cuts []byte, maxB uint16) {
		maxBytes := int(maxB%512) + 1
		// Build records: split each line into chunks whose sizes come from cuts.
		var recs []rec
		lines := strings.SplitAfter(string(text), "\n")
		ci := 0
		for _, line := range lines {
			if line == "" {
				continue
			}
			for len(line) > 0 {
				n := len(line)
				if ci < len(cuts) && int(cuts[ci]) > 0 && int(cuts[ci]) < n {
					n = int(cuts[ci])
				}
				ci++
				chunk := line[:n]
				line = line[n:]
				recs = append(recs, rec{log: chunk})
			}
		}
		a := New(maxBytes)
		got := run(a, recs)
		var want []string
		for _, line := range lines {
			if strings.HasSuffix(line, "\n") {
				l := strings.TrimSuffix(line, "\n")
				if len(l) > maxBytes {
					l = l[:maxBytes]
				}
				want = append(want, l)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("got %d lines, want %d", len(got), len(want))
		}
		next := int64(0)
		for i := range got {
			if got[i].text != want[i] {
				t.Fatalf("line %d = %q, want %q", i, got[i].text, want[i])
			}
			if got[i].start != next || got[i].end <= got[i].start {
				t.Fatalf("line %d covers [%d,%d), want start %d", i, got[i].start, got[i].end, next)
			}
			next = got[i].end
			if bytes.Contains([]byte(got[i].text), []byte("\n")) {
				t.Fatalf("line %d contains a newline", i)
			}
		}
	})
}
