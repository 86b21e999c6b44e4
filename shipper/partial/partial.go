// Package partial reassembles the log lines that Docker splits into 16 KiB
// records. A json-file record whose text lacks the trailing newline is
// continued by the next record of the same stream.
package partial

import (
	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
)

// Assembler joins partial records into whole lines of at most a maximum
// size. It is not safe for concurrent use.
//
// A record of the other stream arriving while a partial line is pending
// ends that line early (it is emitted as it is): the assembler then never
// holds more than one pending line, so every line occupies a contiguous
// range of the file, which keeps checkpoints simple and replays identical.
type Assembler struct {
	max     int
	buf     []byte
	timeRaw []byte
	line    logline.Line
	pending bool
}

// New returns an assembler that truncates lines longer than maxBytes
// (minimum 1).
func New(maxBytes int) *Assembler {
	return &Assembler{max: max(maxBytes, 1)}
}

// Push adds the record found between start and end. Complete lines are
// handed to emit, which must not keep the Line's byte slices; Push may call
// emit zero, one or two times.
func (a *Assembler) Push(rec *jsonfile.Record, start, end logline.Pos, emit func(*logline.Line)) {
	if a.pending && a.line.Stream != rec.Stream {
		a.Flush(emit)
	}
	if !a.pending {
		if !rec.Partial() {
			// Fast path: a whole line in one record, no copy.
			text := rec.Log[:len(rec.Log)-1]
			l := logline.Line{Text: text, Time: rec.Time, TimeRaw: rec.TimeRaw, Stream: rec.Stream,
				Start: start, End: end, Records: 1, Lines: 1}
			if len(text) > a.max {
				l.Text, l.Truncated = text[:a.max], true
			}
			emit(&l)
			return
		}
		a.pending = true
		a.buf = a.buf[:0]
		a.timeRaw = append(a.timeRaw[:0], rec.TimeRaw...)
		a.line = logline.Line{Time: rec.Time, Stream: rec.Stream, Start: start, Lines: 1}
	}
	text := rec.Log
	last := !rec.Partial()
	if last {
		text = text[:len(text)-1]
	}
	if room := a.max - len(a.buf); len(text) > room {
		text = text[:max(room, 0)]
		a.line.Truncated = true
	}
	a.buf = append(a.buf, text...)
	a.line.End = end
	a.line.Records++
	if last {
		a.Flush(emit)
	}
}

// Pending reports whether a partial line is waiting for its continuation,
// and where it started.
func (a *Assembler) Pending() (logline.Pos, bool) { return a.line.Start, a.pending }

// Flush emits the pending partial line, if any, as it is.
func (a *Assembler) Flush(emit func(*logline.Line)) {
	if !a.pending {
		return
	}
	a.pending = false
	l := a.line
	l.Text = a.buf
	l.TimeRaw = a.timeRaw
	emit(&l)
}

// Reset drops any pending partial line.
func (a *Assembler) Reset() { a.pending = false }
