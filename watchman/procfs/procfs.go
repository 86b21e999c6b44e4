// Package procfs parses the per-network-namespace files under
// /proc/<pid>/net that the watchman samples: dev (interface counters) and
// tcp/tcp6 (sockets, for wake-on-connect). Files are kept open and re-read
// from offset 0.
package procfs

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/heartwood-ops/heartwood/watchman/kfile"
	"path/filepath"
	"strconv"
	"syscall"
)

// newline separates the lines of the files parsed here.
var newline = []byte{'\n'}

// ErrVanished is returned (wrapped) when the process behind a file is gone.
var ErrVanished = errors.New("process vanished")

var errSyntax = errors.New("malformed proc file")

// Iface holds one interface's counters from /proc/<pid>/net/dev.
type Iface struct {
	Name                                  string
	RxBytes, RxPackets, RxErrors, RxDrops uint64
	TxBytes, TxPackets, TxErrors, TxDrops uint64
}

// ParseNetDev parses /proc/net/dev into dst (reused; names are kept when
// they do not change, so a steady state does not allocate). The loopback
// interface is included; callers may skip it.
func ParseNetDev(b []byte, dst []Iface) ([]Iface, error) {
	dst = dst[:0]
	line := 0
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, newline)
		line++
		if line <= 2 || len(bytes.TrimSpace(l)) == 0 {
			continue // two header lines
		}
		name, rest, ok := bytes.Cut(l, []byte{':'})
		if !ok {
			return dst, errSyntax
		}
		name = bytes.TrimSpace(name)
		if len(name) == 0 {
			return dst, errSyntax
		}
		var f [16]uint64
		n := 0
		for len(rest) > 0 && n < 16 {
			rest = bytes.TrimLeft(rest, " ")
			if len(rest) == 0 {
				break
			}
			end := bytes.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			v, err := strconv.ParseUint(string(rest[:end]), 10, 64)
			if err != nil {
				return dst, errSyntax
			}
			f[n] = v
			n++
			rest = rest[end:]
		}
		if n < 16 {
			return dst, errSyntax
		}
		idx := len(dst)
		if idx < cap(dst) {
			dst = dst[:idx+1]
			if dst[idx].Name != string(name) {
				dst[idx].Name = string(name)
			}
		} else {
			dst = append(dst, Iface{Name: string(name)})
		}
		d := &dst[idx]
		d.RxBytes, d.RxPackets, d.RxErrors, d.RxDrops = f[0], f[1], f[2], f[3]
		d.TxBytes, d.TxPackets, d.TxErrors, d.TxDrops = f[8], f[9], f[10], f[11]
	}
	return dst, nil
}

// TCP socket states as printed in /proc/net/tcp.
const (
	TCPEstablished = 0x01
	TCPSynRecv     = 0x03
	TCPCloseWait   = 0x08
	TCPListen      = 0x0A
)

// Socket is one line of /proc/net/tcp or tcp6.
type Socket struct {
	Local, Remote netip.AddrPort
	State         uint8
	TxQueue       uint32
	RxQueue       uint32
	Inode         uint64
}

// ParseTCP calls fn for every socket in a /proc/net/tcp or tcp6 file.
func ParseTCP(b []byte, fn func(Socket)) error {
	first := true
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, newline)
		if first {
			first = false
			continue // header
		}
		var fields [10][]byte
		n := 0
		for n < len(fields) {
			l = bytes.TrimLeft(l, " ")
			if len(l) == 0 {
				break
			}
			end := bytes.IndexByte(l, ' ')
			if end < 0 {
				end = len(l)
			}
			fields[n] = l[:end]
			n++
			l = l[end:]
		}
		if n == 0 {
			continue
		}
		if n < 10 {
			return errSyntax
		}
		var s Socket
		var err error
		if s.Local, err = parseHexAddrPort(fields[1]); err != nil {
			return err
		}
		if s.Remote, err = parseHexAddrPort(fields[2]); err != nil {
			return err
		}
		st, err := strconv.ParseUint(string(fields[3]), 16, 8)
		if err != nil {
			return errSyntax
		}
		s.State = uint8(st)
		tx, rx, ok := bytes.Cut(fields[4], []byte{':'})
		if !ok {
			return errSyntax
		}
		t, err1 := strconv.ParseUint(string(tx), 16, 32)
		r, err2 := strconv.ParseUint(string(rx), 16, 32)
		if err1 != nil || err2 != nil {
			return errSyntax
		}
		s.TxQueue, s.RxQueue = uint32(t), uint32(r)
		if s.Inode, err = strconv.ParseUint(string(fields[9]), 10, 64); err != nil {
			return errSyntax
		}
		fn(s)
	}
	return nil
}

// parseHexAddrPort parses "0100007F:1F90" (IPv4) or the 32-hex-digit IPv6
// form; the address is stored as 32-bit words in host (little-endian) order.
func parseHexAddrPort(b []byte) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut(b, []byte{':'})
	if !ok || len(p) != 4 {
		return netip.AddrPort{}, errSyntax
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, errSyntax
	}
	var raw [16]byte
	switch len(a) {
	case 8:
		if _, err := hex.Decode(raw[:4], a); err != nil {
			return netip.AddrPort{}, errSyntax
		}
		var ip [4]byte
		binary.BigEndian.PutUint32(ip[:], binary.LittleEndian.Uint32(raw[:4]))
		return netip.AddrPortFrom(netip.AddrFrom4(ip), uint16(port)), nil
	case 32:
		if _, err := hex.Decode(raw[:], a); err != nil {
			return netip.AddrPort{}, errSyntax
		}
		var ip [16]byte
		for w := 0; w < 4; w++ {
			binary.BigEndian.PutUint32(ip[w*4:], binary.LittleEndian.Uint32(raw[w*4:]))
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ip).Unmap(), uint16(port)), nil
	}
	return netip.AddrPort{}, errSyntax
}

// File is a proc file kept open and re-read with one pread from offset 0.
type File struct {
	f   *kfile.File
	buf []byte
}

// OpenPID opens <procRoot>/<pid>/<name>, e.g. name "net/dev".
func OpenPID(procRoot string, pid int, name string) (*File, error) {
	f, err := kfile.Open(filepath.Join(procRoot, strconv.Itoa(pid), name))
	if err != nil {
		return nil, classify(err)
	}
	return &File{f: f, buf: make([]byte, 4096)}, nil
}

// Read returns the file's current contents, valid until the next Read.
func (f *File) Read() ([]byte, error) {
	b, err := f.f.Read(&f.buf)
	if err != nil {
		return nil, classify(err)
	}
	return b, nil
}

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

func classify(err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) || errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("%w: %w", ErrVanished, err)
	}
	return err
}
