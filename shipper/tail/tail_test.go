package tail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
)

// dockerLog imitates json-file's writer and rotation.
type dockerLog struct {
	t        *testing.T
	base     string
	maxFiles int
	f        *os.File
}

func newDockerLog(t *testing.T, maxFiles int) *dockerLog {
	d := &dockerLog{t: t, base: filepath.Join(t.TempDir(), "c-json.log"), maxFiles: maxFiles}
	d.create()
	return d
}

func (d *dockerLog) create() {
	f, err := os.OpenFile(d.base, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o640)
	if err != nil {
		d.t.Fatal(err)
	}
	d.f = f
}

func (d *dockerLog) write(s string) {
	if _, err := d.f.WriteString(s); err != nil {
		d.t.Fatal(err)
	}
}

func (d *dockerLog) rotate() {
	_ = d.f.Close()
	for i := d.maxFiles - 1; i > 0; i-- {
		from := d.base + "." + fmt.Sprint(i-1)
		if i == 1 {
			from = d.base
		}
		_ = os.Rename(from, d.base+"."+fmt.Sprint(i))
	}
	_ = os.Remove(d.base + "." + fmt.Sprint(d.maxFiles))
	d.create()
}

// readAll drives the follower the way the shipper does and returns what
// it read.
func readAll(t *testing.T, f *Follower, sb *strings.Builder) {
	buf := make([]byte, 7)
	for range 1000 {
		n, err := f.Read(buf)
		sb.Write(buf[:n])
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		ev, err := f.Refresh()
		if err != nil {
			t.Fatal(err)
		}
		switch ev {
		case Opened, Truncated:
			continue
		case Rotated:
			// drain then advance
			for {
				n, err := f.Read(buf)
				sb.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if f.Advance() {
				continue
			}
		}
		return
	}
	t.Fatal("follower did not settle")
}

func TestFollowRotation(t *testing.T) {
	d := newDockerLog(t, 3)
	f := New(d.base, 2)
	defer f.Close()
	if ok, err := f.Start(nil); err != nil || !ok {
		t.Fatalf("Start: %v %v", ok, err)
	}
	var sb strings.Builder
	d.write("a1\na2\n")
	readAll(t, f, &sb)
	d.write("a3\n")
	d.rotate()
	d.write("b1\n")
	d.rotate() // a is now .2, b .1
	d.write("c1\n")
	readAll(t, f, &sb)
	if got, want := sb.String(), "a1\na2\na3\nb1\nc1\n"; got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	if gaps := f.Gaps(); len(gaps) != 0 {
		t.Fatalf("unexpected gaps %+v", gaps)
	}
}

func TestDeletedGenerationsHeldThenBounded(t *testing.T) {
	d := newDockerLog(t, 2)
	f := New(d.base, 1)
	defer f.Close()
	d.write("a1\n")
	if _, err := f.Start(nil); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	buf := make([]byte, 2) // read only "a1" of the first file
	if _, err := f.Read(buf); err != nil {
		t.Fatal(err)
	}
	sb.Write(buf)
	d.rotate()
	d.write("b1\n")
	if _, err := f.Refresh(); err != nil { // sees b, holds it
		t.Fatal(err)
	}
	d.rotate() // a deleted (we hold it as current), b -> .1
	d.write("c1\n")
	if _, err := f.Refresh(); err != nil { // sees c
		t.Fatal(err)
	}
	d.rotate() // b deleted while held: 1 deleted allowed
	d.write("d1\n")
	if _, err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	d.rotate() // c deleted too: 2 deleted > bound 1 → b given up
	d.write("e1\n")
	readAll(t, f, &sb)
	if got, want := sb.String(), "a1\nc1\nd1\ne1\n"; got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	gaps := f.Gaps()
	if len(gaps) != 1 || gaps[0].Bytes != 3 {
		t.Fatalf("gaps = %+v, want one gap of 3 bytes", gaps)
	}
}

func TestRemovedContainerDrains(t *testing.T) {
	d := newDockerLog(t, 3)
	f := New(d.base, 0)
	defer f.Close()
	d.write("a1\n")
	if _, err := f.Start(nil); err != nil {
		t.Fatal(err)
	}
	d.rotate()
	d.write("b1\n")
	if _, err := f.Refresh(); err != nil {
		t.Fatal(err)
	}
	f.Removed()
	if err := os.RemoveAll(filepath.Dir(d.base)); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	readAll(t, f, &sb)
	if got, want := sb.String(), "a1\nb1\n"; got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

func TestResumeFromCheckpoint(t *testing.T) {
	d := newDockerLog(t, 3)
	d.write("a1\na2\n")
	d.rotate()
	d.write("b1\n")
	f := New(d.base, 2)
	if _, err := f.Start(nil); err != nil {
		t.Fatal(err)
	}
	id, ok, err := f.FileID()
	if err != nil || !ok {
		t.Fatalf("FileID: %v %v", ok, err)
	}
	f.Close()

	f2 := New(d.base, 2)
	defer f2.Close()
	if _, err := f2.Start(&checkpoint.Entry{File: id, Offset: 3}); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	readAll(t, f2, &sb)
	if got, want := sb.String(), "a2\nb1\n"; got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	if len(f2.Gaps()) != 0 {
		t.Fatal("unexpected gap")
	}
	// A checkpoint for a file that is gone: start at the oldest, with a gap.
	f3 := New(d.base, 2)
	defer f3.Close()
	if _, err := f3.Start(&checkpoint.Entry{File: checkpoint.FileID{Ino: 1, FP: 1}, Offset: 3}); err != nil {
		t.Fatal(err)
	}
	if len(f3.Gaps()) != 1 {
		t.Fatal("missing gap for vanished checkpoint file")
	}
}

func TestTruncatedInPlace(t *testing.T) {
	d := newDockerLog(t, 1)
	d.write("a1\na2\n")
	f := New(d.base, 0)
	defer f.Close()
	if _, err := f.Start(nil); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	readAll(t, f, &sb)
	if _, _, err := f.FileID(); err != nil {
		t.Fatal(err)
	}
	if err := d.f.Truncate(0); err != nil {
		t.Fatal(err)
	}
	d.write("b\n")
	readAll(t, f, &sb)
	if got, want := sb.String(), "a1\na2\nb\n"; got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// TestListingDuringRotation: a listing taken while Docker is part-way
// through a rotation does not see every generation under a name (the live
// file has been renamed and its successor is not created yet, or a held
// file is between two names). Nothing still linked is counted as lost, and
// the generations are read in order, once each.
func TestListingDuringRotation(t *testing.T) {
	tests := []struct {
		name string
		// interrupt runs the first half of a max-file 2 rotation (a,
		// being read, deleted; b, live and held, renamed) and returns
		// the second half (c created).
		interrupt func(d *dockerLog) (finish func())
	}{
		{
			name: "live name absent",
			interrupt: func(d *dockerLog) func() {
				_ = d.f.Close()
				_ = os.Remove(d.base + ".1")
				if err := os.Rename(d.base, d.base+".1"); err != nil {
					t.Fatal(err)
				}
				return func() { d.create(); d.write("c1\n") }
			},
		},
		{
			name: "held file between names",
			interrupt: func(d *dockerLog) func() {
				_ = d.f.Close()
				_ = os.Remove(d.base + ".1")
				if err := os.Rename(d.base, d.base+".moving"); err != nil {
					t.Fatal(err)
				}
				return func() {
					if err := os.Rename(d.base+".moving", d.base+".1"); err != nil {
						t.Fatal(err)
					}
					d.create()
					d.write("c1\n")
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newDockerLog(t, 2)
			f := New(d.base, 0) // no deleted generation may be held
			defer f.Close()
			d.write("a1\n")
			if _, err := f.Start(nil); err != nil {
				t.Fatal(err)
			}
			d.rotate() // a is .1, being read; b live
			d.write("b1\n")
			if err := f.Watch(); err != nil { // holds b
				t.Fatal(err)
			}
			finish := tc.interrupt(d)
			if err := f.Watch(); err != nil { // mid-rotation
				t.Fatal(err)
			}
			if gaps := f.Gaps(); len(gaps) != 0 {
				t.Fatalf("gaps mid-rotation: %+v", gaps)
			}
			finish()
			var sb strings.Builder
			readAll(t, f, &sb)
			if got, want := sb.String(), "a1\nb1\nc1\n"; got != want {
				t.Fatalf("read %q, want %q", got, want)
			}
			if gaps := f.Gaps(); len(gaps) != 0 {
				t.Fatalf("unexpected gaps %+v", gaps)
			}
		})
	}
}
