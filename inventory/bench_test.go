package inventory

import "testing"

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
	subs := []Subscription{inv.feed.Subscribe(nil), inv.feed.Subscribe(nil), inv.feed.Subscribe(nil)}
	c := fromInspect(inspectFixture("0123456789abcdef", "web", "running"))
	b.ReportAllocs()
	for b.Loop() {
		inv.mu.Lock()
		inv.upsertLocked(c, "kill", nil, true)
		inv.mu.Unlock()
		for _, s := range subs {
			if len(s.Pending()) != 1 {
				b.Fatal("want one change")
			}
		}
	}
}
