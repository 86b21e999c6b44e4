package watchman

import "github.com/heartwood-ops/heartwood/internal/promvalue"

// Health is the watchman's part of the agent's health document.
type Health struct {
	// KVErrors counts failed or invalid reads of the watchman's Consul KV
	// settings since it started.
	KVErrors uint64
}

// Health returns the watchman's current figures.
func (w *Watchman) Health() Health {
	return Health{KVErrors: uint64(promvalue.Sum(w.m.kvErrors))}
}
