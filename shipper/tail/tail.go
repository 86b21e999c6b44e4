// Package tail follows one container's json-file log across Docker's
// rotation: <id>-json.log is renamed to <id>-json.log.1 (and .1 to .2 ...)
// when it reaches max-size, and a new file takes its name.
//
// Files are followed by identity (device and inode), never by name: the
// file being read is drained to its end after it was rotated, and then the
// follower moves to the generation that came right after it. Generations
// seen but not yet read are kept open so that Docker deleting them (the
// container was removed, or rotated past max-file) loses nothing, up to a
// bound on how many deleted files may be held open; beyond it the oldest
// are given up and counted as lost.
package tail

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
)

// fpMax is how much of a file's first line its fingerprint covers.
const fpMax = 1024

// gen is one file generation.
type gen struct {
	f       *os.File
	dev     uint64
	ino     uint64
	size    int64 // size at the last listing
	deleted bool  // unlinked: no name refers to it any more
}

// Gap describes log data that was lost before it could be read.
type Gap struct {
	// Bytes lost; -1 when unknown.
	Bytes  int64
	Reason string
}

// Follower reads one container's log files in order. It is not safe for
// concurrent use.
type Follower struct {
	base       string
	maxDeleted int

	cur   *gen
	num   uint32 // number of the current file, increasing per generation
	off   int64
	fp    uint64
	fpOK  bool
	next  []*gen // generations after cur, oldest first
	gaps  []Gap
	noCur bool
}

// New returns a follower of the json-file log at base
// (<root>/<id>/<id>-json.log). maxDeleted bounds how many deleted, unread
// generations stay open; negative means no bound.
func New(base string, maxDeleted int) *Follower {
	return &Follower{base: base, maxDeleted: maxDeleted, noCur: true}
}

// SetMaxDeleted changes the bound on deleted generations held open (the
// shipper lifts it once the container is removed, to drain everything).
func (t *Follower) SetMaxDeleted(n int) { t.maxDeleted = n }

// Start positions the follower: at the checkpointed file and offset if that
// file still exists, else at the start of the oldest generation (reporting a
// gap if a checkpoint was given). It reports whether any file exists yet;
// call Refresh later when not.
func (t *Follower) Start(cp *checkpoint.Entry) (bool, error) {
	gens, err := t.list()
	if err != nil {
		return false, err
	}
	if len(gens) == 0 {
		return false, nil
	}
	startAt := 0
	off := int64(0)
	if cp != nil {
		found := false
		for i, g := range gens {
			if g.dev == cp.File.Dev && g.ino == cp.File.Ino {
				fp, ok, err := fingerprint(g.f)
				if err == nil && ok && fp == cp.File.FP && g.size >= cp.Offset {
					startAt, off, found = i, cp.Offset, true
				}
				break
			}
		}
		if !found {
			t.gaps = append(t.gaps, Gap{Bytes: -1, Reason: "checkpointed log file no longer exists"})
		}
	}
	for _, g := range gens[:startAt] {
		_ = g.f.Close()
	}
	t.setCur(gens[startAt], off)
	t.next = gens[startAt+1:]
	t.noCur = false
	return true, nil
}

func (t *Follower) setCur(g *gen, off int64) {
	if t.cur != nil {
		_ = t.cur.f.Close()
		t.num++
	}
	t.cur, t.off, t.fpOK = g, off, false
}

// HasFile reports whether a file is open.
func (t *Follower) HasFile() bool { return !t.noCur }

// Pos returns the current file number and the read offset.
func (t *Follower) Pos() (uint32, int64) { return t.num, t.off }

// Read reads from the current file at the read offset and advances it. It
// returns io.EOF at the end of the current file.
func (t *Follower) Read(p []byte) (int, error) {
	if t.noCur {
		return 0, io.EOF
	}
	n, err := t.cur.f.ReadAt(p, t.off)
	t.off += int64(n)
	if n > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return n, err
}

// FileID returns the identity of the current file; ok is false until its
// first line is complete (the fingerprint needs it).
func (t *Follower) FileID() (checkpoint.FileID, bool, error) {
	if t.noCur {
		return checkpoint.FileID{}, false, nil
	}
	if !t.fpOK {
		fp, ok, err := fingerprint(t.cur.f)
		if err != nil || !ok {
			return checkpoint.FileID{}, false, err
		}
		t.fp, t.fpOK = fp, true
	}
	return checkpoint.FileID{Dev: t.cur.dev, Ino: t.cur.ino, FP: t.fp}, true, nil
}

// Inode returns the device and inode of the current file.
func (t *Follower) Inode() (dev, ino uint64) {
	if t.noCur {
		return 0, 0
	}
	return t.cur.dev, t.cur.ino
}

// Event is what Refresh found.
type Event int

// Refresh results.
const (
	// NoChange: keep reading the current file.
	NoChange Event = iota
	// Opened: the first file appeared and is now current.
	Opened
	// Rotated: the current file was rotated; drain it to EOF, then call
	// Advance.
	Rotated
	// Truncated: the current file was truncated in place (max-file 1) and
	// reading restarted at its beginning as a new file number.
	Truncated
)

// Refresh re-lists the generations. Call it at EOF, and periodically while
// reading, so that successors are seen (and held open) before Docker
// deletes them.
func (t *Follower) Refresh() (Event, error) {
	if t.noCur {
		ok, err := t.Start(nil)
		if err != nil || !ok {
			return NoChange, err
		}
		return Opened, nil
	}
	gens, err := t.list()
	if err != nil {
		return NoChange, err
	}
	t.merge(gens)
	if len(gens) > 0 && gens[len(gens)-1].ino == t.cur.ino && gens[len(gens)-1].dev == t.cur.dev {
		// Still the live file: look for truncation in place.
		var st syscall.Stat_t
		if err := syscall.Fstat(int(t.cur.f.Fd()), &st); err != nil {
			return NoChange, fmt.Errorf("stat log file: %w", err)
		}
		t.cur.size = st.Size
		truncated := st.Size < t.off
		if !truncated && t.fpOK {
			fp, ok, err := fingerprint(t.cur.f)
			truncated = err == nil && ok && fp != t.fp
		}
		if truncated {
			t.gaps = append(t.gaps, Gap{Bytes: -1, Reason: "log file truncated in place before it was read"})
			t.num++
			t.off, t.fpOK = 0, false
			return Truncated, nil
		}
		return NoChange, nil
	}
	return Rotated, nil
}

// Watch re-lists the generations without touching the current file: new
// successors are opened and held, deletions are noted and, beyond the
// bound, counted as gaps. Readers call it while they wait (for example on
// backpressure) so that nothing rotates away unseen.
func (t *Follower) Watch() error {
	if t.noCur {
		return nil
	}
	gens, err := t.list()
	if err != nil {
		return err
	}
	t.merge(gens)
	return nil
}

// Advance moves to the generation after the current one, once the current
// one has been drained. It reports false when no successor is known yet.
func (t *Follower) Advance() bool {
	if len(t.next) == 0 {
		return false
	}
	g := t.next[0]
	t.next = t.next[1:]
	t.setCur(g, 0)
	return true
}

// Removed switches to draining: generations deleted from now on are kept.
func (t *Follower) Removed() { t.maxDeleted = -1 }

// Gaps returns and clears the gaps found since the last call.
func (t *Follower) Gaps() []Gap {
	g := t.gaps
	t.gaps = nil
	return g
}

// Unread returns the bytes not yet read: the rest of the current file and
// the generations after it.
func (t *Follower) Unread() int64 {
	if t.noCur {
		return 0
	}
	n := max(t.cur.size-t.off, 0)
	for _, g := range t.next {
		n += g.size
	}
	return n
}

// Close releases every open file.
func (t *Follower) Close() {
	if t.cur != nil {
		_ = t.cur.f.Close()
	}
	for _, g := range t.next {
		_ = g.f.Close()
	}
	t.cur, t.next, t.noCur = nil, nil, true
}

// merge updates the known successors from a fresh listing.
func (t *Follower) merge(gens []*gen) {
	listed := make(map[[2]uint64]*gen, len(gens))
	for _, g := range gens {
		listed[[2]uint64{g.dev, g.ino}] = g
	}
	keep := func(g *gen) bool { // whether a listing entry is already held
		if g.ino == t.cur.ino && g.dev == t.cur.dev {
			return true
		}
		for _, h := range t.next {
			if h.ino == g.ino && h.dev == g.dev {
				return true
			}
		}
		return false
	}
	// Sizes and deletion of what we hold.
	if g, ok := listed[[2]uint64{t.cur.dev, t.cur.ino}]; ok {
		t.cur.size = max(t.cur.size, g.size)
	}
	for _, h := range t.next {
		if g, ok := listed[[2]uint64{h.dev, h.ino}]; ok {
			h.size = g.size
		} else if !h.deleted {
			// Not listed: deleted, or renamed between the listing's
			// opens (a rotation under way). Only the link count tells.
			h.deleted = unlinked(h.f)
		}
	}
	// New generations come after everything we hold, except those listed
	// before the current file (older: already read).
	curIdx := -1
	for i, g := range gens {
		if g.ino == t.cur.ino && g.dev == t.cur.dev {
			curIdx = i
		}
	}
	for i, g := range gens {
		if keep(g) || i < curIdx {
			_ = g.f.Close()
			continue
		}
		t.next = append(t.next, g)
	}
	// Bound the deleted generations held open.
	if t.maxDeleted >= 0 {
		deleted := 0
		for _, h := range t.next {
			if h.deleted {
				deleted++
			}
		}
		for deleted > t.maxDeleted {
			for i, h := range t.next {
				if h.deleted {
					t.gaps = append(t.gaps, Gap{Bytes: h.size, Reason: "rotated log file deleted by Docker before it was read"})
					_ = h.f.Close()
					t.next = append(t.next[:i], t.next[i+1:]...)
					deleted--
					break
				}
			}
		}
	}
}

// list opens every generation, oldest first: base.N ... base.1, base.
func (t *Follower) list() ([]*gen, error) {
	var gens []*gen
	open := func(path string) (bool, error) {
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("open log file: %w", err)
		}
		var st syscall.Stat_t
		if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
			_ = f.Close()
			return false, fmt.Errorf("stat log file: %w", err)
		}
		gens = append(gens, &gen{f: f, dev: uint64(st.Dev), ino: st.Ino, size: st.Size})
		return true, nil
	}
	// The live name is briefly absent while Docker rotates (renamed to .1,
	// its successor not yet created): list the rotated names regardless.
	if _, err := open(t.base); err != nil {
		return nil, err
	}
	for i := 1; ; i++ {
		ok, err := open(t.base + "." + strconv.Itoa(i))
		if err != nil {
			closeAll(gens)
			return nil, err
		}
		if !ok {
			break
		}
	}
	// Reverse: oldest first.
	for i, j := 0, len(gens)-1; i < j; i, j = i+1, j-1 {
		gens[i], gens[j] = gens[j], gens[i]
	}
	// A rotation between the opens can list a file twice.
	seen := map[[2]uint64]bool{}
	out := gens[:0]
	for _, g := range gens {
		k := [2]uint64{g.dev, g.ino}
		if seen[k] {
			_ = g.f.Close()
			continue
		}
		seen[k] = true
		out = append(out, g)
	}
	return out, nil
}

// unlinked reports whether the open file has no name left. A file whose
// link count cannot be read is taken as still linked: holding it costs a
// descriptor, giving it up would count its bytes as lost.
func unlinked(f *os.File) bool {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return st.Nlink == 0
}

func closeAll(gens []*gen) {
	for _, g := range gens {
		_ = g.f.Close()
	}
}

// fingerprint hashes the file's first line (at most fpMax bytes); ok is
// false while that line is still incomplete.
func fingerprint(f *os.File) (uint64, bool, error) {
	var buf [fpMax]byte
	n, err := f.ReadAt(buf[:], 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("read log file head: %w", err)
	}
	end := -1
	for i, c := range buf[:n] {
		if c == '\n' {
			end = i
			break
		}
	}
	if end < 0 {
		if n < fpMax {
			return 0, false, nil
		}
		end = n
	}
	h := fnv.New64a()
	_, _ = h.Write(buf[:end])
	return h.Sum64(), true, nil
}
