package config

import (
	"net/url"
	"strings"
	"testing"
)

func TestEffectiveRedactsURLCredentials(t *testing.T) {
	cfg := struct {
		ESURL []string `yaml:"es-url"`
		Proxy string   `yaml:"proxy"`
		Plain string   `yaml:"plain"`
	}{
		ESURL: []string{"https://elastic:pw-secret-1@es1:9200", "http://es2:9200"},
		Proxy: "http://token-secret-2@proxy:3128",
		Plain: "user@example.com",
	}
	out, err := Effective(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"pw-secret-1", "token-secret-2", "elastic:"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("Effective output exposes %q:\n%s", secret, out)
		}
	}
	for _, keep := range []string{"https://redacted@es1:9200", "http://es2:9200", "http://redacted@proxy:3128", "user@example.com"} {
		if !strings.Contains(string(out), keep) {
			t.Errorf("Effective output lacks %q:\n%s", keep, out)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://es:9200", "http://es:9200"},
		{"https://u:p@es:9200/x?y=1", "https://redacted@es:9200/x?y=1"},
		{"https://tok@es", "https://redacted@es"},
		{"http://u:p@[bad", "[redacted]"},
		{"127.0.0.1:8500", "127.0.0.1:8500"},
	}
	for _, tc := range tests {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"http://es:9200", "https://u:p@es:9200/x", "https://tok@es", "http://u:p@[bad", "127.0.0.1:8500", "unix:///var/run/docker.sock"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := RedactURL(raw)
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			return
		}
		if p, ok := u.User.Password(); ok && len(p) >= 4 && strings.Contains(got, ":"+p+"@") {
			t.Fatalf("RedactURL(%q) = %q keeps the password", raw, got)
		}
		if gu, err := url.Parse(got); err == nil && gu.User != nil && gu.User.String() != "redacted" {
			t.Fatalf("RedactURL(%q) = %q keeps user information %q", raw, got, gu.User)
		}
	})
}
