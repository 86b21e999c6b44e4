package esout

import (
	"container/list"
	"context"
	"sync"
)

// budget is a FIFO byte semaphore bounding in-flight memory. A budget
// with max <= 0 only counts: the caller bounds memory itself.
type budget struct {
	mu       sync.Mutex
	max      int64
	used     int64
	waiters  list.List // of *waiter
	onChange func(used int64)
}

type waiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(max int64, onChange func(int64)) *budget {
	return &budget{max: max, onChange: onChange}
}

func (b *budget) lock()   { b.mu.Lock() }
func (b *budget) unlock() { b.mu.Unlock() }

// clamp limits a request to the whole budget, so that an oversized request
// can still proceed once everything else is released.
func (b *budget) clamp(n int64) int64 {
	if b.max <= 0 {
		return n
	}
	return min(n, b.max)
}

// acquire takes n bytes (n <= max), waiting in FIFO order until they are
// free or ctx ends.
func (b *budget) acquire(ctx context.Context, n int64) error {
	b.lock()
	if b.max <= 0 || (b.waiters.Len() == 0 && b.used+n <= b.max) {
		b.used += n
		b.changed()
		b.unlock()
		return nil
	}
	w := &waiter{n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.lock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.used -= n
	default:
		b.waiters.Remove(e)
	}
	b.grant()
	b.changed()
	b.unlock()
	return ctx.Err()
}

// release returns n bytes.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.lock()
	b.used -= n
	b.grant()
	b.changed()
	b.unlock()
}

// grant wakes waiters from the front while they fit. Called locked.
func (b *budget) grant() {
	for e := b.waiters.Front(); e != nil; e = b.waiters.Front() {
		w := e.Value.(*waiter)
		if b.used+w.n > b.max {
			return
		}
		b.used += w.n
		b.waiters.Remove(e)
		close(w.ready)
	}
}

func (b *budget) changed() {
	if b.onChange != nil {
		b.onChange(b.used)
	}
}

// inUse returns the bytes currently taken.
func (b *budget) inUse() int64 {
	b.lock()
	defer b.unlock()
	return b.used
}
