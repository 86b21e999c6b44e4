package inventory

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"
	"github.com/docker/go-connections/nat"
)

// fakeDocker is an in-memory engine: containers by ID, and an event stream
// the test feeds.
type fakeDocker struct {
	mu         sync.Mutex
	containers map[string]container.InspectResponse
	msgs       chan events.Message
	errs       chan error
	listErr    error
	inspects   map[string]int // inspect calls per container
}

func newFakeDocker() *fakeDocker {
	return &fakeDocker{containers: map[string]container.InspectResponse{}, inspects: map[string]int{}}
}

func (f *fakeDocker) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.msgs = make(chan events.Message, 100)
	f.errs = make(chan error, 1)
	return f.msgs, f.errs
}

func (f *fakeDocker) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErr != nil {
		return nil, f.listErr
	}
	var out []container.Summary
	for id := range f.containers {
		out = append(out, container.Summary{ID: id})
	}
	return out, nil
}

func (f *fakeDocker) ContainerInspect(_ context.Context, id string) (container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inspects[id]++
	c, ok := f.containers[id]
	if !ok {
		return c, errdefs.NotFound(errors.New("no such container"))
	}
	return c, nil
}

func (f *fakeDocker) set(id, name, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers[id] = inspectFixture(id, name, status)
}

func (f *fakeDocker) remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.containers, id)
}

func (f *fakeDocker) emit(id, action string) {
	f.mu.Lock()
	ch := f.msgs
	f.mu.Unlock()
	ch <- events.Message{Type: events.ContainerEventType, Action: events.Action(action), Actor: events.Actor{ID: id}}
}

func (f *fakeDocker) emitMsg(m events.Message) {
	f.mu.Lock()
	ch := f.msgs
	f.mu.Unlock()
	ch <- m
}

func (f *fakeDocker) breakStream() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs <- errors.New("unexpected EOF")
}

func inspectFixture(id, name, status string) container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{
			ID: id, Name: "/" + name, Image: "sha256:abc", Created: "2026-11-28T10:00:00.123456789Z",
			LogPath:    "/var/lib/docker/containers/" + id + "/" + id + "-json.log",
			State:      &container.State{Status: container.ContainerState(status), Running: status == "running" || status == "paused", Paused: status == "paused", Pid: 42},
			HostConfig: &container.HostConfig{NetworkMode: "bridge", LogConfig: container.LogConfig{Type: "json-file"}},
		},
		Config: &container.Config{
			Image: "web:1.2", Env: []string{"A=1"},
			Labels:       map[string]string{LabelSwarmServiceName: "stack_web", LabelSwarmTaskName: "stack_web.3.xyz", LabelSwarmTaskID: "xyz", LabelStackNamespace: "stack"},
			ExposedPorts: nat.PortSet{"80/tcp": {}, "53/udp": {}},
		},
		NetworkSettings: &container.NetworkSettings{
			NetworkSettingsBase: container.NetworkSettingsBase{Ports: nat.PortMap{"80/tcp": {{HostIP: "0.0.0.0", HostPort: "8080"}}}},
			Networks:            map[string]*network.EndpointSettings{"bridge": {NetworkID: "n1", IPAddress: "172.17.0.2"}},
		},
	}
}

// reader takes a subscription's changes one at a time.
type reader struct {
	Subscription
	buf []Change
}

func subscribe(t *testing.T, inv *Inventory) *reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sub, err := inv.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	return &reader{Subscription: sub}
}

func next(t *testing.T, r *reader) Change {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for len(r.buf) == 0 {
		r.buf = append(r.buf, r.Pending()...)
		if len(r.buf) > 0 {
			break
		}
		select {
		case <-r.Changed():
		case <-timeout:
			t.Fatalf("no change within 5s")
		}
	}
	ch := r.buf[0]
	r.buf = r.buf[1:]
	return ch
}

func TestSnapshotThenOrderedChanges(t *testing.T) {
	fd := newFakeDocker()
	fd.set("a", "alpha", "running")
	inv := New(fd, Options{MaxBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- inv.Run(ctx) }()
	<-inv.Synced()

	sub := subscribe(t, inv)
	defer sub.Close()
	if snap := sub.Snapshot(); len(snap) != 1 || snap[0].Name != "alpha" {
		t.Fatalf("snapshot = %v, want [alpha]", snap)
	}

	// Each step changes the engine, emits the event, and checks the change
	// before the next step: events are applied with the state that inspect
	// returns when they are processed.
	steps := []struct {
		mutate func()
		id     string
		action string
		kind   ChangeKind
		name   string
	}{
		{func() { fd.set("b", "beta", "running") }, "b", "start", Added, "beta"},
		{func() {}, "a", "kill", Updated, "alpha"}, // no state change, still published
		{func() { fd.set("a", "alpha", "paused") }, "a", "pause", Updated, "alpha"},
		{func() { fd.remove("b") }, "b", "destroy", Removed, "beta"},
	}
	lastSeq := sub.Subscription.(*queue).seq
	for _, st := range steps {
		st.mutate()
		fd.emit("a", "exec_start: sh -c true") // ignored
		fd.emit(st.id, st.action)
		ch := next(t, sub)
		if ch.Kind != st.kind || ch.Action != st.action || ch.Container.Name != st.name {
			t.Fatalf("change = %v %s %s, want %v %s %s", ch.Kind, ch.Action, ch.Container.Name, st.kind, st.action, st.name)
		}
		if ch.Seq != lastSeq+1 {
			t.Fatalf("seq = %d, want %d", ch.Seq, lastSeq+1)
		}
		lastSeq = ch.Seq
	}
	if c, _ := inv.Get("a"); !c.State.Paused {
		t.Errorf("alpha not paused in inventory: %+v", c.State)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
}

func TestReconnectEmitsTheDifference(t *testing.T) {
	fd := newFakeDocker()
	fd.set("a", "alpha", "running")
	fd.set("b", "beta", "running")
	inv, sub := startInventory(t, fd)

	// Docker goes away; while it is gone, a is removed, b exits, c appears.
	fd.mu.Lock()
	fd.listErr = errors.New("connection refused")
	fd.mu.Unlock()
	fd.breakStream()
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := inv.Connected(); ok; ok, _ = inv.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("inventory still connected after the stream broke")
		}
		time.Sleep(time.Millisecond)
	}
	fd.remove("a")
	fd.set("b", "beta", "exited")
	fd.set("c", "gamma", "running")
	fd.mu.Lock()
	fd.listErr = nil
	fd.mu.Unlock()

	got := map[string]ChangeKind{}
	for range 3 {
		ch := next(t, sub)
		if ch.Action != ActionResync {
			t.Fatalf("action = %q, want resync", ch.Action)
		}
		got[ch.Container.Name] = ch.Kind
	}
	want := map[string]ChangeKind{"alpha": Removed, "beta": Updated, "gamma": Added}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: kind %v, want %v", k, got[k], v)
		}
	}
	if len(inv.List()) != 2 {
		t.Errorf("inventory has %d containers, want 2", len(inv.List()))
	}
}

func TestFromInspect(t *testing.T) {
	c := fromInspect(inspectFixture("0123456789abcdef", "web", "running"))
	if c.Name != "web" || c.ShortID() != "0123456789ab" || c.LogDriver != "json-file" {
		t.Errorf("basic fields wrong: %+v", c)
	}
	wantPorts := []Port{{ContainerPort: 53, Proto: "udp"}, {ContainerPort: 80, Proto: "tcp", HostIP: "0.0.0.0", HostPort: 8080}}
	if len(c.Ports) != 2 || c.Ports[0] != wantPorts[0] || c.Ports[1] != wantPorts[1] {
		t.Errorf("ports = %+v, want %+v", c.Ports, wantPorts)
	}
	if c.Swarm == nil || c.Swarm.ServiceName != "stack_web" || c.Swarm.Slot != 3 || c.Swarm.Stack != "stack" {
		t.Errorf("swarm = %+v", c.Swarm)
	}
	if c.Created.Nanosecond() != 123456789 {
		t.Errorf("created lost nanoseconds: %v", c.Created)
	}
	if !c.Equal(fromInspect(inspectFixture("0123456789abcdef", "web", "running"))) {
		t.Error("Equal is false for identical inspects")
	}
	if c.Equal(fromInspect(inspectFixture("0123456789abcdef", "web", "paused"))) {
		t.Error("Equal is true across a state change")
	}
}

func TestLookup(t *testing.T) {
	inv := New(newFakeDocker(), Options{})
	inv.containers["abcdef0123"] = &Container{ID: "abcdef0123", Name: "web"}
	inv.containers["abcdff0123"] = &Container{ID: "abcdff0123", Name: "db"}
	tests := []struct {
		ref, want string
	}{{"web", "abcdef0123"}, {"/db", "abcdff0123"}, {"abcdef", "abcdef0123"}, {"abcd", ""}, {"ab", ""}, {"nope", ""}}
	for _, tc := range tests {
		c, ok := inv.Lookup(tc.ref)
		got := ""
		if ok {
			got = c.ID
		}
		if got != tc.want {
			t.Errorf("Lookup(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}

func TestDieIsPublishedFromTheEventFirst(t *testing.T) {
	fd := newFakeDocker()
	fd.set("a", "alpha", "running")
	_, sub := startInventory(t, fd)

	fd.emitMsg(events.Message{Type: events.ContainerEventType, Action: "kill", TimeNano: 1,
		Actor: events.Actor{ID: "a", Attributes: map[string]string{"signal": "15"}}})
	if ch := next(t, sub); ch.Action != "kill" || ch.Attributes["signal"] != "15" {
		t.Fatalf("kill change = %s %v, want the signal attribute", ch.Action, ch.Attributes)
	}
	fd.set("a", "alpha", "exited")
	fd.emitMsg(events.Message{Type: events.ContainerEventType, Action: "die", TimeNano: time.Date(2026, 1, 1, 0, 0, 0, 5, time.UTC).UnixNano(),
		Actor: events.Actor{ID: "a", Attributes: map[string]string{"exitCode": "137"}}})
	first := next(t, sub)
	if first.Action != "die" || first.Container.State.Running || first.Container.State.ExitCode != 137 ||
		first.Container.State.FinishedAt.Nanosecond() != 5 {
		t.Fatalf("first die change = %+v, want stopped with exit code 137 from the event", first.Container.State)
	}
	second := next(t, sub)
	if second.Action != "die" || second.Container.State.Status != "exited" || second.Container.State.ExitCode != 0 {
		t.Fatalf("second die change = %+v, want the inspected state", second.Container.State)
	}
}

func TestNetworkEventsReinspectTheContainer(t *testing.T) {
	fd := newFakeDocker()
	fd.set("a", "alpha", "running")
	_, sub := startInventory(t, fd)

	fd.mu.Lock()
	in := fd.containers["a"]
	in.NetworkSettings.Networks["backend"] = &network.EndpointSettings{NetworkID: "n2", IPAddress: "10.0.9.4"}
	fd.mu.Unlock()
	fd.emitMsg(events.Message{Type: events.NetworkEventType, Action: "connect",
		Actor: events.Actor{ID: "n2", Attributes: map[string]string{"container": "a", "name": "backend"}}})
	ch := next(t, sub)
	if ch.Action != "network_connect" || len(ch.Container.Networks) != 2 || ch.Container.Networks[0].Name != "backend" {
		t.Fatalf("change = %s %+v, want network_connect with the backend network", ch.Action, ch.Container.Networks)
	}
	// Other network events are ignored.
	fd.emitMsg(events.Message{Type: events.NetworkEventType, Action: "create", Actor: events.Actor{ID: "n3"}})
	fd.emit("a", "kill")
	if ch := next(t, sub); ch.Action != "kill" {
		t.Fatalf("next change = %s, want kill (network create ignored)", ch.Action)
	}
}

// TestNetworkConnectOfAStartingContainerWaitsForStart: Docker connects a
// starting container's networks under the container's lock, so the
// inventory does not inspect (and wait) then; the start event's inspect
// brings the networks.
func TestNetworkConnectOfAStartingContainerWaitsForStart(t *testing.T) {
	fd := newFakeDocker()
	_, sub := startInventory(t, fd)

	fd.set("a", "alpha", "created")
	fd.emit("a", "create")
	if ch := next(t, sub); ch.Action != "create" || ch.Container.State.Running {
		t.Fatalf("change = %s running=%v, want create of a stopped container", ch.Action, ch.Container.State.Running)
	}
	connect := events.Message{Type: events.NetworkEventType, Action: "connect",
		Actor: events.Actor{ID: "n1", Attributes: map[string]string{"container": "a", "name": "bridge"}}}
	fd.emitMsg(connect)
	fd.set("a", "alpha", "running")
	fd.emit("a", "start")
	ch := next(t, sub)
	if ch.Action != "start" || !ch.Container.State.Running || len(ch.Container.Networks) == 0 {
		t.Fatalf("change = %s %+v, want the start with its networks (network_connect of a created container skipped)", ch.Action, ch.Container)
	}
	fd.mu.Lock()
	n := fd.inspects["a"]
	fd.mu.Unlock()
	if n != 2 {
		t.Errorf("%d inspects of a, want 2 (create and start, none for the network connect)", n)
	}
	// A running container's network connect is inspected.
	fd.emitMsg(connect)
	fd.emit("a", "kill")
	if ch := next(t, sub); ch.Action != "kill" {
		t.Fatalf("change = %s, want kill (the inspect found nothing new)", ch.Action)
	}
	fd.mu.Lock()
	n = fd.inspects["a"]
	fd.mu.Unlock()
	if n != 3 {
		t.Errorf("%d inspects of a after a running container's network connect, want 3", n)
	}
}

// startInventory runs an inventory over fd until the test ends and returns
// it with a subscription taken after the first sync.
func startInventory(t *testing.T, fd *fakeDocker) (*Inventory, *reader) {
	t.Helper()
	inv := New(fd, Options{MaxBackoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = inv.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	<-inv.Synced()
	sub := subscribe(t, inv)
	t.Cleanup(sub.Close)
	return inv, sub
}
