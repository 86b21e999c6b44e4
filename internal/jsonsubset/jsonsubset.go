// Package jsonsubset compares decoded JSON documents the way "is what I
// wrote still there" checks need: every value set in the wanted document
// must be in the other, which may hold more (fields a server adds).
package jsonsubset

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Contains reports whether every value set in want is in have. Maps may
// have extra keys in have; arrays must match element by element. Strings
// that hold JSON objects or arrays are compared as JSON, and scalars of
// different JSON types compare by their text (servers echo false as
// "false" and numbers as strings).
func Contains(want, have any) bool {
	switch w := want.(type) {
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !Contains(v, h[k]) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !Contains(w[i], h[i]) {
				return false
			}
		}
		return true
	case string:
		if h, ok := have.(string); ok && h != w && (strings.HasPrefix(w, "{") || strings.HasPrefix(w, "[")) {
			var wj, hj any
			if json.Unmarshal([]byte(w), &wj) == nil && json.Unmarshal([]byte(h), &hj) == nil {
				return Contains(wj, hj)
			}
		}
	}
	if want == nil || have == nil {
		return want == nil && have == nil
	}
	switch have.(type) {
	case map[string]any, []any:
		return false
	}
	return fmt.Sprint(want) == fmt.Sprint(have)
}

// ContainsJSON decodes both documents and reports Contains(want, have).
func ContainsJSON(want, have []byte) (bool, error) {
	var w, h any
	if err := json.Unmarshal(want, &w); err != nil {
		return false, err
	}
	if err := json.Unmarshal(have, &h); err != nil {
		return false, err
	}
	return Contains(w, h), nil
}
