// Package kfile re-reads files the kernel generates on every read (cgroup
// and proc files) through a descriptor kept open: each read is one pread at
// offset 0 into the caller's buffer, which makes the kernel produce the
// current contents without a path lookup and without a second call that
// only finds the end of the file.
package kfile

import (
	"fmt"
	"os"
	"syscall"
)

// MaxSize bounds the contents of one file; a file that fills a buffer of
// this size is an error rather than a reason to grow further.
const MaxSize = 4 << 20

// File is a kernel file kept open for re-reading. It is not safe for
// concurrent use.
type File struct {
	fd   int
	name string
}

// Open opens name read-only. Errors are *os.PathError, so errors.Is with
// os.ErrNotExist works.
func Open(name string) (*File, error) {
	for {
		fd, err := syscall.Open(name, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: name, Err: err}
		}
		return &File{fd: fd, name: name}, nil
	}
}

// Name returns the path the file was opened with.
func (f *File) Name() string { return f.name }

// Close closes the descriptor. Closing twice is harmless.
func (f *File) Close() error {
	if f.fd < 0 {
		return nil
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	return err
}

// Stat fills st with the file's status (fstat), without allocating.
func (f *File) Stat(st *syscall.Stat_t) error {
	if err := syscall.Fstat(f.fd, st); err != nil {
		return &os.PathError{Op: "stat", Path: f.name, Err: err}
	}
	return nil
}

// Read returns the file's current contents, read with one pread at offset 0
// into *buf. Only when the contents fill *buf does it grow *buf (to four
// times its size, at most MaxSize) and read again, so a steady state makes
// one system call and no allocation. The result aliases *buf.
func (f *File) Read(buf *[]byte) ([]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	for {
		n, err := syscall.Pread(f.fd, *buf, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: f.name, Err: err}
		}
		if n < len(*buf) {
			return (*buf)[:n], nil
		}
		if len(*buf) >= MaxSize {
			return nil, fmt.Errorf("read %s: more than %d bytes", f.name, MaxSize)
		}
		*buf = make([]byte, min(4*len(*buf), MaxSize))
	}
}
