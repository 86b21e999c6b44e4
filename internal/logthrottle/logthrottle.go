// Package logthrottle keeps a failing dependency from flooding the log: a
// slog handler that writes the first of a run of identical warnings and
// holds back the repeats for a window, then writes one summary line with
// how many it held back. Identical means the same logger attributes, level,
// message and textual attributes (strings, errors, booleans): numbers,
// durations and times, such as a retry delay or an attempt count, may
// differ.
package logthrottle

import (
	"cmp"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxKeys bounds the messages tracked at once; past it the oldest window
// is closed early (its summary written).
const maxKeys = 1024

// Handler wraps another handler; create it with New.
type Handler struct {
	next slog.Handler
	key  string // the logger's own attributes and groups
	st   *state
}

type state struct {
	window time.Duration
	level  slog.Level

	mu   sync.Mutex
	runs map[string]*run
	seq  uint64 // runs started, to find the oldest
}

// run is one message's current window.
type run struct {
	start      time.Time
	seq        uint64
	suppressed int
	last       slog.Record
	next       slog.Handler
}

// New returns a handler that passes records to next, holding back repeats
// at level or above of a message written less than window ago.
func New(next slog.Handler, window time.Duration, level slog.Level) *Handler {
	return &Handler{next: next, st: &state{window: window, level: level, runs: map[string]*run{}}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.key)
	for _, a := range as {
		b.WriteString(" " + a.String())
	}
	return &Handler{next: h.next.WithAttrs(as), key: b.String(), st: h.st}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), key: h.key + " [" + name + "]", st: h.st}
}

// Handle implements slog.Handler: it writes the summaries of the windows
// that ended, then r unless r repeats a message of a window still open.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	now := time.Now()
	st := h.st
	st.mu.Lock()
	ended := st.endedLocked(now)
	hold := false
	if r.Level >= st.level {
		key := h.key + "\x00" + r.Level.String() + "\x00" + r.Message + identity(r)
		if cur, ok := st.runs[key]; ok {
			cur.suppressed++
			cur.last = r.Clone()
			hold = true
		} else {
			if len(st.runs) >= maxKeys {
				if old := st.oldestLocked(); old.suppressed > 0 {
					ended = append(ended, old)
				}
			}
			st.seq++
			st.runs[key] = &run{start: now, seq: st.seq, next: h.next}
		}
	}
	st.mu.Unlock()
	for _, e := range ended {
		_ = e.next.Handle(ctx, summary(e, now, st.window))
	}
	if hold {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// identity renders the attributes of r that make it another message.
func identity(r slog.Record) string {
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		writeIdentity(&b, "", a)
		return true
	})
	return b.String()
}

func writeIdentity(b *strings.Builder, prefix string, a slog.Attr) {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindDuration, slog.KindTime:
		return
	case slog.KindGroup:
		for _, g := range v.Group() {
			writeIdentity(b, prefix+a.Key+".", g)
		}
		return
	}
	b.WriteString("\x00" + prefix + a.Key + "=" + v.String())
}

// endedLocked removes the runs whose window has passed and returns those
// that held something back.
func (st *state) endedLocked(now time.Time) []*run {
	var out []*run
	for k, r := range st.runs {
		if now.Sub(r.start) < st.window {
			continue
		}
		delete(st.runs, k)
		if r.suppressed > 0 {
			out = append(out, r)
		}
	}
	return out
}

// oldestLocked removes the oldest run to make room.
func (st *state) oldestLocked() *run {
	var oldest string
	var seq uint64
	for k, r := range st.runs {
		if oldest == "" || r.seq < seq {
			oldest, seq = k, r.seq
		}
	}
	r := st.runs[oldest]
	delete(st.runs, oldest)
	return r
}

// summary is the last held-back record with how many were held back.
func summary(r *run, now time.Time, window time.Duration) slog.Record {
	s := slog.NewRecord(now, r.last.Level, r.last.Message, r.last.PC)
	r.last.Attrs(func(a slog.Attr) bool { s.AddAttrs(a); return true })
	s.AddAttrs(slog.Int("repeated", r.suppressed), slog.Duration("repeated_within", window))
	return s
}

// Flush writes the summaries of every open window that held something
// back, as at shutdown.
func (h *Handler) Flush(ctx context.Context) {
	now := time.Now()
	st := h.st
	st.mu.Lock()
	var held []*run
	for k, r := range st.runs {
		delete(st.runs, k)
		if r.suppressed > 0 {
			held = append(held, r)
		}
	}
	st.mu.Unlock()
	slices.SortFunc(held, func(a, b *run) int { return cmp.Compare(a.seq, b.seq) })
	for _, r := range held {
		_ = r.next.Handle(ctx, summary(r, now, st.window))
	}
}
