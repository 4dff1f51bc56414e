package buffer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// A timing scenario is a list of steps run against a fake clock; "calls" steps
// assert the FlushFunc calls made so far (after the buffer settled).
type tstep func(t *testing.T, h *harness)

func commitAt(session string, keys ...string) tstep {
	return func(t *testing.T, h *harness) {
		for _, k := range keys {
			h.commit(session, put(k, "v"))
		}
		h.settle()
	}
}

func wait(d time.Duration) tstep { return func(t *testing.T, h *harness) { h.advance(d) } }

// calls asserts the sessions of all calls so far ("a b a"), in any order: concurrent
// flushes start in no fixed order. Order in time is asserted by steps in between.
func calls(want string) tstep {
	return func(t *testing.T, h *harness) {
		t.Helper()
		h.mu.Lock()
		var got []string
		for _, c := range h.calls {
			got = append(got, c.Session)
		}
		h.mu.Unlock()
		slices.Sort(got)
		w := strings.Fields(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Fatalf("at +%v: calls [%s], want [%s]", h.clk.Now().Sub(h.b.base), strings.Join(got, " "), want)
		}
	}
}

func flying(want string) tstep {
	return func(t *testing.T, h *harness) {
		t.Helper()
		if got := strings.Join(h.inFlight(), " "); got != want {
			t.Fatalf("in flight [%s], want [%s]", got, want)
		}
	}
}

func nflying(n int) tstep {
	return func(t *testing.T, h *harness) {
		t.Helper()
		if got := h.inFlight(); len(got) != n {
			t.Fatalf("in flight %v, want %d sessions", got, n)
		}
	}
}

var (
	blockAll   tstep = func(t *testing.T, h *harness) { h.block() }
	releaseOne tstep = func(t *testing.T, h *harness) { h.release() }
	pause      tstep = func(t *testing.T, h *harness) { h.b.Pause(); h.settle() }
	resume     tstep = func(t *testing.T, h *harness) { h.b.Resume(); h.settle() }
	failAll    tstep = func(t *testing.T, h *harness) { h.setFail(func(*Snapshot) error { return errors.New("unavailable") }) }
	succeed    tstep = func(t *testing.T, h *harness) { h.setFail(nil) }
)

func TestTiming(t *testing.T) {
	const ms = time.Millisecond
	// Delay is 100ms and the scheduler may start up to 1ms early.
	cases := []struct {
		name  string
		cfg   Config
		steps []tstep
	}{
		{"flush after Delay, not before", Config{}, []tstep{
			commitAt("a", "k"), wait(98 * ms), calls(""), wait(1 * ms), calls("a"),
		}},
		{"delay counts from the first change", Config{}, []tstep{
			commitAt("a", "k"), wait(50 * ms), commitAt("a", "k", "j"), wait(48 * ms), calls(""), wait(2 * ms), calls("a"),
		}},
		{"hot session does not starve", Config{}, append(
			repeat(9, commitAt("a", "k"), wait(10*ms)), // 90ms of commits
			commitAt("a", "k"), wait(8*ms), calls(""), wait(2*ms), calls("a"),
			commitAt("a", "k"), wait(10*ms), calls("a"))},
		{"sessions flush in due order", Config{}, []tstep{
			commitAt("a", "k"), wait(10 * ms), commitAt("b", "k"), wait(10 * ms), commitAt("c", "k"),
			wait(80 * ms), calls("a"), wait(10 * ms), calls("a b"), wait(10 * ms), calls("a b c"),
		}},
		{"MaxSessionItems flushes early", Config{MaxSessionItems: 3}, []tstep{
			commitAt("a", "k1", "k2"), calls(""), commitAt("a", "k2"), calls(""), commitAt("a", "k3"), calls("a"),
		}},
		{"MaxSessionBytes flushes early", Config{MaxSessionBytes: 1 << 10}, []tstep{
			func(t *testing.T, h *harness) { h.commit("a", put("k", strings.Repeat("x", 900))); h.settle() },
			calls(""),
			func(t *testing.T, h *harness) { h.commit("a", put("j", strings.Repeat("x", 100))); h.settle() },
			calls("a"),
		}},
		{"cap pressure flushes everything", Config{MaxPendingBytes: 64 << 10}, []tstep{
			commitAt("a", "k"),
			func(t *testing.T, h *harness) { h.commit("b", put("k", strings.Repeat("x", 40<<10))); h.settle() },
			calls("a b"),
		}},
		{"at most Concurrency in flight", Config{Concurrency: 2}, []tstep{
			blockAll, commitAt("a", "k"), wait(ms), commitAt("b", "k"), wait(ms), commitAt("c", "k"), wait(100 * ms),
			nflying(2), calls("a b"), releaseOne, nflying(2), calls("a b c"), releaseOne, releaseOne, nflying(0),
		}},
		{"changes during a flight wait Delay from the first of them", Config{}, []tstep{
			blockAll, commitAt("a", "k"), wait(100 * ms), calls("a"),
			wait(20 * ms), commitAt("a", "k"), wait(30 * ms), releaseOne, // lands at +150
			calls("a"), wait(68 * ms), calls("a"), wait(2 * ms), calls("a a"), // +220
		}},
		{"overdue changes flush when the flight lands", Config{}, []tstep{
			blockAll, commitAt("a", "k"), wait(100 * ms), wait(20 * ms), commitAt("a", "k"),
			wait(180 * ms), calls("a"), flying("a"), releaseOne, calls("a a"),
		}},
		{"size limit during a flight waits for the landing", Config{MaxSessionItems: 2}, []tstep{
			blockAll, commitAt("a", "k1", "k2"), calls("a"), commitAt("a", "k1", "k2"), calls("a"),
			releaseOne, calls("a a"),
		}},
		{"backoff ignores size triggers", Config{RetryMin: 40 * ms, RetryMax: 40 * ms, MaxSessionItems: 2}, []tstep{
			failAll, commitAt("a", "k1", "k2"), calls("a"), commitAt("a", "k3", "k4", "k5"), calls("a"),
			wait(40 * ms), calls("a a"),
		}},
		{"pause holds flushes, resume releases overdue ones", Config{}, []tstep{
			pause, commitAt("a", "k"), wait(300 * ms), calls(""), resume, calls("a"),
		}},
		{"pause lets the flight in progress finish", Config{}, []tstep{
			blockAll, commitAt("a", "k"), commitAt("b", "k"), wait(100 * ms), pause, flying("a b"),
			commitAt("a", "k"), releaseOne, releaseOne, wait(time.Second), calls("a b"), resume, calls("a b a"),
		}},
		{"flush starts everything now", Config{}, []tstep{
			commitAt("a", "k"), commitAt("b", "k"), wait(10 * ms),
			func(t *testing.T, h *harness) {
				if err := h.b.Flush(context.Background()); err != nil {
					t.Fatal(err)
				}
			},
			calls("a b"),
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.cfg)
			for _, st := range tc.steps {
				st(t, h)
			}
		})
	}
}

// TestBackoff: transient errors are retried after a capped exponential backoff with
// jitter: the n-th retry waits between half and all of min(RetryMin<<(n-1), RetryMax).
func TestBackoff(t *testing.T) {
	const ms = time.Millisecond
	h := newHarness(t, Config{RetryMin: 40 * ms, RetryMax: 200 * ms})
	failAll(t, h)
	h.commit("a", put("k", "v"))
	for range 2000 {
		h.advance(ms)
	}
	h.mu.Lock()
	times := slices.Clone(h.times)
	h.mu.Unlock()
	if len(times) < 8 {
		t.Fatalf("only %d attempts in 2s", len(times))
	}
	for i := 1; i < len(times); i++ {
		d := min(40*ms<<(i-1), 200*ms)
		if gap := times[i].Sub(times[i-1]); gap < d/2-ms || gap > d {
			t.Errorf("retry %d after %v, want between %v and %v", i, gap, d/2, d)
		}
	}
	succeed(t, h)
	h.advance(200 * ms)
	if st := h.b.Stats(); st.PendingSessions != 0 || st.Retries != uint64(len(times)) {
		t.Errorf("stats %+v", st)
	}
}

func repeat(n int, steps ...tstep) []tstep {
	var out []tstep
	for range n {
		out = append(out, steps...)
	}
	return out
}

func TestOldestPendingAge(t *testing.T) {
	h := newHarness(t, Config{})
	h.block()
	if age := h.b.Stats().OldestPendingAge; age != 0 {
		t.Fatalf("age %v with nothing pending", age)
	}
	h.commit("a", put("k", "v"))
	h.advance(30 * time.Millisecond)
	h.commit("b", put("k", "v"))
	h.advance(70 * time.Millisecond) // a is flying now
	if got := h.inFlight(); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("in flight %v", got)
	}
	h.commit("a", put("k", "w"))
	h.advance(10 * time.Millisecond)
	if age := h.b.Stats().OldestPendingAge; age != 110*time.Millisecond {
		t.Errorf("age %v while a flies, want 110ms", age)
	}
	h.release() // a lands; its newest change is 10ms old, b's 80ms
	if age := h.b.Stats().OldestPendingAge; age != 80*time.Millisecond {
		t.Errorf("age %v after a landed, want 80ms", age)
	}
	h.unblock()
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if st := h.b.Stats(); st.OldestPendingAge != 0 || st.PendingSessions != 0 {
		t.Errorf("after flush %+v", st)
	}
}

func TestFlushEvents(t *testing.T) {
	var evs []FlushEvent
	clk := newFakeClock()
	b, err := New(Config{Clock: clk, OnFlush: func(e FlushEvent) { evs = append(evs, e) }},
		func(ctx context.Context, s *Snapshot) error { clk.Advance(3 * time.Millisecond); return nil })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	b.Commit("s", put("a", "12345"))
	clk.Advance(10 * time.Millisecond)
	taken := clk.Now() // the snapshot is taken now; the flush advances the clock
	if err := b.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := FlushEvent{Session: "s", Part: 1, Parts: 1, Items: 1, Bytes: entryBytes(1, 5), Attempt: 1,
		Taken: taken, Duration: 3 * time.Millisecond, Lag: 13 * time.Millisecond}
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	evs[0].Seq = 0
	if fmt.Sprint(evs[0]) != fmt.Sprint(want) {
		t.Errorf("event %+v, want %+v", evs[0], want)
	}
}
