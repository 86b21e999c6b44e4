package registrar

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotReady is returned by Maintenance before the first full reconcile
// with Consul.
var ErrNotReady = errors.New("registrar: not yet reconciled with consul")

// errNotReconciled is Ready's answer before the first full reconcile; the
// readiness report already names the registrar.
var errNotReconciled = errors.New("not yet reconciled with consul")

// Maintenance puts every service of the container into Consul maintenance
// (on) or takes them out of it (off), and keeps that state across
// reconciles and Consul restarts until it is turned off or the container
// is removed. It returns nil once Consul has the new state.
//
// On error (ErrNotReady before the first reconcile, or Consul's error) a
// request to turn maintenance on has no lasting effect: the previous state
// is restored and any service already switched is switched back by the next
// reconcile, so a caller that gives up (e.g. does not pause the container)
// leaves the services in DNS. A request to turn it off stays recorded and
// is applied when Consul answers again.
func (r *Registrar) Maintenance(ctx context.Context, containerID string, on bool, reason string) error {
	if reason == "" {
		reason = "maintenance requested by Heartwood"
	}
	r.mu.Lock()
	prev, had := r.explicit[containerID]
	if on {
		r.explicit[containerID] = reason
	} else {
		delete(r.explicit, containerID)
	}
	if _, ok := r.containers[containerID]; !ok {
		if c, found := r.src.Get(containerID); found {
			r.containers[containerID] = c
		}
	}
	loaded := r.loaded
	r.mu.Unlock()
	var err error
	if !loaded {
		err = ErrNotReady
	} else if err = r.reconcile(ctx, false, map[string]time.Time{containerID: {}}); err != nil {
		err = fmt.Errorf("registrar: maintenance for %.12s: %w", containerID, err)
	}
	if err != nil && on {
		r.mu.Lock()
		if had {
			r.explicit[containerID] = prev
		} else {
			delete(r.explicit, containerID)
		}
		r.mu.Unlock()
	}
	return err
}
