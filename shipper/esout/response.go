package esout

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// bulkFilterPath trims bulk responses to what parseBulkResponse reads.
const bulkFilterPath = "errors,items.*.status,items.*.error.type,items.*.error.reason"

// itemResult is one item of a bulk response. errType and errReason are
// only set (and allocated) for failed items.
type itemResult struct {
	status    int
	errType   string
	errReason string
}

// bulkResponse is a parsed bulk response. When errors is false and the
// "errors" key came before "items" (as Elasticsearch writes it), items is
// not parsed at all: allOK is set, every item succeeded.
type bulkResponse struct {
	errors bool
	allOK  bool // fast path taken: items not parsed, every item succeeded
	items  []itemResult
}

// errSyntax is returned (wrapped) for a response that is not a bulk
// response.
var errSyntax = errors.New("malformed bulk response")

// parseBulkResponse parses a bulk response body without reflection,
// reusing dst's storage for the items. Only items' status and error
// type/reason are read; everything else is skipped. Strings are converted
// only for failed items.
func parseBulkResponse(body []byte, dst []itemResult) (bulkResponse, error) {
	p := parser{b: body}
	res := bulkResponse{items: dst[:0]}
	sawErrors, sawItems := false, false
	p.ws()
	if !p.consume('{') {
		return res, p.fail("expected object")
	}
	p.ws()
	if p.consume('}') {
		return res, p.fail("no items")
	}
	for {
		p.ws()
		key, _, ok := p.str()
		if !ok {
			return res, p.fail("expected key")
		}
		p.ws()
		if !p.consume(':') {
			return res, p.fail("expected ':'")
		}
		p.ws()
		switch string(key) {
		case "errors":
			switch {
			case p.lit("true"):
				res.errors = true
			case p.lit("false"):
				res.errors = false
				if !sawItems {
					// Fast path: nothing failed; items need no parsing.
					res.items, res.allOK = nil, true
					return res, nil
				}
			default:
				return res, p.fail("errors: expected boolean")
			}
			sawErrors = true
		case "items":
			items, err := p.items(res.items[:0])
			if err != nil {
				return res, err
			}
			res.items = items
			sawItems = true
		default:
			if !p.skip() {
				return res, p.fail("bad value")
			}
		}
		p.ws()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			break
		}
		return res, p.fail("expected ',' or '}'")
	}
	p.ws()
	if p.i != len(p.b) {
		return res, p.fail("trailing data")
	}
	if !sawItems || !sawErrors {
		return res, p.fail("missing errors or items")
	}
	return res, nil
}

// parser is a cursor over a JSON document.
type parser struct {
	b []byte
	i int
}

func (p *parser) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", errSyntax, what, p.i)
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) consume(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *parser) lit(s string) bool {
	if len(p.b)-p.i >= len(s) && string(p.b[p.i:p.i+len(s)]) == s {
		p.i += len(s)
		return true
	}
	return false
}

// str reads a string; raw is its content between the quotes, still escaped
// when escaped is true.
func (p *parser) str() (raw []byte, escaped, ok bool) {
	if !p.consume('"') {
		return nil, false, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			raw = p.b[start:p.i]
			p.i++
			return raw, escaped, true
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return nil, false, false
		default:
			p.i++
		}
	}
	return nil, false, false
}

// strValue reads a string and returns it unescaped.
func (p *parser) strValue() (string, bool) {
	start := p.i
	raw, escaped, ok := p.str()
	if !ok {
		return "", false
	}
	if !escaped {
		if !utf8.Valid(raw) {
			return sanitizeUTF8(raw), true
		}
		return string(raw), true
	}
	var s string
	if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
		return "", false
	}
	return s, true
}

// maxDepth bounds the nesting skip accepts.
const maxDepth = 64

// sanitizeUTF8 replaces each invalid byte by U+FFFD, as encoding/json
// does.
func sanitizeUTF8(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			sb.WriteString("\uFFFD")
		} else {
			sb.Write(b[:size])
		}
		b = b[size:]
	}
	return sb.String()
}

// maxDepth bounds of any type.
func (p *parser) skip() bool { return p.skipDepth(0) }

func (p *parser) skipDepth(depth int) bool {
	if depth > maxDepth {
		return false
	}
	p.ws()
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		p.ws()
		if p.consume('}') {
			return true
		}
		for {
			p.ws()
			if !p.objectKey() || !p.skipDepth(depth+1) {
				return false
			}
			p.ws()
			if !p.consume(',') {
				return p.consume('}')
			}
		}
	case c == '[':
		p.i++
		p.ws()
		if p.consume(']') {
			return true
		}
		for {
			if !p.skipDepth(depth + 1) {
				return false
			}
			p.ws()
			if !p.consume(',') {
				return p.consume(']')
			}
		}
	case c == '"':
		_, _, ok := p.str()
		return ok
	case c == 't':
		return p.lit("true")
	case c == 'f':
		return p.lit("false")
	case c == 'n':
		return p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return false
}

// objectKey reads `"key":`.
func (p *parser) objectKey() bool {
	if _, _, ok := p.str(); !ok {
		return false
	}
	p.ws()
	return p.consume(':')
}

func (p *parser) number() bool {
	start := p.i
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			p.i++
		default:
			return p.i > start
		}
	}
	return p.i > start
}

// int reads a non-negative integer of at most 9 digits.
func (p *parser) int() (int, bool) {
	start, n := p.i, 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' && p.i-start < 9 {
		n = n*10 + int(p.b[p.i]-'0')
		p.i++
	}
	if p.i == start {
		return 0, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return 0, false
		}
	}
	return n, true
}

// items reads the items array: [{"<action>":{...}}, ...].
func (p *parser) items(dst []itemResult) ([]itemResult, error) {
	if !p.consume('[') {
		return dst, p.fail("items: expected array")
	}
	p.ws()
	if p.consume(']') {
		return dst, nil
	}
	for {
		p.ws()
		if !p.consume('{') {
			return dst, p.fail("item: expected object")
		}
		p.ws()
		if !p.objectKey() {
			return dst, p.fail("item: expected action key")
		}
		p.ws()
		it, err := p.item()
		if err != nil {
			return dst, err
		}
		dst = append(dst, it)
		p.ws()
		if !p.consume('}') {
			return dst, p.fail("item: expected a single action")
		}
		p.ws()
		if p.consume(',') {
			continue
		}
		if p.consume(']') {
			return dst, nil
		}
		return dst, p.fail("items: expected ',' or ']'")
	}
}

// item reads {"status":N,"error":{"type":..,"reason":..},...}.
func (p *parser) item() (itemResult, error) {
	var it itemResult
	if !p.consume('{') {
		return it, p.fail("item: expected object")
	}
	sawStatus := false
	p.ws()
	if !p.consume('}') {
		for {
			p.ws()
			key, _, ok := p.str()
			if !ok {
				return it, p.fail("item: expected key")
			}
			p.ws()
			if !p.consume(':') {
				return it, p.fail("item: expected ':'")
			}
			p.ws()
			switch string(key) {
			case "status":
				n, ok := p.int()
				if !ok || n < 100 || n > 599 {
					return it, p.fail("item: bad status")
				}
				it.status, sawStatus = n, true
			case "error":
				if err := p.itemError(&it); err != nil {
					return it, err
				}
			default:
				if !p.skip() {
					return it, p.fail("item: bad value")
				}
			}
			p.ws()
			if p.consume(',') {
				continue
			}
			if p.consume('}') {
				break
			}
			return it, p.fail("item: expected ',' or '}'")
		}
	}
	if !sawStatus {
		return it, p.fail("item: no status")
	}
	return it, nil
}

// itemError reads an item's error: an object with type and reason, or
// (very old servers) a plain string.
func (p *parser) itemError(it *itemResult) error {
	if p.i < len(p.b) && p.b[p.i] == '"' {
		s, ok := p.strValue()
		if !ok {
			return p.fail("error: bad string")
		}
		it.errReason = s
		return nil
	}
	if p.lit("null") {
		return nil
	}
	if !p.consume('{') {
		return p.fail("error: expected object")
	}
	p.ws()
	if p.consume('}') {
		return nil
	}
	for {
		p.ws()
		key, _, ok := p.str()
		if !ok {
			return p.fail("error: expected key")
		}
		p.ws()
		if !p.consume(':') {
			return p.fail("error: expected ':'")
		}
		p.ws()
		var dst *string
		switch string(key) {
		case "type":
			dst = &it.errType
		case "reason":
			dst = &it.errReason
		}
		if dst != nil && p.i < len(p.b) && p.b[p.i] == '"' {
			s, ok := p.strValue()
			if !ok {
				return p.fail("error: bad string")
			}
			*dst = s
		} else if !p.skip() {
			return p.fail("error: bad value")
		}
		p.ws()
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return nil
		}
		return p.fail("error: expected ',' or '}'")
	}
}
