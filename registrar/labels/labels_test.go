package labels

import (
	"slices"
	"strings"
	"testing"
)

func TestParseFor(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		labels   map[string]string
		port     string
		want     map[string]string
		fromPort []string
	}{
		{
			name: "env only",
			env:  []string{"SERVICE_NAME=web", "PATH=/bin", "SERVICE_TAGS=a,b"},
			port: "80",
			want: map[string]string{"name": "web", "tags": "a,b"},
		},
		{
			name:   "label beats env",
			env:    []string{"SERVICE_NAME=fromenv"},
			labels: map[string]string{"SERVICE_NAME": "fromlabel"},
			port:   "80",
			want:   map[string]string{"name": "fromlabel"},
		},
		{
			name: "later env wins",
			env:  []string{"SERVICE_NAME=a", "SERVICE_NAME=b"},
			port: "80",
			want: map[string]string{"name": "b"},
		},
		{
			name:     "port key beats portless regardless of order",
			env:      []string{"SERVICE_80_NAME=p80", "SERVICE_NAME=all"},
			port:     "80",
			want:     map[string]string{"name": "p80"},
			fromPort: []string{"name"},
		},
		{
			name:     "port env beats portless label",
			env:      []string{"SERVICE_80_NAME=p80"},
			labels:   map[string]string{"SERVICE_NAME": "all"},
			port:     "80",
			want:     map[string]string{"name": "p80"},
			fromPort: []string{"name"},
		},
		{
			name: "other port ignored",
			env:  []string{"SERVICE_443_NAME=tls", "SERVICE_NAME=all"},
			port: "80",
			want: map[string]string{"name": "all"},
		},
		{
			name: "port spelled differently does not match",
			env:  []string{"SERVICE_080_NAME=x"},
			port: "80",
			want: map[string]string{},
		},
		{
			name: "keys lowercased; prefix case-sensitive",
			env:  []string{"SERVICE_Check_HTTP=/h", "service_name=no", "Service_x=no"},
			port: "80",
			want: map[string]string{"check_http": "/h"},
		},
		{
			name: "no equals, bare prefix and digits-only key",
			env:  []string{"SERVICE_NAME", "SERVICE_=x", "SERVICE_80=eighty", "SERVICE_80_=y"},
			port: "80",
			want: map[string]string{"80": "eighty", "80_": "y"},
		},
		{
			name: "empty value kept",
			env:  []string{"SERVICE_NAME="},
			port: "80",
			want: map[string]string{"name": ""},
		},
		{
			name:     "value with equals",
			env:      []string{"SERVICE_80_CHECK_HTTP=/x?a=b"},
			port:     "80",
			want:     map[string]string{"check_http": "/x?a=b"},
			fromPort: []string{"check_http"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Parse(tc.env, tc.labels).For(tc.port)
			if len(v.Keys()) != len(tc.want) {
				t.Fatalf("keys = %v, want %v", v.Keys(), tc.want)
			}
			for k, want := range tc.want {
				got, ok := v.Lookup(k)
				if !ok || got != want {
					t.Errorf("%s = %q (set %v), want %q", k, got, ok, want)
				}
			}
			for _, k := range v.Keys() {
				if v.FromPort(k) != slices.Contains(tc.fromPort, k) {
					t.Errorf("FromPort(%s) = %v", k, v.FromPort(k))
				}
			}
		})
	}
}

func TestPortsAndGlobal(t *testing.T) {
	s := Parse([]string{"SERVICE_443_NAME=a", "SERVICE_80_TAGS=x", "SERVICE_IGNORE=1"}, nil)
	if got := s.Ports(); !slices.Equal(got, []string{"443", "80"}) {
		t.Errorf("Ports = %v", got)
	}
	if s.Global("ignore") != "1" || s.Global("name") != "" {
		t.Errorf("Global wrong: %q %q", s.Global("ignore"), s.Global("name"))
	}
}

func TestSplitTags(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a,b,c", []string{"a", "b", "c"}},
		{"a, b ,c", []string{"a", "b", "c"}},
		{",a,,b,", []string{"a", "b"}},
		{`a\,b,c`, []string{"a,b", "c"}},
		{`x\,`, []string{"x,"}},
		{`\\,a`, []string{`\,a`}},
		{`a\b`, []string{`a\b`}},
		{`trailing\`, []string{`trailing\`}},
		{"urlprefix-/api,version=2", []string{"urlprefix-/api", "version=2"}},
	}
	for _, tc := range tests {
		if got := SplitTags(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("SplitTags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("SERVICE_NAME=web", "SERVICE_80_TAGS", "a\\,b,c", "80")
	f.Add("SERVICE_80_CHECK_HTTP=/", "SERVICE_IGNORE", "", "443")
	f.Add("=", "SERVICE_", "x", "")
	f.Fuzz(func(t *testing.T, env, labelKey, labelVal, port string) {
		s := Parse(strings.Split(env, "\n"), map[string]string{labelKey: labelVal})
		v := s.For(port)
		for _, k := range v.Keys() {
			if k != strings.ToLower(k) {
				t.Fatalf("key %q not lowercased", k)
			}
			if _, ok := v.Lookup(k); !ok {
				t.Fatalf("key %q listed but not set", k)
			}
		}
		if strings.HasPrefix(labelKey, Prefix) && len(labelKey) > len(Prefix) {
			key := strings.ToLower(labelKey[len(Prefix):])
			p, sub, ok := strings.Cut(key, "_")
			if !(ok && sub != "" && isDigits(p)) {
				if got := v.Get(key); got != labelVal && !v.FromPort(key) {
					t.Fatalf("label %q=%q not applied: got %q", labelKey, labelVal, got)
				}
			}
		}
		for _, tag := range SplitTags(labelVal) {
			if tag == "" || tag != strings.TrimSpace(tag) {
				t.Fatalf("bad tag %q from %q", tag, labelVal)
			}
		}
	})
}
