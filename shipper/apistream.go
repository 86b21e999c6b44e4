package shipper

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
)

// apiStream parses the Docker logs API's output with timestamps: either
// multiplexed frames (an 8-byte header with the stream and the length,
// then "<RFC 3339 nano> <text>") or, for TTY containers, a plain byte
// stream of such lines. Every record's text is capped: a longer record
// keeps its first max+1 bytes (the partial assembler then cuts it at max
// and tags it truncated) and the rest, up to the next newline or frame, is
// skipped, so a container printing without newlines cannot grow the
// agent's memory.
type apiStream struct {
	br  *bufio.Reader
	max int // most text bytes kept of one record (the cap plus one)
	// multiplexed is decided from the first byte.
	multiplexed, decided bool
	// skipping is set while the rest of a capped line is skipped.
	skipping bool
	line     []byte
	hdr      [8]byte
}

// apiRecord is one record of the stream.
type apiRecord struct {
	stream jsonfile.Stream
	// raw is "<timestamp> <text>"; it aliases the stream's buffer until the
	// next call.
	raw []byte
	// capped says text beyond the cap was skipped.
	capped bool
}

// maxTimestamp bounds the timestamp prefix kept on top of the text cap.
const maxTimestamp = 64

func newAPIStream(r io.Reader, maxEventBytes int) *apiStream {
	return &apiStream{br: bufio.NewReaderSize(r, 64<<10), max: maxEventBytes + 1}
}

// next returns the next record. At the end of the stream it returns
// io.EOF (a trailing record without newline is returned first).
func (s *apiStream) next() (apiRecord, error) {
	if !s.decided {
		first, err := s.br.Peek(1)
		if err != nil {
			return apiRecord{}, err
		}
		s.multiplexed, s.decided = first[0] <= 2, true
	}
	if s.multiplexed {
		return s.frame()
	}
	return s.plain()
}

// limit is the most bytes of one record kept: the timestamp and the text.
func (s *apiStream) limit() int { return s.max + maxTimestamp }

func (s *apiStream) frame() (apiRecord, error) {
	if _, err := io.ReadFull(s.br, s.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return apiRecord{}, io.ErrUnexpectedEOF
		}
		return apiRecord{}, err
	}
	rec := apiRecord{stream: jsonfile.Stdout}
	if s.hdr[0] == 2 {
		rec.stream = jsonfile.Stderr
	}
	n := int64(binary.BigEndian.Uint32(s.hdr[4:]))
	keep := min(n, int64(s.limit()))
	if cap(s.line) < int(keep) {
		s.line = make([]byte, keep)
	}
	s.line = s.line[:keep]
	if _, err := io.ReadFull(s.br, s.line); err != nil {
		return apiRecord{}, io.ErrUnexpectedEOF
	}
	if keep < n {
		// Over the cap: the record ends here, truncated.
		if _, err := s.br.Discard(int(n - keep)); err != nil {
			return apiRecord{}, io.ErrUnexpectedEOF
		}
		s.line = append(s.line, '\n')
		rec.capped = true
	}
	rec.raw = s.line
	return rec, nil
}

func (s *apiStream) plain() (apiRecord, error) {
	for s.skipping {
		// The skipped line ends at a newline, or where Docker put the next
		// record right after a carriage return (the end of a TTY line it
		// received in parts carries no newline).
		p, err := s.br.Peek(max(s.br.Buffered(), 1))
		if len(p) == 0 {
			return apiRecord{}, err
		}
		i := bytes.IndexAny(p, "\r\n")
		if i < 0 {
			_, _ = s.br.Discard(len(p))
			continue
		}
		_, _ = s.br.Discard(i + 1)
		if p[i] == '\n' {
			s.skipping = false
			break
		}
		if q, _ := s.br.Peek(11); timestampStart(q) {
			s.skipping = false
		}
	}
	s.line = s.line[:0]
	for {
		p, err := s.br.Peek(max(s.br.Buffered(), 1))
		if len(p) == 0 {
			if len(s.line) > 0 {
				return apiRecord{stream: jsonfile.Stdout, raw: s.line}, nil // the stream ended inside a record
			}
			return apiRecord{}, err
		}
		nl := bytes.IndexByte(p, '\n')
		take := len(p)
		if nl >= 0 {
			take = nl + 1
		}
		if room := s.limit() - len(s.line); take > room {
			// Over the cap: return what fits as a whole (truncated)
			// record now, and skip the rest of the line.
			s.line = append(s.line, p[:room]...)
			_, _ = s.br.Discard(room)
			s.line = append(s.line, '\n')
			s.skipping = true
			return apiRecord{stream: jsonfile.Stdout, raw: s.line, capped: true}, nil
		}
		s.line = append(s.line, p[:take]...)
		_, _ = s.br.Discard(take)
		if nl >= 0 {
			return apiRecord{stream: jsonfile.Stdout, raw: s.line}, nil
		}
	}
}

// split separates a record's timestamp and text; ok is false if the record
// has no timestamp.
func (rec apiRecord) split() (ts, text []byte, ok bool) {
	sp := bytes.IndexByte(rec.raw, ' ')
	if sp < 0 {
		return nil, nil, false
	}
	return rec.raw[:sp], rec.raw[sp+1:], true
}

// timestampStart reports whether b starts like Docker's RFC 3339 timestamp
// ("2026-11-30T").
func timestampStart(b []byte) bool {
	if len(b) < 11 || b[4] != '-' || b[7] != '-' || b[10] != 'T' {
		return false
	}
	for _, i := range []int{0, 1, 2, 3, 5, 6, 8, 9} {
		if b[i] < '0' || b[i] > '9' {
			return false
		}
	}
	return true
}
