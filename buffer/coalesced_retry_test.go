package buffer

import (
	"errors"
	"testing"
	"time"
)

// Stats.Coalesced counts "pending items replaced before being flushed (by a
// change or an End)", and Stats' pending figures "include snapshots in flight
// or waiting to be retried". A value whose write failed transiently and that a
// newer change of its key replaced is such an item: it is never written. Every
// change accepted is then accounted for once: written, dropped, coalesced,
// discarded or still pending.
func TestCoalescedCountsFailedValuesReplacedByNewerChanges(t *testing.T) {
	h := firstWriteFails(t)
	h.block()
	h.commit("s", put("k", "v1"))
	h.advance(10 * time.Millisecond) // the write of k=v1 is under way
	if got := h.inFlight(); len(got) != 1 {
		t.Fatalf("in flight: %v", got)
	}
	h.commit("s", put("k", "v2")) // replaces v1, whose write is under way
	h.release()                   // v1's write fails: v2 supersedes it
	h.unblock()
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if got := h.st.read("s"); got["k"] != "v2" {
		t.Fatalf("stored %v", got)
	}
	st := h.b.Stats()
	if st.Coalesced != 1 {
		t.Errorf("Coalesced %d, want 1: k=v1 was replaced by k=v2 before being written", st.Coalesced)
	}
	everyChangeAccountedFor(t, st)
}

// The same with an End: the failed write's items are superseded by an End
// committed while it was under way.
func TestCoalescedCountsFailedValuesSupersededByAnEnd(t *testing.T) {
	h := firstWriteFails(t)
	h.block()
	h.commit("s", put("a", "1"), put("b", "2"))
	h.advance(10 * time.Millisecond)
	if err := h.b.End("s"); err != nil {
		t.Fatal(err)
	}
	h.release()
	h.unblock()
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	st := h.b.Stats()
	if st.Coalesced != 2 {
		t.Errorf("Coalesced %d, want 2: a and b were superseded by the End before being written", st.Coalesced)
	}
	everyChangeAccountedFor(t, st)
}

// The items of a write that fails after its session was discarded (Discard
// during the flight) are not put back: they count as discarded. They used
// to be counted nowhere.
func TestFailedItemsOfADiscardedFlightCountAsDiscarded(t *testing.T) {
	h := newHarness(t, Config{Delay: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: time.Millisecond})
	h.setFail(func(*Snapshot) error { return errors.New("unavailable") })
	h.block()
	h.commit("s", put("a", "1"), put("b", "2"))
	h.advance(10 * time.Millisecond)
	if got := h.inFlight(); len(got) != 1 {
		t.Fatalf("in flight: %v", got)
	}
	if n := h.b.Discard("s"); n != 0 {
		t.Fatalf("Discard dropped %d pending items, want 0 (both are in flight)", n)
	}
	h.release()
	h.unblock()
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	st := h.b.Stats()
	if st.Discarded != 2 {
		t.Errorf("Discarded %d, want 2: the failed write's items were discarded", st.Discarded)
	}
	everyChangeAccountedFor(t, st)
}

// everyChangeAccountedFor fails t unless every change accepted is counted
// once: written, dropped, coalesced, discarded or still pending.
func everyChangeAccountedFor(t *testing.T, st Stats) {
	t.Helper()
	if sum := st.FlushedItems + st.DroppedItems + st.Coalesced + st.Discarded + uint64(st.PendingItems); sum != st.Changes {
		t.Errorf("Changes %d, but flushed %d + dropped %d + coalesced %d + discarded %d + pending %d = %d",
			st.Changes, st.FlushedItems, st.DroppedItems, st.Coalesced, st.Discarded, st.PendingItems, sum)
	}
}

// firstWriteFails is a harness whose first write fails transiently and
// whose retries come a millisecond later.
func firstWriteFails(t *testing.T) *harness {
	h := newHarness(t, Config{Delay: 10 * time.Millisecond, RetryMin: time.Millisecond, RetryMax: time.Millisecond})
	calls := 0
	h.setFail(func(*Snapshot) error {
		calls++
		if calls == 1 {
			return errors.New("unavailable")
		}
		return nil
	})
	return h
}
