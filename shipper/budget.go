package shipper

import (
	"container/list"
	"context"
	"errors"
	"sync"
)

// budget bounds the bytes of documents read but not yet acknowledged, and
// shares them fairly between containers: while others wait, no container
// may hold more than an equal share, so a noisy container cannot starve the
// rest. Waiters are served in arrival order among those within their share.
type budget struct {
	mu      sync.Mutex
	max     int64
	used    int64
	owners  map[uint32]int64 // bytes held per reader
	waiters list.List        // of *budgetWaiter
	onUse   func(int64)
}

type budgetWaiter struct {
	owner uint32
	n     int64
	ready chan struct{}
}

func newBudget(max int64, onUse func(int64)) *budget {
	return &budget{max: max, owners: map[uint32]int64{}, onUse: onUse}
}

// share is the most one owner may hold while others wait.
func (b *budget) shareLocked() int64 {
	active := len(b.owners)
	for e := b.waiters.Front(); e != nil; e = e.Next() {
		if _, ok := b.owners[e.Value.(*budgetWaiter).owner]; !ok {
			active++
		}
	}
	return b.max / int64(max(active, 1))
}

func (b *budget) fitsLocked(owner uint32, n int64, share int64) bool {
	if b.used+n > b.max && b.used > 0 {
		return false // a request larger than the budget is granted alone
	}
	held := b.owners[owner]
	return held == 0 || held+n <= share
}

// acquire takes n bytes for owner, waiting while the budget is full or the
// owner is over its share. A request larger than the whole budget is
// granted when nothing else is held.
func (b *budget) acquire(ctx context.Context, owner uint32, n int64) error {
	return b.acquireUnless(ctx, owner, n, nil)
}

// errStopped is returned by acquireUnless when its stop channel closed.
var errStopped = errors.New("stopped waiting for the in-flight budget")

// acquireUnless is acquire that also stops waiting, with errStopped, once
// stop is closed (a nil stop never is).
func (b *budget) acquireUnless(ctx context.Context, owner uint32, n int64, stop <-chan struct{}) error {
	if n <= 0 {
		return nil
	}
	b.mu.Lock()
	if b.waiters.Len() == 0 && b.fitsLocked(owner, n, b.max) {
		b.takeLocked(owner, n)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{owner: owner, n: n, ready: make(chan struct{})}
	e := b.waiters.PushBack(w)
	b.grantLocked()
	b.mu.Unlock()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-stop:
		err = errStopped
	}
	b.mu.Lock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.releaseLocked(owner, n)
	default:
		b.waiters.Remove(e)
	}
	b.grantLocked()
	b.mu.Unlock()
	return err
}

func (b *budget) takeLocked(owner uint32, n int64) {
	b.used += n
	b.owners[owner] += n
	if b.onUse != nil {
		b.onUse(b.used)
	}
}

func (b *budget) releaseLocked(owner uint32, n int64) {
	b.used -= n
	if b.owners[owner] -= n; b.owners[owner] <= 0 {
		delete(b.owners, owner)
	}
	if b.onUse != nil {
		b.onUse(b.used)
	}
}

// release returns n bytes of owner's.
func (b *budget) release(owner uint32, n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.releaseLocked(owner, n)
	b.grantLocked()
	b.mu.Unlock()
}

// grantLocked wakes waiters in order, skipping those over their share; it
// stops at the first waiter that does not fit the global budget so that
// large requests are not starved.
func (b *budget) grantLocked() {
	share := b.shareLocked()
	for e := b.waiters.Front(); e != nil; {
		w := e.Value.(*budgetWaiter)
		next := e.Next()
		if b.used+w.n > b.max && b.used > 0 {
			return
		}
		if b.fitsLocked(w.owner, w.n, share) {
			b.takeLocked(w.owner, w.n)
			b.waiters.Remove(e)
			close(w.ready)
		}
		e = next
	}
}

func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// reset forgets every holder (their documents belong to a finished run).
func (b *budget) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used = 0
	b.owners = map[uint32]int64{}
	if b.onUse != nil {
		b.onUse(0)
	}
}
