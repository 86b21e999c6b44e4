package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzPublicLabels: whatever a container owner puts in a label, the view
// keeps only allowlisted keys, keeps SERVICE_*CHECKS valid JSON (or redacts
// it), and never shows a check header's value or a URL's password.
func FuzzPublicLabels(f *testing.F) {
	f.Add("SERVICE_CHECKS", `[{"id":"a","http":"/h","header":{"Authorization":["Bearer s3cret"]}}]`)
	f.Add("SERVICE_80_CHECKS", `{"args":["sh","-c","x"],"http":"http://u:p@h/"}`)
	f.Add("SERVICE_CHECK_HTTP", "http://u:p@h/x http://v:q@[::1")
	f.Add("SERVICE_CHECK_SCRIPT", "curl -u a:b")
	f.Add("heartwood.logs.dataset", "x")
	f.Add("com.example", "y")
	f.Fuzz(func(t *testing.T, key, value string) {
		out := PublicLabels(map[string]string{key: value})
		allowed := strings.HasPrefix(key, "SERVICE_") || strings.HasPrefix(key, "heartwood.")
		if !allowed {
			if len(out) != 0 {
				t.Fatalf("label %q kept", key)
			}
			return
		}
		got, ok := out[key]
		if !ok || len(out) != 1 {
			t.Fatalf("PublicLabels(%q) = %v", key, out)
		}
		if strings.HasSuffix(strings.ToUpper(key), "_CHECKS") && got != Redacted {
			var doc any
			if err := json.Unmarshal([]byte(got), &doc); err != nil {
				t.Fatalf("redacted checks are not JSON: %q", got)
			}
			assertNoHeaderValues(t, doc)
		}
		for _, field := range strings.Fields(value) {
			if u, err := url.Parse(field); err == nil && u.User != nil {
				if p, ok := u.User.Password(); ok && len(p) > 3 && strings.Contains(got, "@") && strings.Contains(got, p+"@") {
					t.Fatalf("password %q of %q shown in %q", p, field, got)
				}
			}
		}
	})
}

func assertNoHeaderValues(t *testing.T, doc any) {
	switch d := doc.(type) {
	case []any:
		for _, v := range d {
			assertNoHeaderValues(t, v)
		}
	case map[string]any:
		for k, v := range d {
			switch strings.ToLower(k) {
			case "header", "headers":
				if hs, ok := v.(map[string]any); ok {
					for name, vals := range hs {
						if l, ok := vals.([]any); !ok || len(l) != 1 || l[0] != Redacted {
							t.Fatalf("header %q value shown: %v", name, vals)
						}
					}
				} else if v != Redacted {
					t.Fatalf("headers shown: %v", v)
				}
			default:
				assertNoHeaderValues(t, v)
			}
		}
	}
}
