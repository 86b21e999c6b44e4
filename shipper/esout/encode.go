package esout

import "unicode/utf8"

// appendCreate appends one bulk "create" entry: the action line
// {"create":{"_index":...,"_id":...}} and the source line, each followed by
// a newline. An empty id is left out (Elasticsearch then generates one).
// body must be a single line of JSON.
func appendCreate(dst []byte, index, id string, body []byte) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = appendJSONString(dst, index)
	if id != "" {
		dst = append(dst, `,"_id":`...)
		dst = appendJSONString(dst, id)
	}
	dst = append(dst, "}}\n"...)
	dst = append(dst, body...)
	return append(dst, '\n')
}

// createSize is the number of bytes appendCreate appends, assuming index and
// id need no escaping (an estimate otherwise).
func createSize(index, id string, body []byte) int {
	n := len(`{"create":{"_index":""}}`) + 2 + len(index) + len(body)
	if id != "" {
		n += len(`,"_id":""`) + len(id)
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a quoted JSON string, escaping quotes,
// backslashes and control bytes and replacing invalid UTF-8 with U+FFFD.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
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
