// Package kfile re-reads files the kernel generates on every read (cgroup
// and proc files) through a descriptor kept open: each read is one pread at
// offset 0 into the caller's buffer, which makes the kernel produce the
// current contents without a path lookup and, for contents under 3 KiB,
// without a second call that only finds the end of the file. Longer
// contents are read to the end: the kernel hands out a multi-record file a
// page at a time.
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

// completeBelow is the length under which one read is known to have
// returned the whole file. The kernel generates a multi-record file (a
// seq_file: /proc/<pid>/net/tcp, net/dev) into a buffer of at least a page
// (4 KiB) and a read returns at most that buffer, stopping before the
// first record that does not fit; so a read that returned less than a
// page minus the longest record (1 KiB here; the tables' lines are 150 to
// 350 bytes) stopped at the end of the file. A longer read may have
// stopped at the buffer's end, and the next read continues from there.
const completeBelow = 4096 - 1024

// Read returns the file's current contents: one pread at offset 0 into
// *buf, and only when that returned more than a few KiB, further preads at
// the following offsets until one returns nothing (a file the kernel
// generates may hand out a page per read; see completeBelow). *buf grows
// (to four times its size, at most MaxSize) when the contents fill it, so a
// steady state makes one system call and no allocation. The result aliases
// *buf.
func (f *File) Read(buf *[]byte) ([]byte, error) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
	total := 0
	for {
		if total == len(*buf) {
			if len(*buf) >= MaxSize {
				return nil, fmt.Errorf("read %s: more than %d bytes", f.name, MaxSize)
			}
			grown := make([]byte, min(4*len(*buf), MaxSize))
			copy(grown, (*buf)[:total])
			*buf = grown
		}
		n, err := syscall.Pread(f.fd, (*buf)[total:], int64(total))
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: f.name, Err: err}
		}
		total += n
		if n == 0 || total < completeBelow {
			return (*buf)[:total], nil
		}
	}
}
