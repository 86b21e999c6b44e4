package shipper

import (
	"sync"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
)

// tracker turns out-of-order acknowledgements of one container's events
// into an in-order watermark: the checkpoint advances to the resume point
// of the newest event whose predecessors are all acknowledged.
type tracker struct {
	mu    sync.Mutex
	base  uint64 // index of slots[head]
	head  int
	slots []trackSlot
	cp    checkpoint.Entry
	hasCP bool
}

type trackSlot struct {
	done bool
	size int64
	cp   checkpoint.Entry // where to resume once this event is acknowledged
}

// add registers an in-flight event and returns its index.
func (t *tracker) add(size int64, cp checkpoint.Entry) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.head > 1024 && t.head*2 > len(t.slots) {
		t.slots = append(t.slots[:0], t.slots[t.head:]...)
		t.head = 0
	}
	t.slots = append(t.slots, trackSlot{size: size, cp: cp})
	return t.base + uint64(len(t.slots)-t.head-1)
}

// ack marks event idx acknowledged. It returns the event's size and, when
// the watermark moved, the new checkpoint.
func (t *tracker) ack(idx uint64) (size int64, cp checkpoint.Entry, advanced bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if idx < t.base {
		return 0, cp, false // duplicate ack
	}
	i := t.head + int(idx-t.base)
	if i >= len(t.slots) || t.slots[i].done {
		return 0, cp, false
	}
	t.slots[i].done = true
	size = t.slots[i].size
	for t.head < len(t.slots) && t.slots[t.head].done {
		t.cp, t.hasCP, advanced = t.slots[t.head].cp, true, true
		t.slots[t.head] = trackSlot{}
		t.head++
		t.base++
	}
	return size, t.cp, advanced
}

// inflight returns the number of unacknowledged events.
func (t *tracker) inflight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.slots[t.head:] {
		if !s.done {
			n++
		}
	}
	return n
}

// checkpoint returns the current watermark.
func (t *tracker) checkpoint() (checkpoint.Entry, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cp, t.hasCP
}
