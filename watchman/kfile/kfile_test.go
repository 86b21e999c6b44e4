package kfile

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		size    int // bytes in the file
		bufLen  int
		wantBuf int // buffer length after the read
	}{
		{"fits", 100, 4096, 4096},
		{"exactly full grows once", 4096, 4096, 16384},
		{"larger grows until it fits", 20000, 4096, 65536},
		{"empty buffer gets a page", 10, 0, 4096},
		{"empty file", 0, 64, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			want := strings.Repeat("x", tc.size)
			if err := os.WriteFile(p, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, tc.bufLen)
			for range 2 { // re-reads from offset 0
				b, err := f.Read(&buf)
				if err != nil || string(b) != want {
					t.Fatalf("read %d bytes, %v; want %d", len(b), err, tc.size)
				}
			}
			if len(buf) != tc.wantBuf {
				t.Errorf("buffer %d bytes, want %d", len(buf), tc.wantBuf)
			}
			if n := testing.AllocsPerRun(10, func() { _, _ = f.Read(&buf) }); n != 0 {
				t.Errorf("%v allocations per read", n)
			}
		})
	}
}

// TestReadMultiPageProcTable reads a table the kernel hands out a page per
// read: /proc/self/net/tcp with more listeners than fit in one page (150
// bytes a line). Every listener must be in the contents, read after read.
func TestReadMultiPageProcTable(t *testing.T) {
	var ports []string
	for range 100 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, fmt.Sprintf("0100007F:%04X", l.Addr().(*net.TCPAddr).Port))
	}
	f, err := Open("/proc/self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf []byte
	for i := range 3 {
		b, err := f.Read(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 100*150 {
			t.Fatalf("read %d: %d bytes, want at least 100 lines of 150", i, len(b))
		}
		for _, p := range ports {
			if !strings.Contains(string(b), p) {
				t.Fatalf("read %d (%d bytes): listener %s missing", i, len(b), p)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("open missing: %v", err)
	}
	f, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	if _, err := f.Read(&buf); err == nil || !strings.Contains(err.Error(), "read ") {
		t.Errorf("read of a directory: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Error(err)
	}
	if err := f.Close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}
