package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type sub struct {
	Enabled  bool          `yaml:"enabled" help:"turn it on"`
	Interval time.Duration `yaml:"interval"`
	Ratio    float64       `yaml:"ratio"`
	Limit    uint64        `yaml:"limit"`
}

type testConfig struct {
	Base   `yaml:",inline"`
	Tags   []string `yaml:"tags"`
	Token  string   `yaml:"token" secret:"true"`
	Nested sub      `yaml:"nested"`
}

type Base struct {
	Addr  string `yaml:"addr" help:"where to listen"`
	Count int    `yaml:"count"`
}

func defaults() testConfig {
	return testConfig{Base: Base{Addr: "127.0.0.1:1", Count: 1}, Nested: sub{Enabled: true, Interval: time.Second}}
}

func load(t *testing.T, file string, env, args []string) (testConfig, error) {
	t.Helper()
	cfg := defaults()
	l, err := NewLoader(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.RegisterFlags(fs)
	if file != "" {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append([]string{"--config", p}, args...)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	return cfg, l.Load(env)
}

func TestPrecedenceAndNames(t *testing.T) {
	file := "addr: file:1\ncount: 5\ntags: [a, b]\nnested:\n  interval: 3s\n  ratio: 0.5\n"
	tests := []struct {
		desc      string
		env, args []string
		check     func(testConfig) string
	}{
		{"file over defaults", nil, nil, func(c testConfig) string {
			return eq(c.Addr, "file:1") + eq(c.Count, 5) + eq(strings.Join(c.Tags, ","), "a,b") +
				eq(c.Nested.Interval, 3*time.Second) + eq(c.Nested.Ratio, 0.5) + eq(c.Nested.Enabled, true)
		}},
		{"env over file", []string{"HEARTWOOD_ADDR=env:1", "HEARTWOOD_NESTED_ENABLED=false", "HEARTWOOD_TAGS=x, y"}, nil, func(c testConfig) string {
			return eq(c.Addr, "env:1") + eq(c.Nested.Enabled, false) + eq(strings.Join(c.Tags, ","), "x,y")
		}},
		{"flags over env", []string{"HEARTWOOD_ADDR=env:1"}, []string{"--addr=flag:1", "--nested.enabled=false", "--tags", "p", "--tags", "q,r", "--nested.limit", "7"}, func(c testConfig) string {
			return eq(c.Addr, "flag:1") + eq(c.Nested.Enabled, false) + eq(strings.Join(c.Tags, ","), "p,q,r") + eq(c.Nested.Limit, uint64(7))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			cfg, err := load(t, file, tc.env, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.check(cfg); msg != "" {
				t.Error(msg)
			}
		})
	}
}

func TestErrorsNameTheSetting(t *testing.T) {
	tests := []struct {
		desc, file string
		env, args  []string
		want       string
	}{
		{"unknown file key", "nested:\n  enabeld: true\n", nil, nil, "unknown setting nested.enabeld"},
		{"bad duration in file", "nested:\n  interval: soon\n", nil, nil, "line 2: nested.interval: want a duration"},
		{"list where a value belongs", "addr: [a]\n", nil, nil, "addr: want a single value"},
		{"not a mapping", "- a\n", nil, nil, "must be a mapping"},
		{"bad YAML", "addr: \"unterminated\n", nil, nil, "parse YAML"},
		{"bad env bool", "", []string{"HEARTWOOD_NESTED_ENABLED=maybe"}, nil, "HEARTWOOD_NESTED_ENABLED (nested.enabled): want true or false"},
		{"unknown env", "", []string{"HEARTWOOD_NOPE=1"}, nil, "HEARTWOOD_NOPE: no such setting"},
		{"bad flag int", "", nil, []string{"--count=many"}, "want a whole number"},
		{"negative uint", "", []string{"HEARTWOOD_NESTED_LIMIT=-1"}, nil, "want a non-negative whole number"},
	}
	for _, tc := range tests {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := load(t, tc.file, tc.env, tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestReservedEnvIsIgnored(t *testing.T) {
	if _, err := load(t, "", []string{"HEARTWOOD_TEST_ES_URL=http://x", "HEARTWOOD_CACHE=/tmp"}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestEffectiveRedactsSecretsGolden(t *testing.T) {
	cfg := defaults()
	cfg.Token = "hunter2"
	cfg.Tags = []string{"a", "b"}
	got, err := Effective(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "hunter2") {
		t.Fatalf("secret printed:\n%s", got)
	}
	golden := filepath.Join("testdata", "effective.golden.yaml")
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("Effective =\n%s\nwant\n%s", got, want)
	}
	// The printed form loads back to the same values.
	var back testConfig
	l, err := NewLoader(&back)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.LoadYAML([]byte(strings.Replace(string(got), "<redacted>", "hunter2", 1))); err != nil {
		t.Fatal(err)
	}
	if back.Token != "hunter2" || back.Addr != cfg.Addr || back.Nested != cfg.Nested || strings.Join(back.Tags, ",") != "a,b" {
		t.Errorf("round trip = %+v, want %+v", back, cfg)
	}
}

func TestFieldsRejectsUnsupportedTypes(t *testing.T) {
	var bad struct {
		M map[string]string `yaml:"m"`
	}
	if _, err := Fields(&bad); err == nil {
		t.Fatal("Fields accepted a map field")
	}
}

func eq[T comparable](got, want T) string {
	if got != want {
		return "got " + toString(got) + ", want " + toString(want) + "; "
	}
	return ""
}

func toString(v any) string { return strings.TrimSpace(strings.ReplaceAll(fmtAny(v), "\n", " ")) }
