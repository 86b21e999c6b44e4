package config

import (
	"fmt"
	"testing"
)

func fmtAny(v any) string { return fmt.Sprintf("%v", v) }

// FuzzLoadYAML feeds arbitrary documents to the file loader: it must return
// an error or a configuration, never panic.
func FuzzLoadYAML(f *testing.F) {
	for _, seed := range []string{
		"addr: a:1\ncount: 3\n", "nested:\n  interval: 1s\n", "tags: [a, b]\n", "tags: a,b\n",
		"- x\n", "a: &x 1\nb: *x\n", "nested: 3\n", "{", "", "nested:\n  limit: 18446744073709551616\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := defaults()
		l, err := NewLoader(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		_ = l.LoadYAML(data) // an error is fine; a panic is not
	})
}

// FuzzLoadEnv feeds arbitrary values to every setting through the
// environment.
func FuzzLoadEnv(f *testing.F) {
	for _, seed := range []string{"", "1", "true", "1s", "-5", "a,b,,c", "1e400", "NaN", "\x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		cfg := defaults()
		l, err := NewLoader(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		env := []string{}
		for _, f := range l.fields {
			env = append(env, f.Env()+"="+v)
		}
		_ = l.LoadEnv(env)
	})
}
