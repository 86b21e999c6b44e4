package shipper

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/inventory"
	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/ecs"
	"github.com/heartwood-ops/heartwood/shipper/esout"
	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/jsonlog"
	"github.com/heartwood-ops/heartwood/shipper/logline"
	"github.com/heartwood-ops/heartwood/shipper/multiline"
	"github.com/heartwood-ops/heartwood/shipper/partial"
)

// apiReader ships the logs of a container whose log driver writes no
// json-file (local, journald, ... with Docker's log cache) through the
// Docker logs API, following with timestamps.
//
// A record's position is its Docker timestamp plus its index among records
// with the same timestamp; the checkpoint stores that position (Entry.Time
// and Entry.Offset) and a resumed stream asks for logs since the timestamp
// and skips the records already seen, so _ids (derived from the position)
// repeat exactly on replay.
type apiReader struct {
	s    *Shipper
	id   string
	slot uint32
	set  settings
	meta *ecs.Meta
	log  *slog.Logger
	key  uint64

	asm *partial.Assembler
	ml  *multiline.Aggregator
	trk tracker
	seq uint64

	lastTS  int64 // position of the last record read
	lastIdx uint32
	nEmit   int

	docs    []esout.Doc
	pend    []pendingDoc
	slab    []byte
	bytesIn int64

	removed   atomic.Bool
	removedAt atomic.Int64
}

func (s *Shipper) newAPIReader(c *inventory.Container, set settings, slot uint32) *apiReader {
	h := fnv.New64a()
	h.Write([]byte(c.ID))
	h.Write([]byte("/docker-logs-api"))
	r := &apiReader{s: s, id: c.ID, slot: slot, set: set, meta: ecs.NewMeta(s.sourceFor(c, set)),
		log: s.log.With("container", c.ShortID(), "name", c.Name, "source", "docker-api"),
		key: h.Sum64(), asm: partial.New(int(s.cfg.MaxEventBytes))}
	if set.multiline.Enabled() {
		r.ml, _ = multiline.New(set.multiline)
	}
	return r
}

func (r *apiReader) run(ctx context.Context) {
	skip, ts := uint32(0), int64(0)
	if cp, ok := r.s.store.Get(r.id); ok {
		r.seq = cp.Seq
		r.trk.cp, r.trk.hasCP = cp, true
		ts, skip = cp.Time, uint32(cp.Offset)
		r.lastTS, r.lastIdx = cp.Time, uint32(max(cp.Offset-1, 0))
	}
	backoff := r.s.cfg.PollInterval
	for ctx.Err() == nil {
		err := r.stream(ctx, ts, skip)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.log.Warn("docker logs stream", "err", err)
		}
		// Resume after the last record read.
		ts, skip = r.lastTS, r.lastIdx+1
		if r.removed.Load() {
			r.asm.Flush(r.onLine)
			if r.ml != nil {
				r.ml.Flush(r.emit)
			}
			r.setResume()
			r.submit(ctx)
			deadline := time.Unix(0, r.removedAt.Load()).Add(r.s.cfg.RemovalGrace)
			for r.trk.inflight() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(r.s.cfg.PollInterval)
			}
			if ctx.Err() == nil {
				r.s.store.Delete(r.id)
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// stream follows the logs since ts, skipping the first skip records that
// carry exactly ts.
func (r *apiReader) stream(ctx context.Context, ts int64, skip uint32) error {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
	if ts > 0 {
		opts.Since = strconv.FormatInt(ts/1e9, 10) + "." + fmt.Sprintf("%09d", ts%1e9)
	}
	rc, err := r.s.deps.Docker.ContainerLogs(ctx, r.id, opts)
	if err != nil {
		return fmt.Errorf("container logs: %w", err)
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 64<<10)
	first, err := br.Peek(1)
	if err != nil {
		return err
	}
	multiplexed := first[0] <= 2
	var hdr [8]byte
	var line []byte
	prevTS, prevIdx := int64(-1), uint32(0)
	flushTick := time.Now()
	for {
		stream := jsonfile.Stdout
		if multiplexed {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				return err
			}
			if hdr[0] == 2 {
				stream = jsonfile.Stderr
			}
			n := binary.BigEndian.Uint32(hdr[4:])
			if cap(line) < int(n) {
				line = make([]byte, n)
			}
			line = line[:n]
			if _, err := io.ReadFull(br, line); err != nil {
				return err
			}
		} else {
			l, err := br.ReadSlice('\n')
			if errors.Is(err, bufio.ErrBufferFull) {
				line = append(line[:0], l...)
				for errors.Is(err, bufio.ErrBufferFull) {
					l, err = br.ReadSlice('\n')
					line = append(line, l...)
				}
			} else {
				line = append(line[:0], l...)
			}
			if err != nil && len(line) == 0 {
				return err
			}
		}
		// "<RFC 3339 nano> <message>"
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 {
			r.s.m.malformed.Inc()
			continue
		}
		t, err := jsonfile.ParseTime(line[:sp])
		if err != nil {
			r.s.m.malformed.Inc()
			continue
		}
		idx := uint32(0)
		if t == prevTS {
			idx = prevIdx + 1
		}
		prevTS, prevIdx = t, idx
		if t < ts || (t == ts && idx < skip) {
			continue // already shipped before the reconnect
		}
		r.lastTS, r.lastIdx = t, idx
		r.s.m.linesRead.Inc()
		r.s.m.bytesRead.Add(float64(len(line)))
		rec := jsonfile.Record{Log: line[sp+1:], Stream: stream, Time: t, TimeRaw: line[:sp]}
		pos := logline.Pos{File: idx, Off: t}
		r.asm.Push(&rec, pos, pos, r.onLine)
		r.setResume()
		if r.bytesIn >= int64(r.s.cfg.BatchBytes) || (br.Buffered() == 0 && len(r.docs) > 0) || time.Since(flushTick) > time.Second {
			flushTick = time.Now()
			if r.ml != nil && br.Buffered() == 0 {
				r.ml.FlushIdle(time.Now().UnixNano(), r.emit)
				r.setResume()
			}
			if !r.submit(ctx) {
				return ctx.Err()
			}
		}
	}
}

func (r *apiReader) onLine(l *logline.Line) {
	if r.ml != nil {
		r.ml.Push(l, r.emit)
		return
	}
	r.emit(l)
}

func (r *apiReader) emit(l *logline.Line) {
	ev := ecs.Event{Line: l, Seq: r.seq}
	if r.set.json {
		if res, ok, err := jsonlog.Decode(l.Text); err != nil {
			ev.Tags = []string{"json_error"}
		} else if ok {
			ev.Message, ev.Level, ev.Fields = res.Message, res.Level, res.Fields
			if ev.Message == nil {
				ev.Message = []byte{}
			}
		}
	}
	r.seq++
	off := len(r.slab)
	r.slab = r.meta.Append(r.slab, &ev)
	bodyEnd := len(r.slab)
	r.slab = append(r.slab, l.Text...)
	var raw [18]byte
	binary.BigEndian.PutUint64(raw[:8], r.key)
	binary.BigEndian.PutUint64(raw[8:16], uint64(l.Start.Off))
	binary.BigEndian.PutUint16(raw[16:], uint16(l.Start.File))
	r.docs = append(r.docs, esout.Doc{Index: r.set.index(), ID: base64.RawURLEncoding.EncodeToString(raw[:]),
		Body: r.slab[off:bodyEnd:bodyEnd], Raw: r.slab[bodyEnd:len(r.slab):len(r.slab)]})
	size := int64(len(r.slab) - off)
	r.pend = append(r.pend, pendingDoc{size: size, cp: checkpoint.Entry{Time: l.Time}})
	r.bytesIn += size
	r.nEmit++
}

// setResume gives the events emitted since the last call their resume
// position: the first pending record, or just after the last record read.
func (r *apiReader) setResume() {
	if r.nEmit == 0 {
		return
	}
	ts, idx := r.lastTS, r.lastIdx+1
	if p, ok := r.asm.Pending(); ok {
		ts, idx = p.Off, p.File
	} else if r.ml != nil {
		if p, ok := r.ml.Pending(); ok {
			ts, idx = p.Off, p.File
		}
	}
	for i := len(r.pend) - r.nEmit; i < len(r.pend); i++ {
		r.pend[i].cp.Time, r.pend[i].cp.Offset, r.pend[i].cp.Seq = ts, int64(idx), r.seq
	}
	r.nEmit = 0
}

func (r *apiReader) submit(ctx context.Context) bool {
	if len(r.docs) == 0 {
		return true
	}
	if err := r.s.budget.acquire(ctx, r.slot, r.bytesIn); err != nil {
		return false
	}
	for i := range r.docs {
		idx := r.trk.add(r.pend[i].size, r.pend[i].cp)
		r.docs[i].Token = uint64(r.slot)<<40 | idx&(1<<40-1)
	}
	docs := r.docs
	r.s.m.events.Add(float64(len(docs)))
	err := r.s.out.Write(ctx, docs, r.s.ack)
	r.docs, r.pend, r.slab, r.bytesIn = nil, r.pend[:0], nil, 0
	if err != nil {
		r.s.budget.release(r.slot, min(int64(r.s.cfg.MaxInflightBytes), sumSizes(docs)))
		return false
	}
	return true
}

func (r *apiReader) acked(idx uint64, outcome esout.Outcome) {
	size, cp, advanced := r.trk.ack(idx)
	r.s.budget.release(r.slot, size)
	label := outcomeLabel(outcome)
	r.s.m.eventsAcked.WithLabelValues(label).Inc()
	r.s.m.bytesAcked.WithLabelValues(label).Add(float64(size))
	if advanced {
		r.s.store.Set(r.id, cp)
	}
}
