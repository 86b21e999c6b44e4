package shipper

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
)

const ts1 = "2026-11-30T10:00:00.000000001Z"

func frame(stream byte, payload string) []byte {
	h := make([]byte, 8, 8+len(payload))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

// collect reads every record of a stream.
func collect(t testing.TB, in []byte, maxEvent int) (recs []apiRecord, err error) {
	st := newAPIStream(bytes.NewReader(in), maxEvent)
	for {
		rec, err := st.next()
		if err != nil {
			return recs, err
		}
		rec.raw = bytes.Clone(rec.raw)
		recs = append(recs, rec)
	}
}

func TestAPIStream(t *testing.T) {
	const max = 1024
	long := strings.Repeat("x", 5*max)
	tests := []struct {
		name string
		in   []byte
		want []apiRecord
	}{
		{"plain lines", []byte(ts1 + " a\n" + ts1 + " b\n"),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte(ts1 + " a\n")}, {stream: jsonfile.Stdout, raw: []byte(ts1 + " b\n")}}},
		{"plain trailing record without newline", []byte(ts1 + " a\n" + ts1 + " b"),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte(ts1 + " a\n")}, {stream: jsonfile.Stdout, raw: []byte(ts1 + " b")}}},
		{"tty line over the cap is cut and the rest skipped", []byte(ts1 + " " + long + "\n" + ts1 + " next\n"),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte((ts1 + " " + long)[:max+1+maxTimestamp] + "\n"), capped: true},
				{stream: jsonfile.Stdout, raw: []byte(ts1 + " next\n")}}},
		{"tty line over the cap ended by a carriage return and the next record", []byte(ts1 + " " + long + "\r" + ts1 + " next\r\n"),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte((ts1 + " " + long)[:max+1+maxTimestamp] + "\n"), capped: true},
				{stream: jsonfile.Stdout, raw: []byte(ts1 + " next\r\n")}}},
		{"tty line over the cap without newline", []byte(ts1 + " " + long + long),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte((ts1 + " " + long)[:max+1+maxTimestamp] + "\n"), capped: true}}},
		{"frames", append(frame(1, ts1+" out\n"), frame(2, ts1+" err\n")...),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte(ts1 + " out\n")}, {stream: jsonfile.Stderr, raw: []byte(ts1 + " err\n")}}},
		{"frame over the cap", append(frame(1, ts1+" "+long+"\n"), frame(1, ts1+" ok\n")...),
			[]apiRecord{{stream: jsonfile.Stdout, raw: []byte((ts1 + " " + long)[:max+1+maxTimestamp] + "\n"), capped: true},
				{stream: jsonfile.Stdout, raw: []byte(ts1 + " ok\n")}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(t, tt.in, max)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("stream ended with %v, want EOF", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].stream != tt.want[i].stream || got[i].capped != tt.want[i].capped || !bytes.Equal(got[i].raw, tt.want[i].raw) {
					t.Errorf("record %d = {%v %.60q… (%d bytes) capped=%v}, want {%v %.60q… (%d bytes) capped=%v}", i,
						got[i].stream, got[i].raw, len(got[i].raw), got[i].capped,
						tt.want[i].stream, tt.want[i].raw, len(tt.want[i].raw), tt.want[i].capped)
				}
			}
		})
	}
}

func TestAPIStreamTruncatedFrame(t *testing.T) {
	in := frame(1, ts1+" whole\n")
	in = append(in, frame(1, ts1+" cut short\n")[:12]...)
	got, err := collect(t, in, 1024)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want unexpected EOF", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d records, want 1", len(got))
	}
}

// TestAPIStreamMemoryBounded: a TTY container printing far more than the
// cap without a newline does not grow the parser's buffer beyond the cap.
func TestAPIStreamMemoryBounded(t *testing.T) {
	const max = 4096
	r := io.MultiReader(strings.NewReader(ts1+" "), io.LimitReader(repeatReader('y'), 64<<20), strings.NewReader("\n"+ts1+" after\n"))
	st := newAPIStream(r, max)
	rec, err := st.next()
	if err != nil || !rec.capped || len(rec.raw) != max+1+maxTimestamp+1 {
		t.Fatalf("first record: capped=%v len=%d err=%v, want a capped record of %d bytes", rec.capped, len(rec.raw), err, max+1+maxTimestamp+1)
	}
	rec, err = st.next()
	if err != nil || string(rec.raw) != ts1+" after\n" {
		t.Fatalf("second record %.80q, %v; want the line after the long one", rec.raw, err)
	}
	if c := cap(st.line); c > 2*(max+1+maxTimestamp+1) {
		t.Fatalf("line buffer grew to %d bytes, cap is %d", c, max)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// FuzzAPIStream feeds arbitrary bytes to the Docker logs stream parser:
// it must not panic, every record stays within the cap, and the stream
// ends with EOF or an unexpected EOF.
func FuzzAPIStream(f *testing.F) {
	f.Add([]byte(ts1+" a\n"+ts1+" b"), uint16(16))
	f.Add(append(frame(1, ts1+" out\n"), frame(2, ts1+" err\n")...), uint16(8))
	f.Add(append(frame(1, ts1+" "+strings.Repeat("z", 300)), frame(0, "x")...), uint16(32))
	f.Add([]byte("\x01\x00\x00\x00\xff\xff\xff\xff"), uint16(1))
	f.Add([]byte(strings.Repeat("no newline at all ", 100)), uint16(20))
	f.Fuzz(func(t *testing.T, in []byte, maxEvent uint16) {
		max := int(maxEvent) + 1
		st := newAPIStream(bytes.NewReader(in), max)
		for i := 0; ; i++ {
			rec, err := st.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(rec.raw) > max+1+maxTimestamp+1 {
				t.Fatalf("record of %d bytes over the cap of %d", len(rec.raw), max)
			}
			if rec.capped && (len(rec.raw) == 0 || rec.raw[len(rec.raw)-1] != '\n') {
				t.Fatalf("capped record %q does not end its line", rec.raw)
			}
			if i > len(in) {
				t.Fatalf("more records (%d) than input bytes", i)
			}
		}
	})
}
