package shipper

import (
	"context"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
)

// readerStatus is a json-file reader's externally visible state.
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

// reportGaps turns lost data into gap events and metrics.
func (r *fileReader) reportGaps(ctx context.Context) {
	for _, g := range r.fol.Gaps() {
		r.c.m.gaps.WithLabelValues(r.short).Inc()
		if g.Bytes > 0 {
			r.c.m.lostBytes.WithLabelValues(r.short).Add(float64(g.Bytes))
		}
		r.mu.Lock()
		r.status.Gaps++
		if g.Bytes > 0 {
			r.status.LostBytes += g.Bytes
		}
		r.mu.Unlock()
		r.log.Warn("log data lost before it could be read", "bytes", g.Bytes, "reason", g.Reason)
		r.c.gap(ctx, gapEvent{bytes: g.Bytes, reason: g.Reason})
	}
}

// checkHeadroom warns when unread data nears what Docker keeps.
func (r *fileReader) checkHeadroom() {
	if r.cap <= 0 {
		return
	}
	unread := r.fol.Unread() + int64(r.w-r.r) // read into the buffer is not shipped yet either
	over := float64(unread) > r.headroomWarn*float64(r.cap)
	if over && !r.warnedHR {
		r.c.m.headroomWarns.WithLabelValues(r.short).Inc()
		r.log.Warn("unread logs close to being rotated away", "unread_bytes", unread, "docker_keeps_bytes", r.cap)
	}
	r.warnedHR = over
}

func (r *fileReader) updateStatus() {
	num, off := r.fol.Pos()
	cp, _ := r.trk.checkpoint()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status.FileNumber, r.status.Offset = num, off
	r.status.UnreadBytes = r.fol.Unread()
	r.status.Sequence = r.seq
	r.status.Checkpoint = cp
	r.status.Inflight = r.trk.inflight()
	r.status.Removed = r.isRemoved()
	if cp.Time > 0 {
		r.status.LagSeconds = time.Since(time.Unix(0, cp.Time)).Seconds()
	}
}

func (r *fileReader) describe() any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}
