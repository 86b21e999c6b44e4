// Package backoff is the one exponential-backoff-with-jitter mechanism of
// the agent: every retry loop (Docker reconnects, Consul writes, Elasticsearch
// requests, supervisor restarts, KV reads) takes its waits from here.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy describes exponential backoff: the first wait is about Min, each
// later one doubles, and no wait exceeds Max. Waits use "equal jitter":
// uniform in [d/2, d], so retries from many agents spread out while each
// still waits at least half the nominal delay.
type Policy struct {
	Min time.Duration
	Max time.Duration
}

// Nominal returns the un-jittered delay before retry number attempt
// (0 for the first retry).
func (p Policy) Nominal(attempt int) time.Duration {
	d := p.Max
	if attempt < 0 {
		attempt = 0
	}
	if attempt < 62 {
		if x := p.Min << attempt; x > 0 && x < d {
			d = x
		}
	}
	if d < 0 {
		return 0
	}
	return d
}

// Delay returns the jittered delay before retry number attempt.
func (p Policy) Delay(attempt int) time.Duration { return Jitter(p.Nominal(attempt)) }

// Jitter returns a duration uniform in [d/2, d].
func Jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// Backoff counts consecutive failures of one loop. The zero value with a
// Policy set is ready to use; it is not safe for concurrent use.
type Backoff struct {
	Policy
	attempt int
}

// New returns a Backoff over [min, max].
func New(min, max time.Duration) *Backoff { return &Backoff{Policy: Policy{Min: min, Max: max}} }

// Next returns the wait before the next retry and counts the failure.
func (b *Backoff) Next() time.Duration {
	d := b.Delay(b.attempt)
	b.attempt++
	return d
}

// Attempt is the number of failures counted since the last Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// Reset starts over at Min, after a success.
func (b *Backoff) Reset() { b.attempt = 0 }

// Sleep waits for d or until ctx ends, and returns ctx's error in the latter
// case.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Wait sleeps for the next delay of b, honouring ctx.
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }
