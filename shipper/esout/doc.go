// Package esout is the shipper's Elasticsearch output: it batches
// documents into hand-built NDJSON bulk requests (op "create" with a
// deterministic _id, so that a replay is a no-op), compresses them, sends
// them with a bounded number of workers and classifies every item of every
// bulk response.
//
// Every document given to Write ends in exactly one ack: Delivered (201),
// Duplicate (409, already indexed by an earlier attempt) or DeadLettered
// (permanently rejected, then written to a dead-letter data stream with the
// raw record and the error). Retryable failures (429, 5xx, transport
// errors, timeouts) are retried without limit, with exponential backoff and
// jitter, item by item when the bulk response says which items failed.
// Nothing is dropped silently; when Elasticsearch is down the in-flight
// byte budget fills and Write blocks (backpressure).
package esout
