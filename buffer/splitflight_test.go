package buffer

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A change committed during a session's write waits for every part of it,
// so the window bound must judge a split write by its whole flight. It timed
// each part alone: two parts of 120 ms counted as 120 ms flights, under a
// 350 ms bound with a 100 ms delay a change was accepted, and landed some
// 480 ms after its commit. One 240 ms call is refused
// (TestFlightsLongerThanTheDelayCountTwice); two 120 ms parts now are too.
// Found by review.
func TestASplitWriteIsOneFlightForTheWindowBound(t *testing.T) {
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond, MaxBatchBytes: 1 << 10})
	v := strings.Repeat("1", 600)
	part := func() { h.step(10*time.Millisecond, 12); h.release() } // a part takes 120 ms
	h.block()
	h.commit("w", put("a", v), put("b", v)) // two parts
	h.step(10*time.Millisecond, 10)         // t=100: part 1 under way
	part()
	part() // t=340: landed, one 240 ms flight
	h.unblock()
	h.step(10*time.Millisecond, 2)
	if err := h.b.Commit("s", put("k", "1")); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("commit after a 240 ms write in two 120 ms parts, 100 ms delay, 350 ms bound: %v, want ErrOverloaded as after one 240 ms call", err)
	}
}

// While part 2 of a split snapshot is under way, part 1 has been written:
// its items are in FlushedItems and must no longer be in PendingItems (nor
// their bytes held against MaxPendingBytes). They were counted in both
// until the last part landed. Found by review.
func TestAWrittenPartOfASplitSnapshotIsNoLongerPending(t *testing.T) {
	h := newHarness(t, Config{Delay: 10 * time.Millisecond, MaxBatchBytes: 1 << 10})
	v := strings.Repeat("x", 600)
	h.commit("s", put("a", v), put("b", v), put("c", v)) // three parts
	held := h.b.Stats().PendingBytes
	h.block()
	h.advance(20 * time.Millisecond) // part 1 under way
	h.release()                      // part 1 written; part 2 under way
	st := h.b.Stats()
	everyChangeAccountedFor(t, st)
	if st.PendingItems != 2 || st.PendingBytes >= held {
		t.Errorf("part 1 of 3 written: pending %d items, %d bytes (of %d); want 2 items and fewer bytes", st.PendingItems, st.PendingBytes, held)
	}
	h.unblock()
	h.settle()
	if st := h.b.Stats(); st.PendingItems != 0 || st.PendingBytes != 0 {
		t.Errorf("all parts written: pending %d items, %d bytes; want none", st.PendingItems, st.PendingBytes)
	}
}

// Bad input is named before a refusal for load: while the family's window
// bound refuses commits, a change with an empty key is still ErrInvalid, not
// ErrOverloaded, which a host would retry for good. Found by review.
func TestBadInputIsNamedWhileTheWindowRefuses(t *testing.T) {
	badID := fmt.Errorf("%w: session ID %q refused", ErrInvalid, "bad")
	h := newHarness(t, Config{Delay: 100 * time.Millisecond, MaxWindow: 350 * time.Millisecond,
		CheckSession: func(s string) error {
			if s == "bad" {
				return badID
			}
			return nil
		}})
	h.b.flew(0, h.clk.Now().Add(-200*time.Millisecond), 0) // one 200 ms call: overloaded
	h.step(10*time.Millisecond, 2)
	if err := h.b.Commit("s1", Change{Key: "k", Value: []byte("1")}); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("the window bound does not refuse: %v; the test proves nothing", err)
	}
	if err := h.b.Commit("s1", Change{Key: "", Value: []byte("1")}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an empty key while the window refuses: %v, want ErrInvalid", err)
	}
	if err := h.b.End("bad"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("End of a session ID CheckSession refuses, while the window refuses: %v, want ErrInvalid", err)
	}
}
