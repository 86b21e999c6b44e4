package logthrottle

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func newLogger(buf *bytes.Buffer) *slog.Logger {
	text := slog.NewTextHandler(buf, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})
	return slog.New(New(text, time.Minute, slog.LevelWarn))
}

func lines(buf *bytes.Buffer) []string {
	s := strings.TrimSpace(buf.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestThrottle(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger)
		want []string
	}{
		{"repeats held back, then summarised", func(l *slog.Logger) {
			for i := range 10 {
				l.Warn("docker unreachable", "attempt", i)
				time.Sleep(time.Second)
			}
			time.Sleep(time.Minute)
			l.Warn("docker unreachable", "attempt", 99)
		}, []string{
			`level=WARN msg="docker unreachable" attempt=0`,
			`level=WARN msg="docker unreachable" attempt=9 repeated=9 repeated_within=1m0s`,
			`level=WARN msg="docker unreachable" attempt=99`,
		}},
		{"another message ends nothing early but writes the ended summaries", func(l *slog.Logger) {
			l.Warn("a")
			l.Warn("a")
			time.Sleep(61 * time.Second)
			l.Info("something else")
		}, []string{
			`level=WARN msg=a`,
			`level=WARN msg=a repeated=1 repeated_within=1m0s`,
			`level=INFO msg="something else"`,
		}},
		{"a window without repeats has no summary", func(l *slog.Logger) {
			l.Warn("a")
			time.Sleep(2 * time.Minute)
			l.Warn("a")
		}, []string{`level=WARN msg=a`, `level=WARN msg=a`}},
		{"loggers with other attributes are other messages", func(l *slog.Logger) {
			l.With("subsystem", "shipper").Warn("unreachable")
			l.With("subsystem", "registrar").Warn("unreachable")
			l.With("subsystem", "registrar").Warn("unreachable")
		}, []string{`level=WARN msg=unreachable subsystem=shipper`, `level=WARN msg=unreachable subsystem=registrar`}},
		{"other errors are other messages; delays and counts are not", func(l *slog.Logger) {
			l.Warn("token unusable", "err", errors.New("file is empty"), "retry_in", time.Second)
			l.Warn("token unusable", "err", errors.New("file is empty"), "retry_in", 2*time.Second, "n", 2)
			l.Warn("token unusable", "err", errors.New("shorter than 16 bytes"))
			l.Warn("token unusable", "err", errors.New("shorter than 16 bytes"), slog.Group("g", "ok", false))
		}, []string{
			`level=WARN msg="token unusable" err="file is empty" retry_in=1s`,
			`level=WARN msg="token unusable" err="shorter than 16 bytes"`,
			`level=WARN msg="token unusable" err="shorter than 16 bytes" g.ok=false`,
		}},
		{"levels below warn pass", func(l *slog.Logger) {
			l.Info("tick")
			l.Info("tick")
		}, []string{`level=INFO msg=tick`, `level=INFO msg=tick`}},
		{"flush writes what is held back", func(l *slog.Logger) {
			l.Warn("b")
			l.Warn("a")
			l.Warn("a")
			l.Warn("b")
			l.Warn("c")
			l.Handler().(*Handler).Flush(context.Background())
			l.Warn("a")
		}, []string{`level=WARN msg=b`, `level=WARN msg=a`, `level=WARN msg=c`,
			`level=WARN msg=b repeated=1 repeated_within=1m0s`, `level=WARN msg=a repeated=1 repeated_within=1m0s`,
			`level=WARN msg=a`}},
		{"errors are throttled too, apart from warnings", func(l *slog.Logger) {
			l.Error("x")
			l.Warn("x")
			l.Error("x")
		}, []string{`level=ERROR msg=x`, `level=WARN msg=x`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var buf bytes.Buffer
				tc.log(newLogger(&buf))
				got := lines(&buf)
				if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
					t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
				}
			})
		})
	}
}

func TestThrottleBoundsTrackedMessages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		l := newLogger(&buf)
		l.Warn("first")
		l.Warn("first")
		for i := range maxKeys {
			l.Warn("other", "n", i) // one message: attributes of a record are not its identity
			l.Warn("msg" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
		}
		h := l.Handler().(*Handler)
		h.st.mu.Lock()
		n := len(h.st.runs)
		h.st.mu.Unlock()
		if n > maxKeys {
			t.Errorf("%d messages tracked, want at most %d", n, maxKeys)
		}
		if !strings.Contains(buf.String(), "msg=first repeated=1") {
			t.Error("the evicted message's summary was not written")
		}
	})
}
