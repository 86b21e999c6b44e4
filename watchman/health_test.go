package watchman

import "testing"

func TestHealthCountsKVErrors(t *testing.T) {
	h := newHarness(t, nil)
	if got := h.w.Health(); got.KVErrors != 0 {
		t.Fatalf("at start: %+v", got)
	}
	h.w.applyKV(map[string]string{"window": "1h"})
	h.w.applyKV(map[string]string{"window": "soon"})
	h.w.applyKV(map[string]string{"dry-run": "maybe"})
	if got := h.w.Health(); got.KVErrors != 2 {
		t.Errorf("after two invalid KV settings: %+v, want 2", got)
	}
}
