package multiline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
)

func feed(t testing.TB, a *Aggregator, lines []string, gap time.Duration) []string {
	var got []string
	emit := func(l *logline.Line) { got = append(got, string(l.Text)) }
	for i, s := range lines {
		l := logline.Line{Text: []byte(s), Time: int64(i) * int64(gap), Stream: jsonfile.Stdout,
			Start: logline.Pos{Off: int64(i)}, End: logline.Pos{Off: int64(i + 1)}, Records: 1, Lines: 1}
		a.Push(&l, emit)
	}
	a.Flush(emit)
	return got
}

var javaTrace = func() []string {
	out := []string{`Exception in thread "main" java.lang.IllegalStateException: outer`}
	for i := range 30 {
		out = append(out, fmt.Sprintf("\tat com.example.Service.method%d(Service.java:%d)", i, 10+i))
	}
	out = append(out, "Caused by: java.lang.NullPointerException: inner")
	for i := range 7 {
		out = append(out, fmt.Sprintf("\tat com.example.Repo.find%d(Repo.java:%d)", i, i))
	}
	out = append(out, "\t... 12 more")
	return out
}()

func TestAggregator(t *testing.T) {
	pyTrace := []string{
		"ERROR:root:failed",
		"Traceback (most recent call last):",
		`  File "app.py", line 3, in <module>`,
		"    main()",
		"ValueError: bad value",
		"",
		"During handling of the above exception, another exception occurred:",
		"",
		"Traceback (most recent call last):",
		`  File "app.py", line 5, in <module>`,
		"    raise RuntimeError('x')",
		"RuntimeError: x",
	}
	goPanic := []string{
		"panic: runtime error: index out of range [3] with length 3",
		"",
		"goroutine 1 [running]:",
		"main.main()",
		"\t/app/main.go:8 +0x1d",
		"exit status 2",
	}
	tests := []struct {
		name  string
		cfg   Config
		lines []string
		gap   time.Duration
		want  []string
	}{
		{name: "java preset 40 lines", cfg: Config{Preset: PresetJava},
			lines: append(append([]string{"starting"}, javaTrace...), "next line"),
			want:  []string{"starting", strings.Join(javaTrace, "\n"), "next line"}},
		{name: "java exception after log line", cfg: Config{Preset: PresetJava},
			lines: []string{"12:00 ERROR failed", "java.io.IOException: disk", "\tat a.b.C(C.java:1)", "12:01 INFO ok"},
			want:  []string{"12:00 ERROR failed\njava.io.IOException: disk\n\tat a.b.C(C.java:1)", "12:01 INFO ok"}},
		{name: "python preset", cfg: Config{Preset: PresetPython},
			lines: append(append([]string{"INFO start"}, pyTrace...), "INFO after"),
			want:  []string{"INFO start", strings.Join(pyTrace, "\n"), "INFO after"}},
		{name: "go preset", cfg: Config{Preset: PresetGo},
			lines: append(append([]string{"listening"}, goPanic...), "restarted"),
			want:  []string{"listening", strings.Join(goPanic, "\n"), "restarted"}},
		{name: "pattern after", cfg: Config{Pattern: `^\s`},
			lines: []string{"a", " b", " c", "d", " e"}, want: []string{"a\n b\n c", "d\n e"}},
		{name: "pattern negate after", cfg: Config{Pattern: `^\[`, Negate: true},
			lines: []string{"[1] x", "y", "z", "[2] w"}, want: []string{"[1] x\ny\nz", "[2] w"}},
		{name: "pattern before", cfg: Config{Pattern: `\\$`, Match: Before},
			lines: []string{`a \`, `b \`, "c", "d"}, want: []string{"a \\\nb \\\nc", "d"}},
		{name: "max lines", cfg: Config{Pattern: `^\s`, MaxLines: 2},
			lines: []string{"a", " b", " c", "d"}, want: []string{"a\n b", "d"}},
		{name: "max bytes", cfg: Config{Pattern: `^\s`, MaxBytes: 5},
			lines: []string{"abc", " def", "g"}, want: []string{"abc\n ", "g"}},
		{name: "timestamp gap splits", cfg: Config{Pattern: `^\s`, Timeout: time.Second}, gap: 2 * time.Second,
			lines: []string{"a", " b"}, want: []string{"a", " b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := feed(t, a, tt.lines, tt.gap)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {Pattern: "("}, {Preset: "ruby"}, {Pattern: "x", Match: "sideways"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestFlushIdle(t *testing.T) {
	a, _ := New(Config{Pattern: `^\s`, Timeout: time.Second})
	var got []string
	emit := func(l *logline.Line) { got = append(got, string(l.Text)) }
	l := logline.Line{Text: []byte("a"), Time: 0, Stream: jsonfile.Stdout}
	a.Push(&l, emit)
	a.FlushIdle(int64(500*time.Millisecond), emit)
	if len(got) != 0 {
		t.Fatalf("flushed too early: %q", got)
	}
	a.FlushIdle(int64(2*time.Second), emit)
	if len(got) != 1 || got[0] != "a" {
		t.Fatalf("got %q", got)
	}
}

// FuzzAggregator checks that any line sequence, under every mode, is
// grouped into events that cover the input contiguously and, when nothing
// was truncated, give back exactly the input text.
func FuzzAggregator(f *testing.F) {
	f.Add("a\n b\nc\n\td", `^\s`, false, false, uint8(0))
	f.Add("x\ny\n[z\n", `^\[`, true, true, uint8(1))
	f.Add(strings.Join(javaTrace, "\n"), "", false, false, uint8(2))
	f.Fuzz(func(t *testing.T, text, pattern string, negate, before bool, preset uint8) {
		cfg := Config{Pattern: pattern, Negate: negate, MaxLines: 50, MaxBytes: 4096}
		if before {
			cfg.Match = Before
		}
		switch preset % 5 {
		case 1:
			cfg.Preset = PresetJava
		case 2:
			cfg.Preset = PresetPython
		case 3:
			cfg.Preset = PresetGo
		}
		a, err := New(cfg)
		if err != nil {
			return
		}
		lines := strings.Split(text, "\n")
		var evs []logline.Line
		var texts []string
		emit := func(l *logline.Line) { evs = append(evs, *l); texts = append(texts, string(l.Text)) }
		for i, s := range lines {
			l := logline.Line{Text: []byte(s), Stream: jsonfile.Stdout, Start: logline.Pos{Off: int64(i)},
				End: logline.Pos{Off: int64(i + 1)}, Records: 1, Lines: 1}
			a.Push(&l, emit)
		}
		a.Flush(emit)
		next := int64(0)
		truncated := false
		total := 0
		for _, ev := range evs {
			if ev.Start.Off != next {
				t.Fatalf("event starts at %d, want %d", ev.Start.Off, next)
			}
			next = ev.End.Off
			total += ev.Records
			truncated = truncated || ev.Truncated
			if ev.Lines > cfg.MaxLines || len(ev.Text) > cfg.MaxBytes {
				t.Fatalf("event exceeds limits: %d lines %d bytes", ev.Lines, len(ev.Text))
			}
		}
		if next != int64(len(lines)) || total != len(lines) {
			t.Fatalf("events cover %d lines (%d records), want %d", next, total, len(lines))
		}
		if !truncated && strings.Join(texts, "\n") != text {
			t.Fatalf("text changed: %q -> %q", text, texts)
		}
	})
}
