package adapter

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
)

// An EndShared followed by a delete of a key, written in two parts (the
// session is larger than HOLDOVER_MAX_BATCH_BYTES): part 1 carries the End,
// part 2 the delete. The landing of part 1 marked the delete as written too,
// so when part 2 failed and waited for its retry (at a later timestamp), a
// re-read showing another node's write of the key, which the retried delete
// overwrites, put that write in this node's view and reported it to
// OnSharedChange. A delete must shield its key until its own part lands.
func TestAnEndSharedInPartsShieldsTheDeletesOfItsLaterParts(t *testing.T) {
	const s = "settings:split"
	var (
		a       *Adapter
		seen    []SharedChange
		stalled bool
	)
	big := make([]byte, 3<<10)
	a = sharedBench(t, 3<<10+48, func(snap *buffer.Snapshot, ts int64) error {
		if snap.Part != 2 || stalled {
			return nil
		}
		stalled = true
		if len(snap.Items) != 1 || snap.Items[0].Key != "z" || !snap.Items[0].Delete {
			t.Errorf("part 2 holds %+v, want the delete of z: the test proves nothing", snap.Items)
			return nil
		}
		// Part 1 has landed; part 2 fails and will be retried. Meanwhile
		// another node writes z (after part 1's timestamp, before the
		// retry's), and this node re-reads the family.
		v := a.shared.views["settings"]
		read := []store.SharedItem{
			{Session: s, Key: "b", Value: big, WriteTime: ts + 1},
			{Session: s, Key: "z", Value: []byte("from-b"), WriteTime: ts + 50},
		}
		a.shared.mu.Lock()
		seen = v.merge(read, time.Now())
		a.shared.mu.Unlock()
		if m, _ := a.Shared(s); m["z"] != nil {
			t.Errorf("while this node's delete of z waits for its retry, its view shows z = %q", m["z"])
		}
		return errors.New("timeout")
	})

	if err := a.CommitShared(s, put("a", "1"), put("z", "2")); err != nil {
		t.Fatal(err)
	}
	if err := a.sharedBuf.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := a.EndShared(s); err != nil {
		t.Fatal(err)
	}
	if err := a.CommitShared(s, Change{Key: "b", Value: big}, Change{Key: "z", Delete: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.sharedBuf.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !stalled {
		t.Fatal("the End was written in one part: the test proves nothing")
	}
	for _, c := range seen {
		if c.Key == "z" && !c.Deleted {
			t.Errorf("the re-read reported %+v, which this node's pending delete overwrites", c)
		}
	}
}
