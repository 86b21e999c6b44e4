//go:build integration

package consulkv_test

import (
	"context"
	"testing"
	"time"

	consulapi "github.com/hashicorp/consul/api"

	"github.com/heartwood-ops/heartwood/internal/consulkv"
	"github.com/heartwood-ops/heartwood/internal/testenv"
)

func TestIntegrationListAndBlock(t *testing.T) {
	addr := testenv.RequireConsul(t)
	cfg := consulapi.DefaultConfig()
	cfg.Address = addr
	c, err := consulapi.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "heartwood-test/" + testenv.RunID() + "/watchman/"
	t.Cleanup(func() { _, _ = c.KV().DeleteTree(prefix, nil) })
	put := func(k, v string) {
		if _, err := c.KV().Put(&consulapi.KVPair{Key: prefix + k, Value: []byte(v)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	put("window", "10m")
	put("nodes/n1/dry-run", "true")
	kv := consulkv.New(c)
	kv.Wait = 5 * time.Second
	ctx := context.Background()
	got, idx, err := kv.List(ctx, prefix, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got["window"] != "10m" || got["nodes/n1/dry-run"] != "true" || len(got) != 2 || idx == 0 {
		t.Fatalf("got %v at %d", got, idx)
	}
	// A blocking query returns when the prefix changes.
	go func() {
		time.Sleep(300 * time.Millisecond)
		put("cpu", "0.2")
	}()
	start := time.Now()
	got, idx2, err := kv.List(ctx, prefix, idx)
	if err != nil {
		t.Fatal(err)
	}
	if got["cpu"] != "0.2" || idx2 <= idx {
		t.Errorf("after change: %v at %d (was %d)", got, idx2, idx)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 4*time.Second {
		t.Errorf("blocking query returned after %s", d)
	}
	// ctx cancellation ends a blocking query.
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, _, err := kv.List(cctx, prefix, idx2); err == nil {
		t.Error("cancelled query returned no error")
	}
}
