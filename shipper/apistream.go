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
		_, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
			s.skipping = false
		case !errors.Is(err, bufio.ErrBufferFull):
			return apiRecord{}, err
		}
	}
	rec := apiRecord{stream: jsonfile.Stdout}
	s.line = s.line[:0]
	for {
		chunk, err := s.br.ReadSlice('\n')
		if room := s.limit() - len(s.line); len(chunk) > room {
			// Over the cap: return what fits as a whole (truncated)
			// record now, and skip the rest of the line.
			s.line = append(append(s.line, chunk[:room]...), '\n')
			s.skipping = err != nil
			return apiRecord{stream: rec.stream, raw: s.line, capped: true}, nil
		}
		s.line = append(s.line, chunk...)
		switch {
		case err == nil:
			rec.raw = s.line
			return rec, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case len(s.line) > 0:
			rec.raw = s.line
			return rec, nil // the stream ended inside a record
		default:
			return apiRecord{}, err
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
