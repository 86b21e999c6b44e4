package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenQuarantinesUnreadableFile: a checkpoint file that does not parse
// (or has an unknown version) does not stop the store from opening: it is
// renamed aside, reported, and the store starts empty.
func TestOpenQuarantinesUnreadableFile(t *testing.T) {
	for name, content := range map[string]string{
		"truncated":       `{"version":1,"containers":{"c1":{"file":{"dev":1`,
		"not json":        "\x00\x00garbage",
		"unknown version": `{"version":7,"containers":{}}`,
		"wrong types":     `{"version":1,"containers":{"c1":{"offset":"ten"}}}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(dir)
			if err != nil {
				t.Fatalf("Open = %v, want the store to open", err)
			}
			q := s.Quarantined()
			if q == nil || q.Err == nil || !strings.HasPrefix(filepath.Base(q.Path), FileName+".corrupt-") {
				t.Fatalf("Quarantined() = %+v, want the file moved aside with its error", q)
			}
			if b, err := os.ReadFile(q.Path); err != nil || string(b) != content {
				t.Fatalf("quarantined file %s: %q, %v; want the original content", q.Path, b, err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Fatalf("checkpoint file still in place: %v", err)
			}
			if len(s.Containers()) != 0 {
				t.Fatalf("entries %v from a quarantined file", s.Containers())
			}
			// The store works: a new file is written and read back.
			s.Set("c1", Entry{Offset: 5})
			if err := s.Flush(); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(dir)
			if err != nil || s2.Quarantined() != nil {
				t.Fatalf("reopen: %v, quarantined %+v", err, s2.Quarantined())
			}
		})
	}
}

// FuzzOpen: whatever the checkpoint file holds, Open returns a usable store
// (quarantining what it cannot read) and never panics.
func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"version":1,"containers":{"c1":{"file":{"dev":1,"ino":2,"fp":3},"offset":4096,"seq":17,"time":99}}}`))
	f.Add([]byte(`{"version":1,"containers":null}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, content []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), content, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		for _, c := range s.Containers() {
			if e, ok := s.Get(c); !ok || e.Offset < 0 {
				t.Fatalf("entry %s = %+v, %v", c, e, ok)
			}
		}
		s.Set("x", Entry{})
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
	})
}
