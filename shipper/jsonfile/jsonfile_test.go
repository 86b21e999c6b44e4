package jsonfile

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		log     string
		stream  Stream
		time    string
		partial bool
		wantErr bool
	}{
		{name: "plain", line: `{"log":"hello\n","stream":"stdout","time":"2026-11-28T10:57:28.123456789Z"}`, log: "hello\n", stream: Stdout, time: "2026-11-28T10:57:28.123456789Z"},
		{name: "stderr short frac", line: `{"log":"x\n","stream":"stderr","time":"2026-01-02T03:04:05.1Z"}`, log: "x\n", stream: Stderr, time: "2026-01-02T03:04:05.1Z"},
		{name: "no frac", line: `{"log":"x\n","stream":"stderr","time":"2026-01-02T03:04:05Z"}`, log: "x\n", stream: Stderr, time: "2026-01-02T03:04:05Z"},
		{name: "offset", line: `{"log":"x\n","stream":"stdout","time":"2026-01-02T03:04:05.5+02:00"}`, log: "x\n", stream: Stdout, time: "2026-01-02T03:04:05.5+02:00"},
		{name: "partial", line: `{"log":"abc","stream":"stdout","time":"2026-01-02T03:04:05Z"}`, log: "abc", stream: Stdout, time: "2026-01-02T03:04:05Z", partial: true},
		{name: "escapes", line: `{"log":"a\"b\\c\/\t\u003c\u00e9\ud83d\ude00\n","stream":"stdout","time":"2026-01-02T03:04:05Z"}`, log: "a\"b\\c/\t<é😀\n", stream: Stdout, time: "2026-01-02T03:04:05Z"},
		{name: "lone surrogate", line: `{"log":"\ud800x\n","stream":"stdout","time":"2026-01-02T03:04:05Z"}`, log: "\uFFFDx\n", stream: Stdout, time: "2026-01-02T03:04:05Z"},
		{name: "attrs and order", line: `{"attrs":{"a":"b","n":[1,2.5e3,true,null]},"time":"2026-01-02T03:04:05Z","stream":"stdout","log":"y\n"}`, log: "y\n", stream: Stdout, time: "2026-01-02T03:04:05Z"},
		{name: "whitespace", line: ` { "log" : "z\n" , "stream" : "stdout" } `, log: "z\n", stream: Stdout},
		{name: "empty object", line: `{}`, partial: true},
		{name: "not json", line: `hello`, wantErr: true},
		{name: "unterminated", line: `{"log":"abc`, wantErr: true},
		{name: "bad escape", line: `{"log":"\q"}`, wantErr: true},
		{name: "trailing", line: `{"log":"a\n"}x`, wantErr: true},
		{name: "bad time", line: `{"log":"a\n","time":"yesterday"}`, wantErr: true},
		{name: "missing comma", line: `{"log":"a\n" "stream":"stdout"}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec, _, err := Parse([]byte(tt.line), nil)
			if tt.wantErr {
				if err == nil || !errors.Is(err, ErrSyntax) {
					t.Fatalf("Parse(%s) error = %v, want ErrSyntax", tt.line, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%s): %v", tt.line, err)
			}
			if string(rec.Log) != tt.log || rec.Stream != tt.stream || string(rec.TimeRaw) != tt.time || rec.Partial() != tt.partial {
				t.Fatalf("Parse(%s) = log %q stream %v time %q partial %v", tt.line, rec.Log, rec.Stream, rec.TimeRaw, rec.Partial())
			}
			if tt.time != "" {
				want, _ := time.Parse(time.RFC3339Nano, tt.time)
				if rec.Time != want.UnixNano() {
					t.Fatalf("time = %d, want %d", rec.Time, want.UnixNano())
				}
			}
		})
	}
}

func TestParseTimeMatchesTimePackage(t *testing.T) {
	for _, s := range []string{"1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z", "2000-02-29T12:00:00.000000001Z",
		"2026-11-28T10:57:28.12345Z", "2400-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2024-03-01T00:00:00.5Z"} {
		got, err := ParseTime([]byte(s))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		want, _ := time.Parse(time.RFC3339Nano, s)
		if got != want.UnixNano() {
			t.Errorf("%s: got %d want %d", s, got, want.UnixNano())
		}
	}
}

func TestParseNoAllocPlain(t *testing.T) {
	line := []byte(`{"log":"hello world, this is a fairly ordinary log line\n","stream":"stdout","time":"2026-11-28T10:57:28.123456789Z"}`)
	scratch := make([]byte, 0, 256)
	allocs := testing.AllocsPerRun(100, func() {
		if _, _, err := Parse(line, scratch[:0]); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Parse allocated %.1f times per plain record", allocs)
	}
}

// FuzzParse checks the hand-rolled decoder against encoding/json: whenever
// the standard library accepts a record with string fields, Parse must
// decode the same log and stream; Parse must never panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"log":"hello\n","stream":"stdout","time":"2026-11-28T10:57:28.123456789Z"}`,
		`{"log":"a\"b\\c\u00e9\ud83d\ude00","stream":"stderr","time":"2026-01-02T03:04:05Z"}`,
		`{"attrs":{"x":[1,{"y":null}]},"log":"\u0000\u001b[31m\n"}`,
		`{"log":"\ud800\n"}`, `{`, `{"log":1}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		rec, _, err := Parse(line, nil)
		var std struct {
			Log    *string `json:"log"`
			Stream *string `json:"stream"`
			Time   *string `json:"time"`
		}
		stdErr := json.Unmarshal(line, &std)
		if err != nil || stdErr != nil {
			return // the decoders may disagree on malformed input, but must not panic
		}
		if std.Log != nil && string(rec.Log) != *std.Log {
			// encoding/json replaces invalid UTF-8 with U+FFFD; we keep bytes.
			if utf8.Valid(rec.Log) {
				t.Fatalf("log mismatch: ours %q std %q", rec.Log, *std.Log)
			}
		}
		if std.Stream != nil {
			want := StreamUnknown
			switch *std.Stream {
			case "stdout":
				want = Stdout
			case "stderr":
				want = Stderr
			}
			if rec.Stream != want {
				t.Fatalf("stream mismatch: ours %v std %q", rec.Stream, *std.Stream)
			}
		}
		if std.Time != nil {
			if tm, perr := time.Parse(time.RFC3339Nano, *std.Time); perr == nil && tm.UnixNano() != rec.Time && tm.Year() > 1677 && tm.Year() < 2262 {
				t.Fatalf("time mismatch for %q: ours %d std %d", *std.Time, rec.Time, tm.UnixNano())
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	line := []byte(`{"log":"2026-11-28 10:57:28 INFO request handled path=/api/v1/items status=200 dur=3ms\n","stream":"stdout","time":"2026-11-28T10:57:28.123456789Z"}`)
	b.SetBytes(int64(len(line)))
	scratch := make([]byte, 0, 256)
	for b.Loop() {
		if _, _, err := Parse(line, scratch[:0]); err != nil {
			b.Fatal(err)
		}
	}
}
