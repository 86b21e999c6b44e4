// Package jsonfile decodes the records of Docker's json-file log driver:
// one JSON object per line with the keys "log", "stream" and "time".
//
// The decoder is hand-rolled for speed: it does not allocate when the log
// text contains no escapes, and appends the unescaped text to a caller-owned
// scratch buffer when it does.
package jsonfile

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Stream is the output stream a record was written to.
type Stream uint8

// The streams of a json-file record.
const (
	StreamUnknown Stream = iota
	Stdout
	Stderr
)

// String returns stdout, stderr or unknown.
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	}
	return "unknown"
}

// Record is one decoded json-file record.
type Record struct {
	// Log is the unescaped log text including Docker's trailing newline;
	// a record whose text lacks it is a partial line that continues in the
	// next record. It aliases either the input line or the scratch buffer.
	Log []byte
	// Stream is stdout or stderr.
	Stream Stream
	// Time is the record's timestamp in Unix nanoseconds.
	Time int64
	// TimeRaw is the timestamp exactly as Docker wrote it (RFC 3339 with
	// nanoseconds); it aliases the input line.
	TimeRaw []byte
}

// Partial reports whether the record is a fragment of a longer line.
func (r *Record) Partial() bool { return len(r.Log) == 0 || r.Log[len(r.Log)-1] != '\n' }

// ErrSyntax is wrapped by every decoding error.
var ErrSyntax = errors.New("json-file record: syntax error")

func syntaxErr(what string, pos int) error {
	return fmt.Errorf("%w: %s at byte %d", ErrSyntax, what, pos)
}

// Parse decodes one record from line (without the trailing newline). The
// unescaped log text is appended to scratch when it contains escapes; the
// possibly grown scratch is returned for reuse. Unknown keys (such as the
// "attrs" that log-opt labels add) are skipped. A record without "time" gets
// Time 0 and an empty TimeRaw.
func Parse(line, scratch []byte) (Record, []byte, error) {
	var rec Record
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return rec, scratch, syntaxErr("expected '{'", i)
	}
	i = skipWS(line, i+1)
	if i < len(line) && line[i] == '}' {
		return rec, scratch, nil
	}
	for {
		if i >= len(line) || line[i] != '"' {
			return rec, scratch, syntaxErr("expected key", i)
		}
		kStart := i + 1
		kEnd, esc, err := scanString(line, kStart)
		if err != nil {
			return rec, scratch, err
		}
		key := line[kStart:kEnd]
		if esc {
			key = nil // no known key needs escapes
		}
		i = skipWS(line, kEnd+1)
		if i >= len(line) || line[i] != ':' {
			return rec, scratch, syntaxErr("expected ':'", i)
		}
		i = skipWS(line, i+1)
		switch string(key) {
		case "log", "stream", "time":
			if i >= len(line) || line[i] != '"' {
				return rec, scratch, syntaxErr("expected string value", i)
			}
			vStart := i + 1
			vEnd, esc, err := scanString(line, vStart)
			if err != nil {
				return rec, scratch, err
			}
			raw := line[vStart:vEnd]
			switch string(key) {
			case "log":
				if esc {
					n := len(scratch)
					scratch, err = unescape(scratch, raw)
					if err != nil {
						return rec, scratch, fmt.Errorf("%w: log: %w", ErrSyntax, err)
					}
					rec.Log = scratch[n:]
				} else {
					rec.Log = raw
				}
			case "stream":
				switch string(raw) {
				case "stdout":
					rec.Stream = Stdout
				case "stderr":
					rec.Stream = Stderr
				}
			case "time":
				if esc {
					return rec, scratch, syntaxErr("escaped time", vStart)
				}
				t, err := ParseTime(raw)
				if err != nil {
					return rec, scratch, fmt.Errorf("%w: time: %w", ErrSyntax, err)
				}
				rec.Time, rec.TimeRaw = t, raw
			}
			i = vEnd + 1
		default:
			j, err := skipValue(line, i, 0)
			if err != nil {
				return rec, scratch, err
			}
			i = j
		}
		i = skipWS(line, i)
		if i >= len(line) {
			return rec, scratch, syntaxErr("unterminated object", i)
		}
		if line[i] == '}' {
			if j := skipWS(line, i+1); j != len(line) {
				return rec, scratch, syntaxErr("trailing data", j)
			}
			return rec, scratch, nil
		}
		if line[i] != ',' {
			return rec, scratch, syntaxErr("expected ',' or '}'", i)
		}
		i = skipWS(line, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// scanString finds the closing quote of the string whose content starts at
// i and reports whether it contains escapes.
func scanString(b []byte, i int) (end int, esc bool, err error) {
	j := i
	for {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return 0, false, syntaxErr("unterminated string", len(b))
		}
		q += j
		n := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 1 { // escaped quote
			j = q + 1
			continue
		}
		seg := b[i:q]
		if hasControl(seg) {
			return 0, false, syntaxErr("control character in string", i)
		}
		return q, bytes.IndexByte(seg, '\\') >= 0, nil
	}
}

const maxDepth = 64

func skipValue(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, syntaxErr("nesting too deep", i)
	}
	if i >= len(b) {
		return 0, syntaxErr("expected value", i)
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := scanString(b, i+1)
		if err != nil {
			return 0, err
		}
		return end + 1, nil
	case c == '{' || c == '[':
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, syntaxErr("expected key", i)
				}
				end, _, err := scanString(b, i+1)
				if err != nil {
					return 0, err
				}
				i = skipWS(b, end+1)
				if i >= len(b) || b[i] != ':' {
					return 0, syntaxErr("expected ':'", i)
				}
				i = skipWS(b, i+1)
			}
			j, err := skipValue(b, i, depth+1)
			if err != nil {
				return 0, err
			}
			i = skipWS(b, j)
			if i >= len(b) {
				return 0, syntaxErr("unterminated container", i)
			}
			if b[i] == closer {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, syntaxErr("expected ','", i)
			}
			i = skipWS(b, i+1)
		}
	default:
		// number, true, false, null: consume the literal's characters.
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\r' || c == '\n' {
				break
			}
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E') {
				return 0, syntaxErr("invalid literal", j)
			}
			j++
		}
		if j == i {
			return 0, syntaxErr("expected value", i)
		}
		return j, nil
	}
}

// unescape appends the JSON string content raw, with escapes resolved, to dst.
func unescape(dst, raw []byte) ([]byte, error) {
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			// copy a run of plain bytes at once
			j := i + 1
			for j < len(raw) && raw[j] != '\\' {
				j++
			}
			dst = append(dst, raw[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(raw) {
			return dst, errors.New("truncated escape")
		}
		switch raw[i+1] {
		case '"', '\\', '/':
			dst = append(dst, raw[i+1])
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, ok := hex4(raw, i+2)
			if !ok {
				return dst, errors.New("invalid \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(raw, i+2); ok && i+1 < len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return dst, fmt.Errorf("invalid escape %q", raw[i+1])
		}
		i += 2
	}
	return dst, nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// ParseTime parses an RFC 3339 timestamp with up to nine fractional digits
// into Unix nanoseconds. The UTC form Docker writes
// (2006-01-02T15:04:05.999999999Z) is parsed without allocating; other
// offsets fall back to the time package.
func ParseTime(b []byte) (int64, error) {
	if len(b) >= 20 && b[len(b)-1] == 'Z' && b[4] == '-' && b[7] == '-' && b[10] == 'T' && b[13] == ':' && b[16] == ':' {
		year, ok1 := digits(b, 0, 4)
		month, ok2 := digits(b, 5, 2)
		day, ok3 := digits(b, 8, 2)
		hour, ok4 := digits(b, 11, 2)
		minute, ok5 := digits(b, 14, 2)
		sec, ok6 := digits(b, 17, 2)
		if ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour < 24 && minute < 60 && sec < 61 {
			var frac int64
			rest := b[19 : len(b)-1]
			ok := true
			if len(rest) > 0 {
				if rest[0] != '.' || len(rest) < 2 || len(rest) > 10 {
					ok = false
				} else {
					n := 0
					for _, c := range rest[1:] {
						if c < '0' || c > '9' {
							ok = false
							break
						}
						frac = frac*10 + int64(c-'0')
						n++
					}
					for ; n < 9; n++ {
						frac *= 10
					}
				}
			}
			if ok {
				days := daysFromCivil(int64(year), int64(month), int64(day))
				return ((days*24+int64(hour))*60+int64(minute))*60*1e9 + int64(sec)*1e9 + frac, nil
			}
		}
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return 0, err
	}
	return t.UnixNano(), nil
}

func digits(b []byte, i, n int) (int, bool) {
	v := 0
	for _, c := range b[i : i+n] {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int(c-'0')
	}
	return v, true
}

// daysFromCivil returns the days since 1970-01-01 of a proleptic Gregorian
// date (Howard Hinnant's algorithm).
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	if y < 0 && y%400 != 0 {
		era = (y - 399) / 400
	}
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func hasControl(b []byte) bool {
	for _, c := range b {
		if c < 0x20 {
			return true
		}
	}
	return false
}
