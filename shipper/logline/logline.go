// Package logline defines the unit that flows through the shipper's reading
// pipeline: a log line (or a multi-line event) with its position in the
// container's log files.
package logline

import "github.com/heartwood-ops/heartwood/shipper/jsonfile"

// Pos is a position in a container's sequence of log files: the reader's
// number for the file (increasing with every file it follows) and a byte
// offset in it.
type Pos struct {
	File uint32
	Off  int64
}

// Less reports whether p comes before q in the container's log.
func (p Pos) Less(q Pos) bool {
	if p.File != q.File {
		return p.File < q.File
	}
	return p.Off < q.Off
}

// Line is one log line, or one event assembled from several lines. Text and
// TimeRaw may alias buffers owned by the producer: a consumer that keeps
// them past the call that handed it the Line must copy them.
type Line struct {
	// Text is the message without its trailing newline.
	Text []byte
	// Time is the Docker timestamp of the first record, Unix nanoseconds.
	Time int64
	// TimeRaw is that timestamp as Docker wrote it (RFC 3339), or nil.
	TimeRaw []byte
	// Stream is stdout or stderr.
	Stream jsonfile.Stream
	// Start is the position of the first record; End is the position just
	// after the last one.
	Start, End Pos
	// Records is how many json-file records the line was built from.
	Records int
	// Lines is how many lines a multi-line event joined (1 otherwise).
	Lines int
	// Truncated is set when the event was cut at the maximum event size or
	// line count.
	Truncated bool
}
