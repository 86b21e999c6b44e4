package shipper

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/ecs"
	"github.com/heartwood-ops/heartwood/shipper/esout"
	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/jsonlog"
	"github.com/heartwood-ops/heartwood/shipper/logline"
	"github.com/heartwood-ops/heartwood/shipper/multiline"
	"github.com/heartwood-ops/heartwood/shipper/partial"
	"github.com/heartwood-ops/heartwood/shipper/tail"
)

const (
	readChunk    = 32 << 10
	maxRecord    = 4 << 20 // a json-file record longer than this is garbage
	refreshEvery = time.Second
)

// reader ships one container's json-file log. Its goroutine owns every
// field except the atomics and those under mu.
type reader struct {
	s     *Shipper
	id    string
	slot  uint32
	set   settings
	index string // the data stream
	meta  *ecs.Meta
	log   *slog.Logger
	cap   int64 // Docker's max-size × max-file, 0 if unbounded

	fol *tail.Follower
	asm *partial.Assembler
	ml  *multiline.Aggregator
	trk tracker

	buf     []byte
	r, w    int
	scratch []byte
	seq     uint64
	files   map[uint32]checkpoint.FileID
	keys    map[uint32]uint64 // _id key per file number

	// the batch being built
	docs   []esout.Doc
	pend   []pendingDoc
	slab   []byte
	ids    []byte
	idEnds []int
	nEmit  int // docs emitted while processing the current record
	// reserved is the budget taken for the batch being built.
	reserved int64
	ctx      context.Context // the run's context, for reservations
	// sizes of the previous batch, to size the next one
	slabHint, docsHint int
	bytesIn            int64

	removed   atomic.Bool
	removedAt atomic.Int64
	done      chan struct{}

	mu            sync.Mutex
	status        readerStatus
	warnedHR      bool
	skipToNewline bool
}

type pendingDoc struct {
	size int64
	cp   checkpoint.Entry
}

// readerStatus is the reader's externally visible state.
type readerStatus struct {
	File        string           `json:"file"`
	FileNumber  uint32           `json:"file_number"`
	Offset      int64            `json:"offset"`
	UnreadBytes int64            `json:"unread_bytes"`
	Sequence    uint64           `json:"next_sequence"`
	Checkpoint  checkpoint.Entry `json:"checkpoint"`
	Inflight    int              `json:"inflight_events"`
	Gaps        int              `json:"gaps"`
	LostBytes   int64            `json:"lost_bytes"`
	Removed     bool             `json:"removed"`
	Index       string           `json:"data_stream"`
	Multiline   string           `json:"multiline,omitempty"`
	JSON        bool             `json:"json"`
	LagSeconds  float64          `json:"lag_seconds"`
}

func (s *Shipper) newReader(c *inventory.Container, set settings, slot uint32) *reader {
	base := filepath.Join(s.cfg.ContainersRoot, c.ID, c.ID+"-json.log")
	r := &reader{
		s: s, id: c.ID, slot: slot, set: set, index: set.index(),
		meta:  ecs.NewMeta(s.sourceFor(c, set)),
		log:   s.log.With("container", c.ShortID(), "name", c.Name),
		cap:   logCapacity(c.LogConfig),
		fol:   tail.New(base, s.cfg.MaxDeletedFiles),
		asm:   partial.New(int(s.cfg.MaxEventBytes)),
		buf:   make([]byte, readChunk),
		files: map[uint32]checkpoint.FileID{},
		keys:  map[uint32]uint64{},
		done:  make(chan struct{}),
		// Start as a busy reader (a backlog is likely at start).
		slabHint: int(s.cfg.BatchBytes),
	}
	if set.multiline.Enabled() {
		r.ml, _ = multiline.New(set.multiline) // validated in settingsFor
	}
	r.status.File = base
	r.status.Index = set.index()
	r.status.JSON = set.json
	if set.multiline.Enabled() {
		r.status.Multiline = set.multiline.Preset + set.multiline.Pattern
	}
	return r
}

// logCapacity is how many bytes Docker keeps: max-size × max-file.
func logCapacity(cfg map[string]string) int64 {
	size, err := parseDockerSize(cfg["max-size"])
	if err != nil || size <= 0 {
		return 0
	}
	files := int64(1)
	if v, err := strconv.ParseInt(cfg["max-file"], 10, 64); err == nil && v > 0 {
		files = v
	}
	return size * files
}

// parseDockerSize parses Docker's max-size ("10m", "1g", "512k", "100").
func parseDockerSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := int64(1)
	switch s[len(s)-1] {
	case 'k', 'K':
		mult, s = 1000, s[:len(s)-1]
	case 'm', 'M':
		mult, s = 1000*1000, s[:len(s)-1]
	case 'g', 'G':
		mult, s = 1000*1000*1000, s[:len(s)-1]
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	return int64(n * float64(mult)), nil
}

// run reads until ctx ends or the removed container is drained.
func (r *reader) run(ctx context.Context) {
	r.ctx = ctx
	defer close(r.done)
	defer r.fol.Close()
	var start *checkpoint.Entry
	if cp, ok := r.s.store.Get(r.id); ok {
		start = &cp
		r.seq = cp.Seq
		r.trk.cp, r.trk.hasCP = cp, true
	}
	started := false
	rotated := false
	lastRefresh := time.Now()
	idle := r.s.cfg.PollInterval
	folRemoved := false
	for ctx.Err() == nil {
		if !folRemoved && r.removed.Load() {
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
			if r.removed.Load() {
				r.finish(ctx)
				return
			}
			r.sleep(ctx, idle)
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
			r.s.m.bytesRead.Add(float64(n))
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
		if r.ml != nil {
			r.ml.FlushIdle(time.Now().UnixNano(), r.emit)
			r.setResume()
		}
		if len(r.docs) > 0 && !r.submit(ctx) {
			return
		}
		r.updateStatus()
		if r.trk.inflight() == 0 {
			_, pendingLine := r.asm.Pending()
			if r.ml != nil {
				_, mlPending := r.ml.Pending()
				pendingLine = pendingLine || mlPending
			}
			if !pendingLine && r.fol.Unread() == 0 {
				// Caught up and everything acknowledged: no lag.
				r.s.m.lag.WithLabelValues(r.id[:min(12, len(r.id))]).Set(0)
			}
		}
		if r.removed.Load() && (rotated || ev == tail.NoChange) && r.fol.Unread() == 0 {
			if r.drainedRemoved() {
				r.finish(ctx)
				return
			}
		}
		r.sleep(ctx, idle)
	}
	// Whatever was not handed over is read again by the next run: the
	// checkpoint has not moved past it.
}

// drainedRemoved reports whether a removed container's files are all read:
// Docker deleted its directory, so nothing can be appended any more.
func (r *reader) drainedRemoved() bool {
	return r.fol.Unread() == 0
}

// finish flushes what is pending, hands it over and waits (bounded by the
// removal grace) for the acknowledgements, then forgets the container.
func (r *reader) finish(ctx context.Context) {
	r.asm.Flush(r.onLine)
	if r.ml != nil {
		r.ml.Flush(r.emit)
	}
	r.setResume()
	if len(r.docs) > 0 && !r.submit(ctx) {
		return
	}
	deadline := time.Unix(0, r.removedAt.Load()).Add(r.s.cfg.RemovalGrace)
	for r.trk.inflight() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		r.sleep(ctx, r.s.cfg.PollInterval)
	}
	if ctx.Err() != nil {
		return // keep the checkpoint: the next run resumes the drain
	}
	if n := r.trk.inflight(); n > 0 {
		r.log.Warn("removed container's last events not acknowledged within the grace period", "events", n)
	}
	r.s.store.Delete(r.id)
	r.log.Debug("removed container drained")
}

func (r *reader) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// makeRoom compacts or grows the buffer when it is full.
func (r *reader) makeRoom() bool {
	if r.r > 0 {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
		return true
	}
	if len(r.buf) >= maxRecord {
		// A "record" this long is not json-file output: skip it.
		r.s.m.malformed.Inc()
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
func (r *reader) dropIncomplete() {
	if r.w > r.r {
		r.s.m.malformed.Inc()
	}
	r.r, r.w = 0, 0
	r.skipToNewline = false
	if len(r.buf) > readChunk {
		r.buf = make([]byte, readChunk)
	}
}

// process decodes every complete record in the buffer.
func (r *reader) process(ctx context.Context) bool {
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
		r.s.m.linesRead.Inc()
		rec, scratch, err := jsonfile.Parse(line, r.scratch[:0])
		r.scratch = scratch
		if err != nil {
			r.s.m.malformed.Inc()
			continue
		}
		if _, ok := r.files[num]; !ok {
			// The _id key of a file: container and first-line fingerprint
			// (stable across restarts, inode reuse and in-place
			// truncation). Should the head be unreadable, fall back to the
			// inode, stable while the file exists.
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
		r.asm.Push(&rec, start, end, r.onLine)
		r.setResume()
		if r.bytesIn >= int64(r.s.cfg.BatchBytes) {
			if !r.submit(ctx) {
				return false
			}
		}
	}
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	return true
}

func (r *reader) onLine(l *logline.Line) {
	if r.ml != nil {
		r.ml.Push(l, r.emit)
		return
	}
	r.emit(l)
}

// emit encodes one event into the batch. Its resume point is filled in by
// setResume once the record that completed it is fully processed.
func (r *reader) emit(l *logline.Line) {
	ev := ecs.Event{Line: l, Seq: r.seq}
	if r.set.json {
		res, ok, err := jsonlog.Decode(l.Text)
		switch {
		case err != nil:
			ev.Tags = []string{"json_error"}
		case ok:
			ev.Message, ev.Level, ev.Fields = res.Message, res.Level, res.Fields
			if ev.Message == nil {
				ev.Message = []byte{}
			}
		}
	}
	r.seq++
	if l.Truncated {
		r.s.m.truncated.Inc()
	}
	// Body, then the raw text for the dead-letter stream, in one slab that
	// is sized for a whole batch (it is handed to the output with it).
	if r.slab == nil {
		// Memory for the batch comes from the in-flight budget before it
		// is built, so that readers building batches are bounded too.
		r.reserve(int64(r.s.cfg.BatchBytes))
		// Sized from the previous batch: busy readers get whole-batch
		// slabs (no regrowth), mostly idle ones small ones.
		size := min(max(r.slabHint+r.slabHint/4, 4<<10), int(r.s.cfg.BatchBytes)+8<<10)
		r.slab = make([]byte, 0, size)
		r.docs = make([]esout.Doc, 0, max(r.docsHint, 16))
	}
	off := len(r.slab)
	r.slab = r.meta.Append(r.slab, &ev)
	bodyEnd := len(r.slab)
	r.slab = append(r.slab, l.Text...)
	// _id: file key and offset of the event's first record.
	var raw [14]byte
	binary.BigEndian.PutUint64(raw[:8], r.keys[l.Start.File])
	o := uint64(l.Start.Off)
	for i := 13; i >= 8; i-- {
		raw[i] = byte(o)
		o >>= 8
	}
	r.ids = base64.RawURLEncoding.AppendEncode(r.ids, raw[:])
	r.idEnds = append(r.idEnds, len(r.ids))
	r.docs = append(r.docs, esout.Doc{Index: r.index,
		Body: r.slab[off:bodyEnd:bodyEnd], Raw: r.slab[bodyEnd:len(r.slab):len(r.slab)]})
	size := int64(len(r.slab) - off)
	r.pend = append(r.pend, pendingDoc{size: size, cp: checkpoint.Entry{Time: l.Time}})
	r.bytesIn += size
	r.nEmit++
}

// setResume gives the events emitted since the last call their resume
// point: the start of whatever is still pending, or the end of what was
// read.
func (r *reader) setResume() {
	if r.nEmit == 0 {
		return
	}
	num, readOff := r.fol.Pos()
	pos := logline.Pos{File: num, Off: readOff - int64(r.w-r.r)}
	if p, ok := r.asm.Pending(); ok {
		pos = p
	} else if r.ml != nil {
		if p, ok := r.ml.Pending(); ok {
			pos = p
		}
	}
	id := r.files[pos.File]
	for i := len(r.pend) - r.nEmit; i < len(r.pend); i++ {
		r.pend[i].cp.File = id
		r.pend[i].cp.Offset = pos.Off
		r.pend[i].cp.Seq = r.seq
	}
	r.nEmit = 0
}

// submit hands the batch to the output, after taking its bytes from the
// in-flight budget.
func (r *reader) submit(ctx context.Context) bool {
	if len(r.docs) == 0 {
		return true
	}
	// Settle the reservation against the batch's real size.
	if r.bytesIn > r.reserved {
		// Larger than reserved (a big last event): trade the reservation
		// for the whole size, which may exceed the budget and is then
		// granted alone.
		r.s.budget.release(r.slot, r.reserved)
		r.reserved = 0
		if !r.acquire(ctx, r.bytesIn) {
			return false
		}
	} else {
		r.s.budget.release(r.slot, r.reserved-r.bytesIn)
	}
	r.reserved = 0
	ids := string(r.ids)
	prev := 0
	for i := range r.docs {
		r.docs[i].ID = ids[prev:r.idEnds[i]]
		prev = r.idEnds[i]
		idx := r.trk.add(r.pend[i].size, r.pend[i].cp)
		r.docs[i].Token = uint64(r.slot)<<40 | idx&(1<<40-1)
	}
	docs := r.docs
	r.slabHint, r.docsHint = len(r.slab), len(r.docs)
	r.s.m.events.Add(float64(len(docs)))
	err := r.s.out.Write(ctx, docs, r.s.ack)
	// The output keeps docs and the slab: start fresh ones.
	r.docs, r.pend, r.slab, r.ids, r.idEnds = nil, r.pend[:0], nil, r.ids[:0], r.idEnds[:0]
	r.bytesIn = 0
	if err != nil {
		// Not accepted: give the bytes back; the checkpoint has not
		// moved past them, so the next run reads them again.
		r.s.budget.release(r.slot, sumSizes(docs))
		return false
	}
	return true
}

// acquire takes the batch's bytes from the in-flight budget. While it
// waits (Elasticsearch slow or down) it keeps watching the log files, so
// that rotated files are held open, headroom is checked and losses are
// reported as they happen.
func (r *reader) acquire(ctx context.Context, n int64) bool {
	for {
		actx, cancel := context.WithTimeout(ctx, refreshEvery)
		err := r.s.budget.acquire(actx, r.slot, n)
		cancel()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if err := r.fol.Watch(); err != nil {
			r.log.Warn("watch log files", "err", err)
		}
		r.reportGaps(ctx)
		r.checkHeadroom()
		r.updateStatus()
	}
}

// reserve takes n bytes for the batch about to be built. If the reader is
// stopping it goes on without: nothing more will be submitted.
func (r *reader) reserve(n int64) {
	if r.ctx != nil && r.acquire(r.ctx, n) {
		r.reserved = n
	}
}

func sumSizes(docs []esout.Doc) int64 {
	var n int64
	for _, d := range docs {
		n += int64(len(d.Body) + len(d.Raw))
	}
	return n
}

// acked handles acknowledgements of this reader's events.
func (r *reader) acked(idx uint64, outcome esout.Outcome) {
	size, cp, advanced := r.trk.ack(idx)
	r.s.budget.release(r.slot, size)
	label := outcomeLabel(outcome)
	r.s.m.eventsAcked.WithLabelValues(label).Inc()
	r.s.m.bytesAcked.WithLabelValues(label).Add(float64(size))
	if advanced {
		r.s.store.Set(r.id, cp)
		if cp.Time > 0 {
			r.s.m.lag.WithLabelValues(r.id[:min(12, len(r.id))]).Set(time.Since(time.Unix(0, cp.Time)).Seconds())
		}
	}
}

func outcomeLabel(o esout.Outcome) string {
	switch o {
	case esout.Delivered:
		return "delivered"
	case esout.Duplicate:
		return "duplicate"
	case esout.DeadLettered:
		return "dead_lettered"
	}
	return "unknown"
}

// reportGaps turns lost data into gap events and metrics.
func (r *reader) reportGaps(ctx context.Context) {
	for _, g := range r.fol.Gaps() {
		short := r.id[:min(12, len(r.id))]
		r.s.m.gaps.WithLabelValues(short).Inc()
		if g.Bytes > 0 {
			r.s.m.lostBytes.WithLabelValues(short).Add(float64(g.Bytes))
		}
		r.mu.Lock()
		r.status.Gaps++
		if g.Bytes > 0 {
			r.status.LostBytes += g.Bytes
		}
		r.mu.Unlock()
		r.log.Warn("log data lost before it could be read", "bytes", g.Bytes, "reason", g.Reason)
		r.s.sendGap(ctx, r, g)
	}
}

// checkHeadroom warns when unread data nears what Docker keeps.
func (r *reader) checkHeadroom() {
	if r.cap <= 0 {
		return
	}
	unread := r.fol.Unread() + int64(r.w-r.r) // read into the buffer is not shipped yet either
	over := float64(unread) > r.s.cfg.HeadroomWarn*float64(r.cap)
	if over && !r.warnedHR {
		r.s.m.headroomWarns.WithLabelValues(r.id[:min(12, len(r.id))]).Inc()
		r.log.Warn("unread logs close to being rotated away", "unread_bytes", unread, "docker_keeps_bytes", r.cap)
	}
	r.warnedHR = over
}

func (r *reader) updateStatus() {
	num, off := r.fol.Pos()
	cp, _ := r.trk.checkpoint()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.FileNumber, r.status.Offset = num, off
	r.status.UnreadBytes = r.fol.Unread()
	r.status.Sequence = r.seq
	r.status.Checkpoint = cp
	r.status.Inflight = r.trk.inflight()
	r.status.Removed = r.removed.Load()
	if cp.Time > 0 {
		r.status.LagSeconds = time.Since(time.Unix(0, cp.Time)).Seconds()
	}
}

func (r *reader) describe() readerStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}
