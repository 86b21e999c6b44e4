package shipper

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/heartwood-ops/heartwood/internal/backoff"
	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
	"github.com/heartwood-ops/heartwood/shipper/jsonfile"
	"github.com/heartwood-ops/heartwood/shipper/logline"
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
	batch
	docker DockerLogs
	log    *slog.Logger
	key    uint64

	assembly

	lastTS  int64 // position of the last record read
	lastIdx uint32
}

func newAPIReader(b batchConfig, log *slog.Logger, set settings, docker DockerLogs) *apiReader {
	h := fnv.New64a()
	h.Write([]byte(b.id))
	h.Write([]byte("/docker-logs-api"))
	r := &apiReader{batch: batch{batchConfig: b, lifecycle: newLifecycle()}, docker: docker, log: log, key: h.Sum64()}
	r.appendID = r.appendAPIID
	r.abandon = r.giveUp
	r.assembly = newAssembly(b.p.maxEventBytes, set, nil) // out is set by run
	return r
}

// appendAPIID appends an event's raw _id: the reader's key, the timestamp
// and index of its first record.
func (r *apiReader) appendAPIID(dst []byte, l *logline.Line) []byte {
	dst = binary.BigEndian.AppendUint64(dst, r.key)
	dst = binary.BigEndian.AppendUint64(dst, uint64(l.Start.Off))
	return binary.BigEndian.AppendUint16(dst, uint16(l.Start.File))
}

func (r *apiReader) run(ctx context.Context) {
	r.out = func(l *logline.Line) { r.emit(ctx, l) }
	defer r.release()
	skip, ts := uint32(0), int64(0)
	if cp, ok := r.restore(); ok {
		ts, skip = cp.Time, uint32(cp.Offset)
		r.lastTS, r.lastIdx = cp.Time, uint32(max(cp.Offset-1, 0))
	}
	wait := backoff.New(r.p.pollInterval, 5*time.Second)
	for ctx.Err() == nil && !r.abandoned {
		read, err := r.stream(ctx, ts, skip)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, io.EOF) {
			r.log.Warn("docker logs stream", "err", err)
		}
		if read {
			wait.Reset()
		}
		// Resume after the last record read.
		ts, skip = r.lastTS, r.lastIdx+1
		if r.isRemoved() {
			r.finish(ctx)
			return
		}
		if err := wait.Wait(ctx); err != nil {
			return
		}
	}
}

// finish flushes what is pending, hands it over and waits (bounded by the
// removal grace) for the acknowledgements, then forgets the container.
func (r *apiReader) finish(ctx context.Context) {
	r.flush()
	r.setResume()
	r.handOver(ctx, r.log)
}

// stream follows the logs since ts, skipping the first skip records that
// carry exactly ts. read reports whether any record was read.
func (r *apiReader) stream(ctx context.Context, ts int64, skip uint32) (read bool, err error) {
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true, Timestamps: true}
	if ts > 0 {
		opts.Since = strconv.FormatInt(ts/1e9, 10) + "." + fmt.Sprintf("%09d", ts%1e9)
	}
	rc, err := r.docker.ContainerLogs(ctx, r.id, opts)
	if err != nil {
		return false, fmt.Errorf("container logs: %w", err)
	}
	defer rc.Close()
	st := newAPIStream(rc, r.p.maxEventBytes)
	prevTS, prevIdx := int64(-1), uint32(0)
	flushTick := time.Now()
	for {
		rec, err := st.next()
		if err != nil {
			r.idle(ctx)
			return read, err
		}
		read = true
		raw, text, ok := rec.split()
		if !ok {
			r.c.m.malformed.Inc()
			continue
		}
		t, err := jsonfile.ParseTime(raw)
		if err != nil {
			r.c.m.malformed.Inc()
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
		r.c.m.linesRead.Inc()
		r.c.m.bytesRead.Add(float64(len(rec.raw)))
		r.record(&jsonfile.Record{Log: text, Stream: rec.stream, Time: t, TimeRaw: raw}, logline.Pos{File: idx, Off: t})
		// A capped record is handed over at once: the rest of its line is
		// skipped next, which may take long.
		if rec.capped || r.full() || (st.br.Buffered() == 0 && r.pending()) || time.Since(flushTick) > refreshEvery {
			flushTick = time.Now()
			if st.br.Buffered() == 0 {
				r.idle(ctx)
			}
			if !r.submit(ctx) {
				return read, ctx.Err()
			}
		}
	}
}

// record handles one record. A panic while handling it (a poison record)
// drops the record as malformed instead of taking the reader down.
func (r *apiReader) record(rec *jsonfile.Record, pos logline.Pos) {
	defer func() {
		if v := recover(); v != nil {
			r.c.m.malformed.Inc()
			r.c.m.panics.WithLabelValues("record").Inc()
			r.log.Error("record handling panicked; record skipped", "time", pos.Off, "panic", fmt.Sprint(v))
			r.reset()
			r.setResume()
		}
	}()
	r.push(rec, pos, pos)
	r.setResume()
}

// idle is called when no more data is buffered: it ends idle multi-line
// events and, when everything is acknowledged, zeroes the lag.
func (r *apiReader) idle(ctx context.Context) {
	r.flushIdle(time.Now().UnixNano())
	r.setResume()
	if !r.pending() && !r.open() && r.trk.inflight() == 0 {
		r.caughtUp()
	}
}

// setResume gives the events emitted since the last call their resume
// position: the first pending record, or just after the last record read.
func (r *apiReader) setResume() {
	ts, idx := r.lastTS, r.lastIdx+1
	if p, ok := r.firstPending(); ok {
		ts, idx = p.Off, p.File
	}
	r.resume(func(cp *checkpoint.Entry) { cp.Time, cp.Offset = ts, int64(idx) })
}

func (r *apiReader) describe() any {
	cp, _ := r.trk.checkpoint()
	return map[string]any{"source": "docker-logs-api", "data_stream": r.index,
		"checkpoint": cp, "inflight_events": r.trk.inflight(), "removed": r.isRemoved()}
}

// giveUp is how a removed container's reader gives up, after the removal
// grace or when told to (expire), while it cannot hand over its data: the
// loss is reported as a gap of unknown size.
func (r *apiReader) giveUp(ctx context.Context) {
	why := r.whyGiveUp()
	r.c.m.gaps.WithLabelValues(r.short).Inc()
	r.log.Warn("removed container's unshipped logs dropped " + why)
	r.c.gap(ctx, gapEvent{bytes: -1, reason: "container removed; its logs could not be shipped: they were dropped " + why})
}
