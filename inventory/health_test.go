package inventory

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/docker/docker/api/types/container"
)

// slowDocker is a fakeDocker whose calls can be made to hang, and which
// records the deadline of every call.
type slowDocker struct {
	*fakeDocker
	mu sync.Mutex
	// hang makes List and Inspect wait for their context.
	hang bool
	// stuck makes Inspect wait for release, ignoring its context: a call
	// that never returns.
	stuck   bool
	release chan struct{}
	// noDeadline counts calls made without a deadline.
	noDeadline []string
}

func (s *slowDocker) check(ctx context.Context, call string) (hang, stuck bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := ctx.Deadline(); !ok {
		s.noDeadline = append(s.noDeadline, call)
	}
	return s.hang, s.stuck
}

func (s *slowDocker) ContainerList(ctx context.Context, o container.ListOptions) ([]container.Summary, error) {
	if hang, _ := s.check(ctx, "list"); hang {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return s.fakeDocker.ContainerList(ctx, o)
}

func (s *slowDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	hang, stuck := s.check(ctx, "inspect")
	switch {
	case stuck:
		<-s.release
	case hang:
		<-ctx.Done()
		return container.InspectResponse{}, ctx.Err()
	}
	return s.fakeDocker.ContainerInspect(ctx, id)
}

func (s *slowDocker) set(f func(s *slowDocker)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func runInBubble(t *testing.T, fd DockerAPI, opts Options) *Inventory {
	inv := New(fd, opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = inv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-inv.Synced()
	return inv
}

func TestDockerCallsHaveDeadlines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sd := &slowDocker{fakeDocker: newFakeDocker(), release: make(chan struct{})}
		sd.fakeDocker.set("a", "web", "running")
		inv := runInBubble(t, sd, Options{CallTimeout: 5 * time.Second, MaxBackoff: time.Second})
		sd.set(func(s *slowDocker) { s.hang = true })
		sd.emit("a", "start")
		// The inspect after the event hangs; its deadline ends it and the
		// next (hanging) heartbeat or resync fails the session.
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if ok, err := inv.Connected(); ok || err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Connected() = %t, %v with a hanging engine, want false with a deadline error", ok, err)
		}
		sd.set(func(s *slowDocker) { s.hang = false })
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if ok, err := inv.Connected(); !ok {
			t.Errorf("Connected() = false, %v after the engine recovered", err)
		}
		sd.mu.Lock()
		defer sd.mu.Unlock()
		if len(sd.noDeadline) > 0 {
			t.Errorf("Docker calls without a deadline: %v", sd.noDeadline)
		}
	})
}

func TestStalledEventLoopIsNotReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sd := &slowDocker{fakeDocker: newFakeDocker(), release: make(chan struct{})}
		sd.fakeDocker.set("a", "web", "running")
		inv := runInBubble(t, sd, Options{StallAfter: 90 * time.Second})

		// An idle node with no events stays ready.
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		if ok, err := inv.Connected(); !ok {
			t.Fatalf("idle for 30m: Connected() = false, %v, want ready", err)
		}

		// A call that never returns stalls the event loop.
		sd.set(func(s *slowDocker) { s.stuck = true })
		sd.emit("a", "start")
		time.Sleep(100 * time.Second)
		synctest.Wait()
		ok, err := inv.Connected()
		if ok || err == nil || !strings.Contains(err.Error(), "stalled") {
			t.Fatalf("stuck for 100s: Connected() = %t, %v, want false: stalled", ok, err)
		}
		sd.set(func(s *slowDocker) { s.stuck = false })
		close(sd.release)
		synctest.Wait()
		if ok, err := inv.Connected(); !ok {
			t.Errorf("after the call returned: Connected() = false, %v", err)
		}
	})
}
