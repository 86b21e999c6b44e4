package esout

import "github.com/heartwood-ops/heartwood/internal/promvalue"

// Figures are the writer's running totals since it started.
type Figures struct {
	// Retried counts send attempts that failed retryably and were retried.
	Retried uint64
	// DeadLettered counts documents rejected permanently.
	DeadLettered uint64
	// DeadLetterFailures counts dead letters Elasticsearch rejected too.
	DeadLetterFailures uint64
}

// Figures returns the writer's running totals (the same counts as its
// Prometheus metrics).
func (w *Writer) Figures() Figures {
	return Figures{
		Retried:            uint64(promvalue.Sum(w.m.retried)),
		DeadLettered:       uint64(promvalue.Sum(w.m.deadLettered)),
		DeadLetterFailures: uint64(promvalue.Sum(w.m.deadLetterFail)),
	}
}
