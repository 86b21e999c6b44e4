package inventory

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Source is the inventory as the subsystems consume it; *Inventory and
// inventorytest.Fake satisfy it. Subscribe returns only after the
// inventory's first full sync, so an empty snapshot is never mistaken for a
// node without containers.
type Source interface {
	Subscribe(ctx context.Context) (Subscription, error)
	Get(id string) (*Container, bool)
}

// Subscription is how a subsystem consumes the inventory: the containers at
// the moment it subscribed, then every later change, in order, exactly once.
// Changes are taken in batches: wait on Changed, then take Pending.
//
// The inventory's subscriptions and inventorytest's fake both satisfy it, so
// subsystems depend on this contract rather than on a running inventory.
type Subscription interface {
	// Snapshot returns the containers as they were when the subscription
	// began, sorted by name.
	Snapshot() []*Container
	// Changed is signalled when changes may be waiting.
	Changed() <-chan struct{}
	// Pending returns and removes every queued change without waiting.
	Pending() []Change
	// Close ends the subscription; Pending returns nothing after it.
	Close()
}

// ErrClosed is returned when subscribing to an inventory that stopped.
var ErrClosed = errors.New("inventory closed")

// Broadcaster numbers changes and fans them out to subscriptions, each with
// an unbounded queue so that a slow subscriber never stalls the others or
// the producer (the queue depth is exported as a metric). The producer
// serialises Subscribe and Publish with its own state, so that a snapshot
// and the changes after it never overlap or leave a gap.
type Broadcaster struct {
	mu   sync.Mutex
	seq  uint64
	subs map[*queue]struct{}
}

// Seq is the sequence number of the last published change.
func (b *Broadcaster) Seq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// Subscribe starts a subscription whose snapshot is snapshot; it receives
// every change published after this call.
func (b *Broadcaster) Subscribe(snapshot []*Container) Subscription {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = make(map[*queue]struct{})
	}
	q := &queue{b: b, snapshot: snapshot, seq: b.seq, notify: make(chan struct{}, 1)}
	b.subs[q] = struct{}{}
	return q
}

// Publish numbers ch, stamps its time if unset, queues it for every
// subscription and returns it as published.
func (b *Broadcaster) Publish(ch Change) Change {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	ch.Seq = b.seq
	if ch.Time.IsZero() {
		ch.Time = time.Now()
	}
	for q := range b.subs {
		q.push(ch)
	}
	return ch
}

// Stats returns the number of subscriptions and the deepest queue.
func (b *Broadcaster) Stats() (subscribers, maxDepth int) {
	b.mu.Lock()
	qs := make([]*queue, 0, len(b.subs))
	for q := range b.subs {
		qs = append(qs, q)
	}
	b.mu.Unlock()
	for _, q := range qs {
		maxDepth = max(maxDepth, q.depth())
	}
	return len(qs), maxDepth
}

func (b *Broadcaster) remove(q *queue) {
	b.mu.Lock()
	delete(b.subs, q)
	b.mu.Unlock()
}

// queue is one subscription.
type queue struct {
	b        *Broadcaster
	snapshot []*Container
	seq      uint64 // the last change the snapshot includes

	mu     sync.Mutex
	items  []Change
	closed bool
	notify chan struct{}
}

func (q *queue) Snapshot() []*Container   { return q.snapshot }
func (q *queue) Changed() <-chan struct{} { return q.notify }

func (q *queue) Pending() []Change {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.items
	q.items = nil
	return out
}

func (q *queue) Close() {
	q.b.remove(q)
	q.mu.Lock()
	q.closed = true
	q.items = nil
	q.mu.Unlock()
}

func (q *queue) push(ch Change) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, ch)
	}
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}
