package backoff

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestNominal(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{-1, 100 * time.Millisecond},
		{0, 100 * time.Millisecond},
		{1, 200 * time.Millisecond},
		{2, 400 * time.Millisecond},
		{3, 800 * time.Millisecond},
		{4, time.Second},
		{63, time.Second},
		{1000, time.Second},
	}
	for _, tc := range tests {
		if got := p.Nominal(tc.attempt); got != tc.want {
			t.Errorf("Nominal(%d) = %s, want %s", tc.attempt, got, tc.want)
		}
	}
	if got := (Policy{}).Nominal(3); got != 0 {
		t.Errorf("zero policy Nominal = %s, want 0", got)
	}
}

func TestJitterBounds(t *testing.T) {
	for _, d := range []time.Duration{0, 1, 2, time.Millisecond, 30 * time.Second} {
		for range 200 {
			got := Jitter(d)
			if got < d/2 || got > d {
				t.Fatalf("Jitter(%s) = %s, outside [%s, %s]", d, got, d/2, d)
			}
		}
	}
}

func TestBackoffGrowsAndResets(t *testing.T) {
	b := New(10*time.Millisecond, 80*time.Millisecond)
	want := []time.Duration{10, 20, 40, 80, 80}
	for i, w := range want {
		d := b.Next()
		max := w * time.Millisecond
		if d < max/2 || d > max {
			t.Fatalf("wait %d = %s, want in [%s, %s]", i, d, max/2, max)
		}
	}
	if b.Attempt() != len(want) {
		t.Fatalf("Attempt = %d, want %d", b.Attempt(), len(want))
	}
	b.Reset()
	if d := b.Next(); d > 10*time.Millisecond {
		t.Fatalf("after Reset wait = %s, want ≤ 10ms", d)
	}
}

func TestSleep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := Sleep(context.Background(), 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Fatalf("slept %s, want 3s", got)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if err := Sleep(ctx, time.Hour); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Sleep with ended ctx = %v", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("returned after %s, want 1s", got)
		}
	})
}
