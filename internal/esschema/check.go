package esschema

import (
	"fmt"
	"sort"
)

// CheckDocument compares one document's _source with mapping properties
// (the kind's Mappings, or a data stream's real mapping) and returns a
// line per field that is not mapped or whose value does not fit its type.
// Flattened fields take any value below them.
func CheckDocument(props map[string]any, doc map[string]any) []string {
	var out []string
	checkObject("", props, doc, &out)
	sort.Strings(out)
	return out
}

func checkObject(prefix string, props map[string]any, doc map[string]any, out *[]string) {
	for k, v := range doc {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		p, ok := props[k].(map[string]any)
		if !ok {
			*out = append(*out, name+": not mapped")
			continue
		}
		checkValue(name, p, v, out)
	}
}

func checkValue(name string, p map[string]any, v any, out *[]string) {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			checkValue(name, p, e, out)
		}
		return
	}
	typ, _ := p["type"].(string)
	if sub, ok := p["properties"].(map[string]any); ok && (typ == "" || typ == "object") {
		d, ok := v.(map[string]any)
		if !ok {
			*out = append(*out, fmt.Sprintf("%s: mapped as an object, written as %T", name, v))
			return
		}
		checkObject(name, sub, d, out)
		return
	}
	if v == nil {
		return
	}
	fits := false
	switch typ {
	case "flattened":
		return
	case "keyword", "constant_keyword", "text", "match_only_text", "wildcard":
		_, fits = v.(string)
	case "date", "date_nanos":
		switch v.(type) {
		case string, float64:
			fits = true
		}
	case "long", "integer", "short", "byte":
		f, ok := v.(float64)
		fits = ok && f == float64(int64(f))
	case "double", "float", "half_float", "scaled_float", "unsigned_long":
		_, fits = v.(float64)
	case "boolean":
		_, fits = v.(bool)
	case "":
		*out = append(*out, name+": mapped without a type")
		return
	default:
		fits = true
	}
	if !fits {
		*out = append(*out, fmt.Sprintf("%s: mapped as %s, written as %T %v", name, typ, v, v))
	}
}

// DiffMappings returns a line per field that want maps and have does not
// map, or maps with another type: it compares a template's mappings with
// the mapping a data stream really got.
func DiffMappings(want, have map[string]any) []string {
	var out []string
	diffProps("", want, have, &out)
	sort.Strings(out)
	return out
}

func diffProps(prefix string, want, have map[string]any, out *[]string) {
	for k, w := range want {
		name := k
		if prefix != "" {
			name = prefix + "." + k
		}
		wp, _ := w.(map[string]any)
		hp, ok := have[k].(map[string]any)
		if !ok {
			*out = append(*out, name+": missing from the mapping")
			continue
		}
		ws, wsub := wp["properties"].(map[string]any)
		hs, hsub := hp["properties"].(map[string]any)
		if wsub {
			if !hsub {
				*out = append(*out, name+": not an object in the mapping")
				continue
			}
			diffProps(name, ws, hs, out)
			continue
		}
		if wp["type"] != hp["type"] {
			*out = append(*out, fmt.Sprintf("%s: %v in the template, %v in the mapping", name, wp["type"], hp["type"]))
		}
	}
}
