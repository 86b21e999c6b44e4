// Package jsonesc appends strings as JSON string literals. It is shared by
// the document encoder (shipper/ecs) and the bulk writer (shipper/esout),
// so that both escape the same way.
package jsonesc

import "unicode/utf8"

// safe marks the ASCII bytes that are copied into a JSON string unchanged.
var safe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// AppendString appends s as a quoted JSON string, sanitized: quotes,
// backslashes and control bytes are escaped and invalid UTF-8 becomes
// U+FFFD.
func AppendString(dst []byte, s string) []byte {
	return appendString(dst, s)
}

// AppendBytes is AppendString for a byte slice.
func AppendBytes(dst []byte, s []byte) []byte {
	return appendString(dst, s)
}

// IsPlainASCII reports whether b is copied into a JSON string unchanged.
func IsPlainASCII(b []byte) bool {
	for _, c := range b {
		if !safe[c] {
			return false
		}
	}
	return true
}

func appendString[T string | []byte](dst []byte, s T) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if safe[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
			if r != utf8.RuneError || size != 1 {
				i += size
				continue
			}
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
