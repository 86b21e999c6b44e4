package inventory

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func change(id string) Change {
	return Change{Kind: Added, Action: "create", Container: &Container{ID: id, Name: id}}
}

func TestBroadcasterOrderAndSnapshots(t *testing.T) {
	var b Broadcaster
	early := b.Subscribe(nil)
	b.Publish(change("a"))
	late := b.Subscribe([]*Container{{ID: "a"}})
	for _, id := range []string{"b", "c"} {
		b.Publish(change(id))
	}
	if got := b.Seq(); got != 3 {
		t.Fatalf("Seq() = %d, want 3", got)
	}
	tests := []struct {
		name    string
		sub     Subscription
		wantIDs []string
		wantSeq []uint64
	}{
		{"subscribed before everything", early, []string{"a", "b", "c"}, []uint64{1, 2, 3}},
		{"subscribed after the first change", late, []string{"b", "c"}, []uint64{2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			select {
			case <-tc.sub.Changed():
			default:
				t.Fatal("Changed not signalled")
			}
			got := tc.sub.Pending()
			if len(got) != len(tc.wantIDs) {
				t.Fatalf("Pending() has %d changes, want %d", len(got), len(tc.wantIDs))
			}
			for i, ch := range got {
				if ch.Container.ID != tc.wantIDs[i] || ch.Seq != tc.wantSeq[i] || ch.Time.IsZero() {
					t.Errorf("change %d = %s seq %d time %v, want %s seq %d with a time", i, ch.Container.ID, ch.Seq, ch.Time, tc.wantIDs[i], tc.wantSeq[i])
				}
			}
			if again := tc.sub.Pending(); len(again) != 0 {
				t.Errorf("Pending() again = %d changes, want none", len(again))
			}
		})
	}
	if n := len(late.Snapshot()); n != 1 {
		t.Errorf("late snapshot has %d containers, want 1", n)
	}
}

func TestBroadcasterQueuesAreUnboundedAndIndependent(t *testing.T) {
	var b Broadcaster
	slow := b.Subscribe(nil)
	fast := b.Subscribe(nil)
	const n = 10000
	for i := range n {
		b.Publish(change(string(rune('a' + i%26))))
		if i%100 == 0 {
			fast.Pending()
		}
	}
	if subs, depth := b.Stats(); subs != 2 || depth != n {
		t.Errorf("Stats() = %d subscribers, depth %d; want 2, %d", subs, depth, n)
	}
	got := slow.Pending()
	if len(got) != n {
		t.Fatalf("slow subscriber got %d changes, want %d", len(got), n)
	}
	for i, ch := range got {
		if ch.Seq != uint64(i+1) {
			t.Fatalf("change %d has seq %d, want %d", i, ch.Seq, i+1)
		}
	}
}

func TestBroadcasterClose(t *testing.T) {
	var b Broadcaster
	sub := b.Subscribe(nil)
	other := b.Subscribe(nil)
	b.Publish(change("a"))
	sub.Close()
	b.Publish(change("b"))
	if got := sub.Pending(); len(got) != 0 {
		t.Errorf("Pending() after Close = %d changes, want none", len(got))
	}
	if subs, _ := b.Stats(); subs != 1 {
		t.Errorf("Stats() subscribers after Close = %d, want 1", subs)
	}
	if got := other.Pending(); len(got) != 2 {
		t.Errorf("the other subscription got %d changes, want 2", len(got))
	}
}

func TestSubscribeWaitsForTheFirstSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fd := newFakeDocker()
		fd.set("a", "web", "running")
		fd.listErr = errors.New("engine starting")
		inv := New(fd, Options{MaxBackoff: time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = inv.Run(ctx) }()

		// Subscribe honours its context while no sync has happened.
		short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
		defer cancelShort()
		if _, err := inv.Subscribe(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe before the first sync = %v, want the context's deadline", err)
		}

		got := make(chan Subscription)
		go func() {
			sub, err := inv.Subscribe(ctx)
			if err != nil {
				t.Error(err)
			}
			got <- sub
		}()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("Subscribe returned before the first sync")
		default:
		}
		fd.mu.Lock()
		fd.listErr = nil
		fd.mu.Unlock()
		sub := <-got
		if snap := sub.Snapshot(); len(snap) != 1 || snap[0].Name != "web" {
			t.Errorf("snapshot after the first sync = %v, want web", snap)
		}
		sub.Close()
		cancel()
		<-done
	})
}
