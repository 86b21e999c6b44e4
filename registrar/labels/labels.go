// Package labels reads Registrator-style SERVICE_* settings from a
// container's environment and labels.
//
// The rules are Registrator's: only keys that start with the exact prefix
// SERVICE_ are read; the prefix is stripped and the rest lowercased; a key of
// the form SERVICE_<digits>_<key> applies only to the container port whose
// number is spelled exactly <digits> and beats the portless SERVICE_<key>.
// Environment and labels are both read; a label wins over an environment
// variable with the same key, and a later environment entry over an earlier
// one.
package labels

import (
	"sort"
	"strings"
)

// Prefix starts every key this package reads.
const Prefix = "SERVICE_"

// Set holds the SERVICE_* settings of one container.
type Set struct {
	global map[string]string
	ports  map[string]map[string]string
}

// Parse collects the SERVICE_* settings from env (KEY=VALUE strings, in
// Docker's order) and labels. Entries without '=' are ignored, as are keys
// that are only the prefix.
func Parse(env []string, labels map[string]string) Set {
	s := Set{global: map[string]string{}, ports: map[string]map[string]string{}}
	for _, kv := range env {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			s.add(k, v)
		}
	}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		s.add(k, labels[k])
	}
	return s
}

func (s *Set) add(rawKey, v string) {
	rest, ok := strings.CutPrefix(rawKey, Prefix)
	if !ok || rest == "" {
		return
	}
	key := strings.ToLower(rest)
	if port, sub, ok := strings.Cut(key, "_"); ok && sub != "" && isDigits(port) {
		m := s.ports[port]
		if m == nil {
			m = map[string]string{}
			s.ports[port] = m
		}
		m[sub] = v
		return
	}
	s.global[key] = v
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Global returns the portless value of key (lowercase, without prefix).
func (s Set) Global(key string) string { return s.global[key] }

// Ports returns the port numbers that have port-specific keys, sorted as
// strings.
func (s Set) Ports() []string {
	out := make([]string, 0, len(s.ports))
	for p := range s.ports {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// For returns the settings that apply to the container port spelled port:
// the portless keys overlaid by that port's keys.
func (s Set) For(port string) Values {
	v := Values{kv: make(map[string]string, len(s.global)), fromPort: map[string]bool{}}
	for k, val := range s.global {
		v.kv[k] = val
	}
	for k, val := range s.ports[port] {
		v.kv[k] = val
		v.fromPort[k] = true
	}
	return v
}

// Values are the settings for one port.
type Values struct {
	kv       map[string]string
	fromPort map[string]bool
}

// Get returns the value of key, "" if unset.
func (v Values) Get(key string) string { return v.kv[key] }

// Lookup returns the value of key and whether it is set at all.
func (v Values) Lookup(key string) (string, bool) {
	val, ok := v.kv[key]
	return val, ok
}

// FromPort reports whether key came from the port-specific form.
func (v Values) FromPort(key string) bool { return v.fromPort[key] }

// Keys returns every key that is set, sorted.
func (v Values) Keys() []string {
	out := make([]string, 0, len(v.kv))
	for k := range v.kv {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// SplitTags splits a comma-separated tag list in which `\,` stands for a
// literal comma. Tags are trimmed of surrounding white space and empty tags
// are dropped; the order of the input is kept. (Registrator keeps the white
// space and returns the tags in reverse order; Consul gives tag order no
// meaning.)
func SplitTags(s string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, t)
		}
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			flush()
		default:
			cur.WriteByte(s[i])
		}
	}
	flush()
	return out
}
