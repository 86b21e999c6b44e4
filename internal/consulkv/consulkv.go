// Package consulkv adapts a Consul API client to the watchman's KV
// interface, with blocking queries on a key prefix.
package consulkv

import (
	"context"
	"fmt"
	"strings"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// KV reads a prefix of Consul's key/value store.
type KV struct {
	kv *consulapi.KV
	// Wait is the longest a blocking query waits for a change.
	Wait time.Duration
}

// New returns a KV reading through client.
func New(client *consulapi.Client) *KV {
	return &KV{kv: client.KV(), Wait: 5 * time.Minute}
}

// List returns the keys under prefix with the prefix removed, and Consul's
// index. With waitIndex > 0 the query blocks until the prefix changes past
// that index, Wait passes, or ctx ends.
func (k *KV) List(ctx context.Context, prefix string, waitIndex uint64) (map[string]string, uint64, error) {
	q := (&consulapi.QueryOptions{WaitIndex: waitIndex, WaitTime: k.Wait}).WithContext(ctx)
	pairs, meta, err := k.kv.List(prefix, q)
	if err != nil {
		return nil, 0, fmt.Errorf("consul kv list %s: %w", prefix, err)
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		key := strings.TrimPrefix(p.Key, prefix)
		if key == "" || strings.HasSuffix(key, "/") {
			continue // the prefix itself, or a folder
		}
		out[key] = string(p.Value)
	}
	return out, meta.LastIndex, nil
}
