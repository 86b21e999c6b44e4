package shipper

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/heartwood-ops/heartwood/shipper/checkpoint"
)

func TestTrackerWatermarkOutOfOrder(t *testing.T) {
	var tr tracker
	const n = 1000
	for i := range n {
		tr.add(10, checkpoint.Entry{Offset: int64(i + 1), Seq: uint64(i + 1)})
	}
	order := rand.Perm(n)
	acked := map[int]bool{}
	for _, i := range order {
		size, cp, advanced := tr.ack(uint64(i))
		if size != 10 {
			t.Fatalf("ack %d: size %d", i, size)
		}
		acked[i] = true
		// The watermark is the longest fully acknowledged prefix.
		prefix := 0
		for acked[prefix] {
			prefix++
		}
		if advanced && cp.Offset != int64(prefix) {
			t.Fatalf("after acking %d: checkpoint %d, want %d", i, cp.Offset, prefix)
		}
		if got, _ := tr.checkpoint(); prefix > 0 && got.Offset != int64(prefix) {
			t.Fatalf("after acking %d: checkpoint %d, want %d", i, got.Offset, prefix)
		}
	}
	if tr.inflight() != 0 {
		t.Fatalf("inflight = %d", tr.inflight())
	}
	if size, _, _ := tr.ack(5); size != 0 {
		t.Fatal("duplicate ack counted")
	}
}

func TestBudgetBoundsAndFairness(t *testing.T) {
	b := newBudget(100, nil)
	ctx := context.Background()
	// A noisy owner takes everything.
	for range 10 {
		if err := b.acquire(ctx, 1, 10); err != nil {
			t.Fatal(err)
		}
	}
	if b.inUse() != 100 {
		t.Fatalf("in use %d", b.inUse())
	}
	// Owner 2 waits; owner 1 asks again after it. When owner 1 releases,
	// owner 2 must be served first and owner 1 is held to its share.
	got2 := make(chan struct{})
	go func() { _ = b.acquire(ctx, 2, 40); close(got2) }()
	time.Sleep(20 * time.Millisecond)
	got1 := make(chan struct{})
	go func() { _ = b.acquire(ctx, 1, 10); close(got1) }()
	time.Sleep(20 * time.Millisecond)
	for range 5 {
		b.release(1, 10)
	}
	select {
	case <-got2:
	case <-time.After(time.Second):
		t.Fatal("quiet owner starved")
	}
	select {
	case <-got1:
		t.Fatal("noisy owner over its share was served while another waited")
	case <-time.After(50 * time.Millisecond):
	}
	// Cancelled waiters give up cleanly.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.acquire(cctx, 3, 50); err == nil {
		t.Fatal("acquire with a cancelled context succeeded on a full budget")
	}
	if b.inUse() > 100 {
		t.Fatalf("budget exceeded: %d", b.inUse())
	}
}
