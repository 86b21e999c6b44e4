package inventorytest

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/heartwood-ops/heartwood/inventory"
)

func TestFakePublishesChangesInOrder(t *testing.T) {
	f := New(Container("a1b2c3d4e5f6a7b8", "web"))
	sub, err := f.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if snap := sub.Snapshot(); len(snap) != 1 || snap[0].Name != "web" {
		t.Fatalf("snapshot = %v, want web", snap)
	}
	db := Container("ffff0000ffff0000", "db")
	f.Set("create", db)
	stopped := Container("ffff0000ffff0000", "db")
	stopped.State = inventory.State{Status: "exited"}
	f.SetWithAttributes("die", stopped, map[string]string{"exitCode": "1"})
	if !f.Remove("a1b2c3d4e5f6a7b8") || f.Remove("a1b2c3d4e5f6a7b8") {
		t.Fatal("Remove should report the container once")
	}
	<-sub.Changed()
	got := sub.Pending()
	want := []struct {
		kind   inventory.ChangeKind
		action string
		id     string
	}{
		{inventory.Added, "create", db.ID},
		{inventory.Updated, "die", db.ID},
		{inventory.Removed, "destroy", "a1b2c3d4e5f6a7b8"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d changes, want %d", len(got), len(want))
	}
	for i, w := range want {
		ch := got[i]
		if ch.Kind != w.kind || ch.Action != w.action || ch.Container.ID != w.id || ch.Seq != uint64(i+1) {
			t.Errorf("change %d = %s %s %s seq %d, want %s %s %s seq %d", i, ch.Kind, ch.Action, ch.Container.ID, ch.Seq, w.kind, w.action, w.id, i+1)
		}
	}
	if got[1].Previous != db || got[1].Attributes["exitCode"] != "1" {
		t.Errorf("update carries previous %v and attributes %v", got[1].Previous, got[1].Attributes)
	}
	if _, ok := f.Get(db.ID); !ok {
		t.Error("Get(db) = not found")
	}
	if c, ok := f.Lookup("ffff"); !ok || c.Name != "db" {
		t.Errorf("Lookup(prefix) = %v, %t", c, ok)
	}
	if l := f.List(); len(l) != 1 || l[0].Name != "db" {
		t.Errorf("List() = %v, want only db", l)
	}
}

func TestUnsyncedFakeWaitsForSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := NewUnsynced(Container("a1b2c3d4", "web"))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := f.Subscribe(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe before Sync = %v, want the context's deadline", err)
		}
		got := make(chan inventory.Subscription)
		go func() {
			sub, err := f.Subscribe(context.Background())
			if err != nil {
				t.Error(err)
			}
			got <- sub
		}()
		synctest.Wait()
		select {
		case <-got:
			t.Fatal("Subscribe returned before Sync")
		default:
		}
		f.Sync()
		f.Sync() // a second Sync is harmless
		sub := <-got
		defer sub.Close()
		if len(sub.Snapshot()) != 1 {
			t.Errorf("snapshot = %v", sub.Snapshot())
		}
	})
}

func TestZeroFakeIsSyncedAndEmpty(t *testing.T) {
	var f Fake
	sub, err := f.Subscribe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if len(sub.Snapshot()) != 0 || len(f.List()) != 0 {
		t.Error("the zero Fake is not empty")
	}
	if _, ok := f.Lookup("anything"); ok {
		t.Error("Lookup on the zero Fake found something")
	}
}
