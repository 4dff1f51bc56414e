package buffer

import (
	"fmt"
	"testing"
	"time"
)

// Stats is a point-in-time view: a flight that lands while Stats visits the
// shards counts either as flushed or as pending, never as neither. Stats read
// the flush counters before the shards, and a flight landing in between was in
// neither figure, so Changes came out above flushed + pending + ... for that
// call. Found by review.
func TestStatsIsOnePointInTimeWhileAFlightLands(t *testing.T) {
	h := newHarness(t, Config{Delay: 10 * time.Millisecond})
	id := ""
	for i := 0; id == ""; i++ {
		if c := fmt.Sprint("s", i); h.b.shardIndex(c) != 0 {
			id = c
		}
	}
	h.block()
	h.commit(id, put("a", "1"), put("b", "2"))
	h.advance(10 * time.Millisecond)
	if got := h.inFlight(); len(got) != 1 {
		t.Fatalf("in flight: %v", got)
	}

	// Stats waits at shard 0, past whatever it reads before the shards.
	sh0 := &h.b.shards[0]
	sh0.mu.Lock()
	stats := make(chan Stats, 1)
	go func() { stats <- h.b.Stats() }()
	time.Sleep(20 * time.Millisecond)

	// The flight lands meanwhile (its session's shard is not shard 0).
	h.mu.Lock()
	gate := h.gate
	h.waiting--
	h.mu.Unlock()
	gate <- struct{}{}
	for deadline := time.Now().Add(5 * time.Second); h.b.Pending(id); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			sh0.mu.Unlock()
			t.Fatal("the flight did not land")
		}
	}
	sh0.mu.Unlock()

	st := <-stats
	everyChangeAccountedFor(t, st)
	if st.Flushes != 0 && st.FlushedItems != 2 || st.Flushes == 0 && st.PendingItems != 2 {
		t.Errorf("flushes %d (%d items), pending %d items: want the write either landed or pending", st.Flushes, st.FlushedItems, st.PendingItems)
	}
}
