package inventory

import (
	"context"
	"testing"
)

// BenchmarkFromInspect measures converting one inspect response, done once
// per Docker event.
func BenchmarkFromInspect(b *testing.B) {
	in := inspectFixture("0123456789abcdef0123456789abcdef", "web", "running")
	b.ReportAllocs()
	for b.Loop() {
		_ = fromInspect(in)
	}
}

// BenchmarkPublishThreeSubscribers measures the cost of one change fanned
// out to three subscribers (registrar, shipper, watchman) and consumed.
func BenchmarkPublishThreeSubscribers(b *testing.B) {
	inv := New(newFakeDocker(), Options{})
	subs := []*Subscription{inv.Subscribe(), inv.Subscribe(), inv.Subscribe()}
	c := fromInspect(inspectFixture("0123456789abcdef", "web", "running"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		inv.mu.Lock()
		inv.upsertLocked(c, "kill", nil, true)
		inv.mu.Unlock()
		for _, s := range subs {
			if _, err := s.Next(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
}
