// Package inventorytest is a fake container inventory for the subsystems'
// unit tests: a test sets containers and the fake publishes the changes a
// real inventory would, in order, to every subscription. It satisfies the
// Source interfaces of the registrar, shipper and watchman.
package inventorytest

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/heartwood-ops/heartwood/inventory"
)

// Fake is a container inventory driven by the test. The zero value is an
// inventory that has synced with no containers.
type Fake struct {
	mu         sync.Mutex
	containers map[string]*inventory.Container
	feed       inventory.Broadcaster
	synced     chan struct{}
	holdSync   bool
}

// New returns a synced fake holding cs.
func New(cs ...*inventory.Container) *Fake {
	f := &Fake{}
	for _, c := range cs {
		f.containersLocked()[c.ID] = c
	}
	return f
}

// NewUnsynced returns a fake whose Subscribe blocks until Sync is called,
// like an inventory that has not yet listed Docker's containers.
func NewUnsynced(cs ...*inventory.Container) *Fake {
	f := New(cs...)
	f.holdSync = true
	f.synced = make(chan struct{})
	return f
}

// Sync ends the wait of NewUnsynced.
func (f *Fake) Sync() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.holdSync {
		f.holdSync = false
		close(f.synced)
	}
}

func (f *Fake) containersLocked() map[string]*inventory.Container {
	if f.containers == nil {
		f.containers = make(map[string]*inventory.Container)
	}
	return f.containers
}

// Subscribe waits for the fake's sync, then returns a subscription whose
// snapshot is the fake's containers and which receives every later change.
func (f *Fake) Subscribe(ctx context.Context) (inventory.Subscription, error) {
	f.mu.Lock()
	wait := f.synced
	hold := f.holdSync
	f.mu.Unlock()
	if hold {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.feed.Subscribe(f.listLocked()), nil
}

// Set adds c, or replaces the container with its ID, and publishes Added or
// Updated with the given Docker event action (e.g. "start", "die").
func (f *Fake) Set(action string, c *inventory.Container) inventory.Change {
	return f.SetWithAttributes(action, c, nil)
}

// SetWithAttributes is Set with the Docker event's attributes.
func (f *Fake) SetWithAttributes(action string, c *inventory.Container, attrs map[string]string) inventory.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.containersLocked()
	prev, ok := m[c.ID]
	m[c.ID] = c
	ch := inventory.Change{Kind: inventory.Added, Action: action, Container: c, Attributes: attrs}
	if ok {
		ch.Kind, ch.Previous = inventory.Updated, prev
	}
	return f.feed.Publish(ch)
}

// Remove deletes the container with this ID and publishes Removed with the
// action "destroy". It reports whether the container was there.
func (f *Fake) Remove(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	prev, ok := f.containersLocked()[id]
	if !ok {
		return false
	}
	delete(f.containers, id)
	f.feed.Publish(inventory.Change{Kind: inventory.Removed, Action: "destroy", Container: prev, Previous: prev})
	return true
}

// Get returns the container with this full ID.
func (f *Fake) Get(id string) (*inventory.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.containers[id]
	return c, ok
}

// Lookup finds a container by the inventory's reference rules.
func (f *Fake) Lookup(ref string) (*inventory.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := inventory.Find(f.listLocked(), func(c *inventory.Container) *inventory.Container { return c }, ref)
	return c, err == nil
}

// List returns the containers sorted by name.
func (f *Fake) List() []*inventory.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.listLocked()
}

func (f *Fake) listLocked() []*inventory.Container {
	out := slices.Collect(maps.Values(f.containers))
	slices.SortFunc(out, func(a, b *inventory.Container) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Container returns a running container with the given ID and name, for
// tests to adjust.
func Container(id, name string) *inventory.Container {
	return &inventory.Container{
		ID:     id,
		Name:   name,
		Labels: map[string]string{},
		State:  inventory.State{Status: "running", Running: true},
	}
}
