// Package multiline joins consecutive log lines into one event, as a stack
// trace printed line by line: by a pattern (with negate and after/before
// matching, the semantics Filebeat users know) or by a built-in detector for
// Java, Python or Go traces.
//
// Grouping depends only on the lines and their Docker timestamps, never on
// when they were read, so re-reading a log from a checkpoint forms exactly
// the same events again.
package multiline

import (
	"bytes"
	"fmt"
	"regexp"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/logline"
)

// Match says where continuation lines attach.
type Match string

// The match modes.
const (
	// After: a continuation line belongs to the line before it.
	After Match = "after"
	// Before: a continuation line belongs to the line after it.
	Before Match = "before"
)

// The built-in detectors.
const (
	PresetJava   = "java"
	PresetPython = "python"
	PresetGo     = "go"
)

// Config describes one container's multiline rule.
type Config struct {
	// Pattern is a regular expression; with Negate false, lines matching it
	// are continuation lines; with Negate true, lines not matching it are.
	Pattern string
	Negate  bool
	// Match is After (default) or Before.
	Match Match
	// Preset selects a built-in detector (java, python, go) instead of
	// Pattern.
	Preset string
	// MaxLines and MaxBytes bound one event; the rest of the event's lines
	// are dropped and it is flagged truncated.
	MaxLines int
	MaxBytes int
	// Timeout ends an event when the next line's Docker timestamp is more
	// than Timeout after the event's last line, and lets an idle reader
	// flush a pending event once that much wall time has passed.
	Timeout time.Duration
}

// Enabled reports whether the config asks for multiline grouping.
func (c Config) Enabled() bool { return c.Pattern != "" || c.Preset != "" }

// detector decides whether a line continues the current event.
type detector interface {
	// reset starts a new event whose first line is first.
	reset(first []byte)
	// continues reports whether line continues the event.
	continues(line []byte) bool
}

// Aggregator groups lines into events. It is not safe for concurrent use.
type Aggregator struct {
	cfg     Config
	before  bool
	det     detector
	buf     []byte
	timeRaw []byte
	ev      logline.Line
	last    int64 // Docker time of the last line added
	pending bool
}

// New compiles cfg into an aggregator.
func New(cfg Config) (*Aggregator, error) {
	if cfg.MaxLines <= 0 {
		cfg.MaxLines = 500
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	a := &Aggregator{cfg: cfg}
	switch cfg.Preset {
	case "":
		if cfg.Pattern == "" {
			return nil, fmt.Errorf("multiline: no pattern or preset")
		}
		re, err := regexp.Compile(cfg.Pattern)
		if err != nil {
			return nil, fmt.Errorf("multiline: pattern: %w", err)
		}
		a.det = &patternDetector{re: re, negate: cfg.Negate}
		switch cfg.Match {
		case "", After:
		case Before:
			a.before = true
		default:
			return nil, fmt.Errorf("multiline: match must be after or before, got %q", cfg.Match)
		}
	case PresetJava:
		a.det = &javaDetector{}
	case PresetPython:
		a.det = &pythonDetector{}
	case PresetGo:
		a.det = &goDetector{}
	default:
		return nil, fmt.Errorf("multiline: unknown preset %q (want java, python or go)", cfg.Preset)
	}
	return a, nil
}

// Push adds a line; finished events are handed to emit, which must not keep
// the Line's byte slices.
func (a *Aggregator) Push(l *logline.Line, emit func(*logline.Line)) {
	if a.pending && (l.Stream != a.ev.Stream || (a.cfg.Timeout > 0 && l.Time-a.last > int64(a.cfg.Timeout))) {
		a.Flush(emit)
	}
	if a.before {
		// A matching line continues into the next one; a non-matching line
		// ends the event it belongs to.
		if !a.pending {
			a.start(l)
		} else {
			a.add(l)
		}
		if !a.det.continues(l.Text) {
			a.Flush(emit)
		}
		return
	}
	if a.pending && a.det.continues(l.Text) {
		a.add(l)
		return
	}
	a.Flush(emit)
	a.start(l)
}

func (a *Aggregator) start(l *logline.Line) {
	a.pending = true
	a.buf = append(a.buf[:0], l.Text...)
	a.timeRaw = append(a.timeRaw[:0], l.TimeRaw...)
	a.ev = *l
	a.ev.Text, a.ev.TimeRaw = nil, nil
	a.last = l.Time
	if len(a.buf) > a.cfg.MaxBytes {
		a.buf = a.buf[:a.cfg.MaxBytes]
		a.ev.Truncated = true
	}
	a.det.reset(l.Text)
}

func (a *Aggregator) add(l *logline.Line) {
	a.ev.End = l.End
	a.ev.Records += l.Records
	a.last = l.Time
	if l.Truncated {
		a.ev.Truncated = true
	}
	if a.ev.Lines >= a.cfg.MaxLines {
		a.ev.Truncated = true
		return
	}
	a.ev.Lines++
	room := a.cfg.MaxBytes - len(a.buf)
	text := l.Text
	if 1+len(text) > room {
		a.ev.Truncated = true
		if room <= 0 {
			return
		}
		a.buf = append(a.buf, '\n')
		text = text[:room-1]
	} else {
		a.buf = append(a.buf, '\n')
	}
	a.buf = append(a.buf, text...)
}

// Pending reports whether an event is being assembled, and where it started.
func (a *Aggregator) Pending() (logline.Pos, bool) { return a.ev.Start, a.pending }

// FlushIdle emits the pending event if its last line's Docker time is more
// than the timeout before now (Unix nanoseconds). Callers use it only when
// they have read everything available, so that a later line would have
// started a new event by the timestamp rule anyway.
func (a *Aggregator) FlushIdle(now int64, emit func(*logline.Line)) {
	if a.pending && a.cfg.Timeout > 0 && now-a.last > int64(a.cfg.Timeout) {
		a.Flush(emit)
	}
}

// Flush emits the pending event, if any.
func (a *Aggregator) Flush(emit func(*logline.Line)) {
	if !a.pending {
		return
	}
	a.pending = false
	ev := a.ev
	ev.Text = a.buf
	ev.TimeRaw = a.timeRaw
	emit(&ev)
}

// Reset drops any pending event.
func (a *Aggregator) Reset() { a.pending = false }

type patternDetector struct {
	re     *regexp.Regexp
	negate bool
}

func (d *patternDetector) reset([]byte) {}
func (d *patternDetector) continues(line []byte) bool {
	return d.re.Match(line) != d.negate
}

func indented(line []byte) bool {
	return len(line) > 0 && (line[0] == ' ' || line[0] == '\t')
}

func isSpace(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

// javaExceptionLine matches the header of a Java exception, e.g.
// "java.lang.IllegalStateException: boom" or "Exception in thread ...".
var javaExceptionLine = regexp.MustCompile(`^(Exception in thread "|([a-zA-Z_$][\w$]*\.)+[\w$]*(Exception|Error|Throwable)(:|$))`)

// javaDetector groups a Java stack trace with the line before it: "\tat",
// "\t... N more", "Caused by:", "Suppressed:" and other indented lines, and
// a qualified exception class line right after a log line.
type javaDetector struct{ lines int }

func (d *javaDetector) reset([]byte) { d.lines = 1 }
func (d *javaDetector) continues(line []byte) bool {
	d.lines++
	switch {
	case indented(line) && !isSpace(line):
		return true
	case bytes.HasPrefix(line, []byte("Caused by:")), bytes.HasPrefix(line, []byte("Suppressed:")):
		return true
	case d.lines == 2 && javaExceptionLine.Match(line) && !bytes.HasPrefix(line, []byte("Exception in thread")):
		return true
	}
	return false
}

// pythonExceptionLine matches the last line of a traceback, e.g.
// "ValueError: bad" or "KeyboardInterrupt".
var pythonExceptionLine = regexp.MustCompile(`^[A-Za-z_][\w.]*(: |:$|$)`)

// pythonDetector groups "Traceback (most recent call last):" and what follows
// it, including chained exceptions, with the line before it.
type pythonDetector struct {
	inTrace  bool
	afterExc bool
	prevInd  bool
}

func (d *pythonDetector) reset(first []byte) {
	d.inTrace = bytes.HasPrefix(first, []byte("Traceback (most recent call last):"))
	d.afterExc, d.prevInd = false, false
}

func (d *pythonDetector) continues(line []byte) bool {
	switch {
	case bytes.HasPrefix(line, []byte("Traceback (most recent call last):")):
		d.inTrace, d.afterExc, d.prevInd = true, false, false
		return true
	case !d.inTrace:
		return false
	case indented(line) && !isSpace(line):
		d.prevInd = true
		return !d.afterExc
	case d.prevInd && pythonExceptionLine.Match(line):
		d.afterExc, d.prevInd = true, false
		return true
	case d.afterExc && (isSpace(line) ||
		bytes.HasPrefix(line, []byte("During handling of the above exception")) ||
		bytes.HasPrefix(line, []byte("The above exception was the direct cause"))):
		return true
	}
	return false
}

// goFuncLine matches a Go traceback's function line, e.g.
// "main.main()" or "net/http.(*conn).serve(0xc000, {0x1, 0x2})".
var goFuncLine = regexp.MustCompile(`^[\w./*()\-\[\]]+\(.*\)$`)

// goDetector groups a Go panic or fatal error with its goroutine dumps.
type goDetector struct{ inTrace bool }

func (d *goDetector) reset(first []byte) {
	d.inTrace = bytes.HasPrefix(first, []byte("panic: ")) || bytes.HasPrefix(first, []byte("fatal error: "))
}

func (d *goDetector) continues(line []byte) bool {
	if !d.inTrace {
		return false
	}
	switch {
	case isSpace(line), indented(line),
		bytes.HasPrefix(line, []byte("goroutine ")),
		bytes.HasPrefix(line, []byte("created by ")),
		bytes.HasPrefix(line, []byte("[signal ")),
		bytes.HasPrefix(line, []byte("panic: ")),
		bytes.HasPrefix(line, []byte("exit status ")),
		goFuncLine.Match(line):
		return true
	}
	return false
}
