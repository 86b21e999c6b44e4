package checkpoint

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestStoreRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	e := Entry{File: FileID{Dev: 1, Ino: 2, FP: 3}, Offset: 4096, Seq: 17, Time: 99}
	s.Set("c1", e)
	s.Set("c2", Entry{Offset: 1})
	s.Delete("c2")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := s2.Get("c1")
	if !ok || got != e {
		t.Fatalf("reloaded %+v %v, want %+v", got, ok, e)
	}
	if _, ok := s2.Get("c2"); ok {
		t.Fatal("deleted entry came back")
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.tmp-*"))
	if len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}

func TestFlushOnlyWhenDirty(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName)); !os.IsNotExist(err) {
		t.Fatalf("clean store wrote a file: %v", err)
	}
	s.Set("c", Entry{Offset: 1})
	s.Set("c", Entry{Offset: 1})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(filepath.Join(dir, FileName))
	time.Sleep(10 * time.Millisecond)
	s.Set("c", Entry{Offset: 1}) // unchanged: not dirty
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(filepath.Join(dir, FileName))
	if !st1.ModTime().Equal(st2.ModTime()) {
		t.Fatal("unchanged store was rewritten")
	}
}

func TestRunFlushesAtEnd(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx, time.Hour, func(err error) { t.Error(err) }); close(done) }()
	s.Set("c", Entry{Offset: 5})
	cancel()
	<-done
	s2, _ := Open(dir)
	if e, ok := s2.Get("c"); !ok || e.Offset != 5 {
		t.Fatalf("final flush missing: %+v %v", e, ok)
	}
}
