package shipper

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
	"github.com/heartwood-ops/heartwood/shipper/tail"
)

const (
	readChunk = 32 << 10
	maxRecord = 4 << 20 // a json-file record longer than this is garbage
)

// fileReader ships one container's json-file log: it follows the files
// (tail), decodes records (jsonfile), reassembles and groups lines
// (partial, multiline) and hands events to its batch. Its goroutine owns
// every field except those of lifecycle and under mu.
type fileReader struct {
	batch
	log *slog.Logger
	cap int64 // Docker's max-size × max-file, 0 if unbounded
	// headroomWarn is the fraction of cap at which unread data warns.
	headroomWarn float64

	assembly
	fol *tail.Follower

	buf           []byte
	r, w          int
	scratch       []byte
	skipToNewline bool
	files         map[uint32]checkpoint.FileID
	keys          map[uint32]uint64 // _id key per file number
	warnedHR      bool

	mu     sync.Mutex
	status readerStatus
}

// fileReaderOptions are a json-file reader's own settings.
type fileReaderOptions struct {
	base            string // the current log file's path
	capacity        int64
	headroomWarn    float64
	maxDeletedFiles int
}

func newFileReader(b batchConfig, log *slog.Logger, set settings, o fileReaderOptions) *fileReader {
	r := &fileReader{
		batch: batch{batchConfig: b, lifecycle: newLifecycle()}, log: log, cap: o.capacity, headroomWarn: o.headroomWarn,
		fol:   tail.New(o.base, o.maxDeletedFiles),
		buf:   make([]byte, readChunk),
		files: map[uint32]checkpoint.FileID{},
		keys:  map[uint32]uint64{},
	}
	// Start as a busy reader (a backlog is likely at start).
	r.slabHint = int(b.p.batchBytes)
	r.appendID = r.appendFileID
	r.waiting = r.watch
	r.abandon = r.giveUp
	r.assembly = newAssembly(b.p.maxEventBytes, set, nil) // out is set by run
	r.status.File = o.base
	r.status.Index = b.index
	r.status.JSON = set.json
	if set.multiline.Enabled() {
		r.status.Multiline = set.multiline.Preset + set.multiline.Pattern
	}
	return r
}

// appendFileID appends an event's raw _id: its file's key and the offset
// of its first record.
func (r *fileReader) appendFileID(dst []byte, l *logline.Line) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.keys[l.Start.File])
	o := uint64(l.Start.Off)
	return append(dst, byte(o>>40), byte(o>>32), byte(o>>24), byte(o>>16), byte(o>>8), byte(o))
}

// run reads until ctx ends or the removed container is drained.
func (r *fileReader) run(ctx context.Context) {
	r.out = func(l *logline.Line) { r.emit(ctx, l) }
	defer r.fol.Close()
	defer r.release()
	var start *checkpoint.Entry
	if cp, ok := r.restore(); ok {
		start = &cp
	}
	started := false
	rotated := false
	lastRefresh := time.Now()
	idle := r.p.pollInterval
	folRemoved := false
	for ctx.Err() == nil && !r.abandoned {
		if r.isExpired() {
			r.quit(ctx) // told to give up: release the files now
			return
		}
		if !folRemoved && r.isRemoved() {
			r.fol.Removed() // drain everything: the files can only be deleted now
			folRemoved = true
		}
		if !started {
			ok, err := r.fol.Start(start)
			if err != nil {
				r.log.Warn("open log file", "err", err)
			}
			if ok {
				started = true
				r.reportGaps(ctx)
				continue
			}
			if r.isRemoved() {
				r.finish(ctx)
				return
			}
			_ = backoff.Sleep(ctx, idle)
			continue
		}
		if r.w == len(r.buf) {
			if !r.makeRoom() {
				continue
			}
		}
		n, err := r.fol.Read(r.buf[r.w:])
		if n > 0 {
			r.w += n
			r.c.m.bytesRead.Add(float64(n))
			if !r.process(ctx) {
				return
			}
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.log.Warn("read log file", "err", err)
		}
		atEOF := n == 0 || errors.Is(err, io.EOF)
		if !atEOF && time.Since(lastRefresh) < refreshEvery {
			continue
		}
		lastRefresh = time.Now()
		if atEOF && rotated {
			// The rotated file is drained: go on with its successor.
			r.dropIncomplete()
			if r.fol.Advance() {
				rotated = false
				continue
			}
		}
		ev, err := r.fol.Refresh()
		if err != nil {
			r.log.Warn("refresh log files", "err", err)
		}
		r.reportGaps(ctx)
		r.checkHeadroom()
		switch ev {
		case tail.Rotated:
			if !rotated {
				rotated = true
				continue // drain to EOF first
			}
		case tail.Truncated:
			r.dropIncomplete()
			rotated = false
			continue
		}
		if !atEOF {
			continue
		}
		// Idle at the end of the data.
		r.flushIdle(time.Now().UnixNano())
		r.setResume()
		if r.pending() && !r.submit(ctx) {
			return
		}
		r.updateStatus()
		if r.trk.inflight() == 0 && !r.open() && r.fol.Unread() == 0 {
			r.caughtUp()
		}
		if r.isRemoved() && (rotated || ev == tail.NoChange) && r.fol.Unread() == 0 {
			// Docker deleted the directory: nothing can be appended any
			// more, and everything is read.
			r.finish(ctx)
			return
		}
		_ = backoff.Sleep(ctx, idle)
	}
	// Whatever was not handed over is read again by the next run: the
	// checkpoint has not moved past it.
}

// finish flushes what is pending, hands it over and waits (bounded by the
// removal grace) for the acknowledgements, then forgets the container.
func (r *fileReader) finish(ctx context.Context) {
	r.flush()
	r.setResume()
	if r.handOver(ctx, r.log) {
		r.log.Debug("removed container drained")
	}
}

// makeRoom compacts or grows the buffer when it is full.
func (r *fileReader) makeRoom() bool {
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
		return true
	}
	if len(r.buf) >= maxRecord {
		// A "record" this long is not json-file output: skip it.
		r.c.m.malformed.Inc()
		r.r, r.w = 0, 0
		r.skipToNewline = true
		return false
	}
	nb := make([]byte, len(r.buf)*2)
	copy(nb, r.buf[:r.w])
	r.buf = nb
	return true
}

// dropIncomplete discards a trailing incomplete record (a rotated or
// truncated file never gets its end).
func (r *fileReader) dropIncomplete() {
	if r.w > r.r {
		r.c.m.malformed.Inc()
	}
	r.r, r.w = 0, 0
	r.skipToNewline = false
	if len(r.buf) > readChunk {
		r.buf = make([]byte, readChunk)
	}
}

// process decodes every complete record in the buffer.
func (r *fileReader) process(ctx context.Context) bool {
	num, readOff := r.fol.Pos()
	bufStart := readOff - int64(r.w) // file offset of buf[0]
	for {
		nl := bytes.IndexByte(r.buf[r.r:r.w], '\n')
		if nl < 0 {
			break
		}
		line := r.buf[r.r : r.r+nl]
		start := logline.Pos{File: num, Off: bufStart + int64(r.r)}
		r.r += nl + 1
		end := logline.Pos{File: num, Off: bufStart + int64(r.r)}
		if r.skipToNewline {
			r.skipToNewline = false
			continue
		}
		r.c.m.linesRead.Inc()
		r.record(line, start, end)
		if r.abandoned || (r.full() && !r.submit(ctx)) {
			return false
		}
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	return true
}

// record handles one json-file record. A panic while handling it (a
// poison record) drops the record as malformed instead of taking the
// reader down: the next run would meet it again.
func (r *fileReader) record(line []byte, start, end logline.Pos) {
	defer func() {
		if v := recover(); v != nil {
			r.c.m.malformed.Inc()
			r.c.m.panics.WithLabelValues("record").Inc()
			r.log.Error("record handling panicked; record skipped", "file_number", start.File, "offset", start.Off, "panic", fmt.Sprint(v))
			r.reset()
			r.setResume()
		}
	}()
	rec, scratch, err := jsonfile.Parse(line, r.scratch[:0])
	r.scratch = scratch
	if err != nil {
		r.c.m.malformed.Inc()
		return
	}
	num := start.File
	if _, ok := r.files[num]; !ok {
		r.identify(num)
	}
	r.push(&rec, start, end)
	r.setResume()
}

// identify computes the _id key of file num: container and first-line
// fingerprint (stable across restarts, inode reuse and in-place
// truncation). Should the head be unreadable, it falls back to the inode,
// stable while the file exists.
func (r *fileReader) identify(num uint32) {
	id, ok, err := r.fol.FileID()
	if !ok {
		r.log.Warn("log file head unreadable; _ids fall back to the inode", "err", err)
		id.Dev, id.Ino = r.fol.Inode()
	}
	r.files[num] = id
	h := fnv.New64a()
	h.Write([]byte(r.id))
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], id.FP)
	if !ok {
		binary.BigEndian.PutUint64(b[8:16], id.Dev)
		binary.BigEndian.PutUint64(b[16:], id.Ino)
	}
	h.Write(b[:])
	r.keys[num] = h.Sum64()
}

// setResume gives the events emitted since the last call their resume
// point: the start of whatever is still pending, or the end of what was
// read.
func (r *fileReader) setResume() {
	if r.nEmit == 0 {
		return
	}
	num, readOff := r.fol.Pos()
	pos := logline.Pos{File: num, Off: readOff - int64(r.w-r.r)}
	if p, ok := r.firstPending(); ok {
		pos = p
	}
	id := r.files[pos.File]
	r.resume(func(cp *checkpoint.Entry) { cp.File, cp.Offset = id, pos.Off })
}

// watch keeps an eye on the log files while the reader waits for budget,
// so that rotated files are held open, headroom is checked and losses are
// reported as they happen.
func (r *fileReader) watch(ctx context.Context) {
	if err := r.fol.Watch(); err != nil {
		r.log.Warn("watch log files", "err", err)
	}
	r.reportGaps(ctx)
	r.checkHeadroom()
	r.updateStatus()
}

// giveUp is how a removed container's reader gives up after the removal
// grace or when told to (expire): what is unread (in its files and
// buffer) is reported as a gap.
func (r *fileReader) giveUp(ctx context.Context) {
	lost := r.fol.Unread() + int64(r.w-r.r)
	why := r.whyGiveUp()
	reason := "container removed; its log files were released unread " + why
	r.c.m.gaps.WithLabelValues(r.short).Inc()
	r.c.m.lostBytes.WithLabelValues(r.short).Add(float64(lost))
	r.log.Warn("removed container's unread logs released "+why, "bytes", lost)
	r.c.gap(ctx, gapEvent{bytes: lost, reason: reason})
}
