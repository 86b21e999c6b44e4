// Package jsonlog decodes log lines that are JSON objects (structured
// application logs) into a message, a level and the remaining fields.
package jsonlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Result is a decoded structured log line.
type Result struct {
	// Message is the text under msg/message (nil when absent).
	Message []byte
	// Level is the lower-cased level under level/lvl/severity/log.level.
	Level string
	// Fields is the remaining object re-encoded as JSON with sorted keys
	// (nil when nothing remains).
	Fields []byte
}

var (
	messageKeys = []string{"message", "msg"}
	levelKeys   = []string{"level", "lvl", "severity", "log.level", "levelname"}
)

// Decode parses line as a JSON object. ok is false when the line is not a
// JSON object; err explains a line that looks like one but does not parse.
func Decode(line []byte) (res Result, ok bool, err error) {
	trimmed := bytes.TrimSpace(line)
	if len(trimmed) < 2 || trimmed[0] != '{' {
		return res, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return res, false, fmt.Errorf("decode json log: %w", err)
	}
	if dec.More() {
		return res, false, fmt.Errorf("decode json log: trailing data")
	}
	for _, k := range messageKeys {
		if v, found := m[k]; found {
			if s, isStr := v.(string); isStr {
				res.Message = []byte(s)
				delete(m, k)
				break
			}
		}
	}
	for _, k := range levelKeys {
		if v, found := m[k]; found {
			if s, isStr := v.(string); isStr && s != "" {
				res.Level = strings.ToLower(s)
				delete(m, k)
				break
			}
		}
	}
	if len(m) > 0 {
		b, err := json.Marshal(m)
		if err != nil {
			return Result{}, false, fmt.Errorf("encode json fields: %w", err)
		}
		res.Fields = b
	}
	return res, true, nil
}
