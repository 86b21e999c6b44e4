// Package catalogwatch times when a service registered by a Heartwood node
// appears in or leaves Consul's catalog, for the registrar's benchmarks.
package catalogwatch

import (
	"context"
	"fmt"
	"time"

	consulapi "github.com/hashicorp/consul/api"
)

// Watch waits, with blocking queries on /v1/catalog/service/<name>, until
// the service has instances registered for node (Meta heartwood_node) when
// present is true, or none when it is false, and returns the time that
// answer arrived. ready is closed after Consul's first answer, once the
// next query is about to park, so that the caller can act: Consul then
// answers the parked query as soon as the change is committed.
func Watch(ctx context.Context, c *consulapi.Client, name, node string, present bool, ready chan<- struct{}) (time.Time, error) {
	var idx uint64
	first := true
	for {
		q := (&consulapi.QueryOptions{WaitIndex: idx, WaitTime: 30 * time.Second,
			Filter: fmt.Sprintf("ServiceMeta.heartwood_node == %q", node)}).WithContext(ctx)
		svcs, meta, err := c.Catalog().Service(name, "", q)
		now := time.Now()
		if err != nil {
			return now, err
		}
		if first {
			close(ready)
			first = false
		}
		if (len(svcs) > 0) == present {
			return now, nil
		}
		idx = meta.LastIndex
	}
}
