package buffer

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("zero Config: %v", err)
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig: %v", err)
	}
	bad := Config{
		Delay:           time.Microsecond,
		MaxPendingBytes: 1 << 10,
		MaxSessionItems: -1,
		MaxSessionBytes: 10,
		MaxBatchBytes:   2 << 30,
		Concurrency:     5000,
		RetryMin:        time.Second,
		RetryMax:        2 * time.Hour,
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"Config.Delay is 1µs; must be between 1ms and 1h0m0s",
		"Config.MaxPendingBytes is 1024; must be between 65536 and",
		"Config.MaxSessionItems is -1; must be between 1 and 1048576",
		"Config.MaxSessionBytes is 10; must be between 1024 and",
		"Config.MaxBatchBytes is 2147483648; must be between 1024 and 1073741824",
		"Config.Concurrency is 5000; must be between 1 and 4096",
		"Config.RetryMax is 2h0m0s; must be between 1s and 1h0m0s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if err := (Config{RetryMin: time.Second, RetryMax: time.Millisecond}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "RetryMin") {
		t.Errorf("RetryMin > RetryMax: %v", err)
	}
	if _, err := New(bad, func(context.Context, *Snapshot) error { return nil }); err == nil {
		t.Error("New accepted a bad Config")
	}
	if _, err := New(Config{}, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("New(nil flush): %v", err)
	}
	if c := (Config{RetryMax: 10 * time.Millisecond}).withDefaults(); c.RetryMin != 10*time.Millisecond {
		t.Errorf("RetryMin default above RetryMax: %v", c.RetryMin)
	}
}

func TestBufferFull(t *testing.T) {
	h := newHarness(t, Config{MaxPendingBytes: 64 << 10, MaxSessionBytes: 64 << 10})
	h.b.Pause() // no pressure flushes: fill it up
	val := strings.Repeat("x", 1000)
	var i int
	for ; ; i++ {
		err := h.b.Commit("s", put(fmt.Sprint(i), val))
		if errors.Is(err, ErrBufferFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	st := h.b.Stats()
	if st.Refusals != 1 || st.PendingBytes > 64<<10 || st.PendingBytes+1000+48+4 <= 64<<10 {
		t.Errorf("at the cap: %+v", st)
	}
	// A transaction that would cross the cap is refused whole.
	if err := h.b.Commit("s", put("0", "y"), put("new", val)); !errors.Is(err, ErrBufferFull) {
		t.Errorf("crossing transaction: %v", err)
	}
	for j := 0; ; j++ { // fill the rest with small items
		if err := h.b.Commit("s", put(fmt.Sprint("small", j), "1")); err != nil {
			break
		}
	}
	if err := h.b.End("other"); !errors.Is(err, ErrBufferFull) {
		t.Errorf("End of a new session at the cap: %v", err)
	}
	// Commits that do not grow the buffer are accepted at the cap.
	if err := h.b.Commit("s", put("0", strings.Repeat("z", 1000))); err != nil {
		t.Errorf("same-size rewrite at the cap: %v", err)
	}
	if err := h.b.Commit("s", put("1", "short"), del("2")); err != nil {
		t.Errorf("shrinking rewrite at the cap: %v", err)
	}
	if err := h.b.End("s"); err != nil {
		t.Errorf("End at the cap: %v", err)
	}
	h.b.Resume()
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if err := h.b.Commit("s", put("new", val)); err != nil {
		t.Errorf("after the flush: %v", err)
	}
	if st := h.b.Stats(); st.Refusals != 4 {
		t.Errorf("refusals %d, want 4", st.Refusals)
	}
}

func TestSplit(t *testing.T) {
	h := newHarness(t, Config{MaxBatchBytes: 1 << 10, MaxSessionItems: 1000})
	big := strings.Repeat("x", 1<<10/2-10-1-entryOverhead) // items of 502 bytes: 2 per part
	h.commit("s", put("a", big), put("b", big), put("c", big), put("d", big), put("e", "1"))
	h.commit("t", put("a", "1"))
	if err := h.b.End("s"); err != nil {
		t.Fatal(err)
	}
	h.commit("s", put("a", big), put("b", big), put("c", big), put("d", big), put("e", "1"))
	h.commit("x", Change{Key: "huge", Value: make([]byte, 5000)})
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	var got []string
	seqs := map[string]uint64{}
	for i := range h.ncalls() {
		c := h.call(i)
		got = append(got, fmt.Sprintf("%s %d/%d %d ended=%v", c.Session, c.Part, c.Parts, len(c.Items), c.Ended))
		if c.Part > 1 && c.Seq != seqs[c.Session] {
			t.Errorf("part %d of %s has Seq %d, part 1 had %d", c.Part, c.Session, c.Seq, seqs[c.Session])
		}
		seqs[c.Session] = c.Seq
	}
	// {a b} {c d} {e}; x's single item exceeds the limit and forms its own part.
	want := "s 1/3 2 ended=true|s 2/3 2 ended=false|s 3/3 1 ended=false|t 1/1 1 ended=false|x 1/1 1 ended=false"
	if g := strings.Join(sortedStrings(got), "|"); g != want {
		t.Errorf("calls\n%s\nwant\n%s", g, want)
	}
	if st := h.b.Stats(); st.Splits != 1 || st.Flushes != 5 || st.FlushedItems != 7 {
		t.Errorf("stats %+v", st)
	}
	if got := h.st.read("s"); len(got) != 5 || got["e"] != "1" {
		t.Errorf("store %v", got)
	}
}

// TestSplitPartialFailure: when part 2 fails transiently, the retry carries the
// unwritten parts only, without Ended (part 1 wrote the partition delete).
func TestSplitPartialFailure(t *testing.T) {
	h := newHarness(t, Config{MaxBatchBytes: 1 << 10})
	big := strings.Repeat("x", 1<<10/2-10-1-entryOverhead)
	h.commit("s", put("old", "1"))
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if err := h.b.End("s"); err != nil {
		t.Fatal(err)
	}
	h.commit("s", put("a", big), put("b", big), put("c", big), put("d", big))
	n := 0
	h.setFail(func(s *Snapshot) error {
		if n++; n == 2 {
			return errors.New("timeout")
		}
		return nil
	})
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 1; i < h.ncalls(); i++ {
		got = append(got, describeShape(h.call(i)))
	}
	if g := strings.Join(got, "|"); g != "E a b 1/2|c d 2/2|c d 1/1" {
		t.Errorf("calls %s", g)
	}
	if got := h.st.read("s"); len(got) != 4 || got["old"] != "" {
		t.Errorf("store %v", got)
	}
}

// TestSplitPermanentFailureDropsLaterParts: when part 1 of 3 fails permanently,
// parts 2 and 3 are never written (they would persist a state missing the keys of
// part 1): each is dropped, reported to OnDrop with an error that names the failed
// part and wraps its error, and counted. With an End in part 1 the End is dropped
// with it: the partition keeps its state from before the End. Either way the
// session's later commits flush as usual.
func TestSplitPermanentFailureDropsLaterParts(t *testing.T) {
	for _, ended := range []bool{false, true} {
		t.Run(fmt.Sprintf("ended=%v", ended), func(t *testing.T) {
			h := newHarness(t, Config{MaxBatchBytes: 1 << 10})
			big := strings.Repeat("x", 1<<10/2-10-1-entryOverhead) // 2 per part
			h.commit("s", put("old", "1"))
			if err := h.flushAll(); err != nil {
				t.Fatal(err)
			}
			if ended {
				if err := h.b.End("s"); err != nil {
					t.Fatal(err)
				}
			}
			h.commit("s", put("a", big), put("b", big), put("c", big), put("d", big), put("e", "1"))
			refused := errors.New("value refused")
			h.setFail(func(s *Snapshot) error {
				if s.Part == 1 {
					return Permanent(refused)
				}
				return nil
			})
			if err := h.flushAll(); err != nil {
				t.Fatal(err)
			}
			var got []string
			for i := 1; i < h.ncalls(); i++ {
				got = append(got, describeShape(h.call(i)))
			}
			want := "a b 1/3"
			if ended {
				want = "E " + want
			}
			if g := strings.Join(got, "|"); g != want {
				t.Errorf("calls %q, want %q: parts after a permanent failure were written", g, want)
			}
			h.mu.Lock()
			onDrop, errs := strings.Join(h.onDrop, " "), h.dropErrs
			h.mu.Unlock()
			if onDrop != "s:2 s:2 s:1" {
				t.Errorf("OnDrop calls %q, want \"s:2 s:2 s:1\"", onDrop)
			}
			for i, err := range errs {
				if !errors.Is(err, refused) || !IsPermanent(err) {
					t.Errorf("drop %d: %v; want the permanent error of part 1", i+1, err)
				}
				if later := errors.Is(err, ErrEarlierPartFailed); later != (i > 0) || later && !strings.Contains(err.Error(), "part 1 of 3") {
					t.Errorf("drop %d: %v; parts 2 and 3 should say that part 1 of 3 failed", i+1, err)
				}
			}
			if st := h.b.Stats(); st.Splits != 1 || st.Drops != 3 || st.DroppedItems != 5 || st.Retries != 0 || st.Flushes != 1 {
				t.Errorf("stats %+v", st)
			}
			// Nothing of the snapshot was written, the End neither: "old" stays.
			if got := h.st.read("s"); len(got) != 1 || got["old"] != "1" {
				t.Errorf("store holds keys %v, want old=1 only", slices.Sorted(maps.Keys(got)))
			}
			h.setFail(nil)
			h.commit("s", put("f", "2"))
			if err := h.flushAll(); err != nil {
				t.Fatal(err)
			}
			if got := h.st.read("s"); len(got) != 2 || got["old"] != "1" || got["f"] != "2" {
				t.Errorf("after a later commit: store holds keys %v, want old=1 f=2", slices.Sorted(maps.Keys(got)))
			}
			if g := describeShape(h.call(h.ncalls() - 1)); g != "f 1/1" || h.b.Pending("s") {
				t.Errorf("later flush %q, pending %v", g, h.b.Pending("s"))
			}
		})
	}
}

func describeShape(s *Snapshot) string {
	var b strings.Builder
	if s.Ended {
		b.WriteString("E ")
	}
	for _, it := range s.Items {
		b.WriteString(it.Key + " ")
	}
	fmt.Fprintf(&b, "%d/%d", s.Part, s.Parts)
	return b.String()
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func TestDiscard(t *testing.T) {
	h := newHarness(t, Config{})
	h.commit("a", put("k1", "1"), put("k2", "2"))
	h.commit("b", put("k1", "1"))
	if n := h.b.Discard("a", "nope"); n != 2 {
		t.Errorf("Discard returned %d, want 2", n)
	}
	if h.b.Pending("a") || !h.b.Pending("b") {
		t.Error("Pending after Discard")
	}
	// Discard during a flight: the flight is neither retried nor put back.
	h.block()
	h.setFail(func(*Snapshot) error { return errors.New("timeout") })
	h.advance(100 * time.Millisecond) // b flies
	h.commit("b", put("k2", "2"))
	flushed := make(chan error, 1)
	go func() { flushed <- h.b.Flush(context.Background()) }()
	waitFor(t, func() bool { // Flush registered with b
		sh := h.b.shardOf("b")
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return len(sh.sessions["b"].waits) > 0
	})
	if n := h.b.Discard("b"); n != 1 {
		t.Errorf("Discard of flying session returned %d, want 1", n)
	}
	if err := <-flushed; err != nil {
		t.Errorf("Flush waiting on a discarded session: %v", err)
	}
	h.unblock()
	h.advance(10 * time.Second)
	st := h.b.Stats()
	// Discarded: a's 2 items, b's pending k2, and b's k1, whose write failed
	// after the Discard: every change is accounted for.
	if h.ncalls() != 1 || st.PendingSessions != 0 || st.PendingBytes != 0 || st.Discarded != 4 || st.Changes != 4 {
		t.Errorf("calls %d, stats %+v", h.ncalls(), st)
	}
}

// waitFor polls cond until it holds (or fails the test after 10s).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(100 * time.Microsecond)
	}
}

func TestClose(t *testing.T) {
	h := newHarness(t, Config{})
	h.commit("a", put("k", "1"))
	h.commit("b", put("k", "1"))
	r, err := h.b.Close(context.Background())
	if err != nil || len(r.Sessions) != 0 {
		t.Fatalf("Close: %v %+v", err, r)
	}
	if h.ncalls() != 2 {
		t.Errorf("Close flushed %d sessions, want 2", h.ncalls())
	}
	if err := h.b.Commit("a", put("k", "2")); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close: %v", err)
	}
	if err := h.b.End("a"); !errors.Is(err, ErrClosed) {
		t.Errorf("End after Close: %v", err)
	}
	if r2, err2 := h.b.Close(context.Background()); err2 != nil || len(r2.Sessions) != 0 {
		t.Errorf("second Close: %v %+v", err2, r2)
	}
	if err := h.b.Flush(context.Background()); err != nil {
		t.Errorf("Flush after a clean Close: %v", err)
	}
}

// Refuse turns commits away at once, as Close does first, and leaves what
// was committed before for Close to drain.
func TestRefuseThenClose(t *testing.T) {
	h := newHarness(t, Config{Delay: time.Hour})
	h.commit("a", put("k", "1"))
	h.b.Refuse()
	if err := h.b.Commit("b", put("k", "1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Refuse: %v, want ErrClosed", err)
	}
	if err := h.b.End("a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("End after Refuse: %v, want ErrClosed", err)
	}
	if n := h.ncalls(); n != 0 {
		t.Fatalf("Refuse flushed %d sessions, want none (Close drains)", n)
	}
	if r, err := h.b.Close(context.Background()); err != nil || len(r.Sessions) != 0 {
		t.Fatalf("Close after Refuse: %v %+v", err, r)
	}
	if n := h.ncalls(); n != 1 {
		t.Fatalf("Close after Refuse flushed %d sessions, want 1 (a)", n)
	}
}

func TestCloseReport(t *testing.T) {
	h := newHarness(t, Config{RetryMin: time.Millisecond, RetryMax: time.Millisecond})
	h.setFail(func(s *Snapshot) error {
		if s.Session == "down" {
			return errors.New("unavailable")
		}
		return nil
	})
	h.commit("down", put("k1", "1"), put("k2", "2"))
	h.advance(100 * time.Millisecond) // down fails, and waits for a retry that never comes
	h.block()                         // "ended" and "up" will hang until Close cancels them
	if err := h.b.End("ended"); err != nil {
		t.Fatal(err)
	}
	h.commit("up", put("k", "1"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var r Report
	var err error
	go func() {
		r, err = h.b.Close(ctx)
		close(done)
	}()
	waitFor(t, func() bool { return len(h.inFlight()) == 2 })
	cancel()
	<-done
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Close error %v", err)
	}
	got := fmt.Sprintf("%+v", r)
	want := "{Sessions:[{Session:down Items:2 Ended:false Err:unavailable} {Session:ended Items:0 Ended:true Err:context canceled} {Session:up Items:1 Ended:false Err:context canceled}] Items:3}"
	if got != want {
		t.Errorf("report\n%s\nwant\n%s", got, want)
	}
	if err := h.b.Flush(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close left state: %v", err)
	}
	if r2, _ := h.b.Close(context.Background()); fmt.Sprintf("%+v", r2) != got {
		t.Error("second Close returned another report")
	}
	if !h.b.Pending("down") || h.b.Stats().PendingItems != 3 {
		t.Error("unwritten state not kept")
	}
}

func TestCloseWhilePaused(t *testing.T) {
	h := newHarness(t, Config{})
	h.commit("a", put("k", "1"))
	h.b.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	r, err := h.b.Close(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || r.Items != 1 || h.ncalls() != 0 {
		t.Errorf("Close while paused: %v %+v, %d calls", err, r, h.ncalls())
	}
}

func TestFlushCtx(t *testing.T) {
	h := newHarness(t, Config{})
	h.block()
	h.commit("a", put("k", "1"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.b.Flush(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Flush with a cancelled ctx: %v", err)
	}
	// Flush waits only for what was committed before it.
	waitFor(t, func() bool { return len(h.inFlight()) == 1 }) // the first Flush started a
	done := make(chan error, 1)
	go func() { done <- h.b.Flush(context.Background()) }()
	waitFor(t, func() bool { // both Flush calls wait on a
		sh := h.b.shardOf("a")
		sh.mu.Lock()
		defer sh.mu.Unlock()
		return len(sh.sessions["a"].waits) == 2
	})
	h.commit("a", put("k", "2"))
	h.commit("b", put("k", "2"))
	h.release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !h.b.Pending("a") || !h.b.Pending("b") {
		t.Error("later commits flushed")
	}
}

// TestHashSpread: common session ID and key shapes spread over the shards (top bits
// of strhash) and over item-table slots (low bits).
func TestHashSpread(t *testing.T) {
	b := benchBuffer(t)
	shapes := map[string]func(i int) string{
		"counter":  func(i int) string { return fmt.Sprintf("session-%06d", i) },
		"short":    func(i int) string { return fmt.Sprint(i) },
		"tiny":     func(i int) string { return string(rune('a'+i%26)) + fmt.Sprint(i/26) },
		"uuid":     func(i int) string { return fmt.Sprintf("%08x-4e2a-9c1b-%04x-0242ac120002", i*2654435761, i) },
		"sip":      func(i int) string { return fmt.Sprintf("call-%d@node3.example.com", i) },
		"midcount": func(i int) string { return fmt.Sprintf("tenant-alpha/%05d/dialog/with/a/long/suffix", i) },
	}
	for name, id := range shapes {
		var shards, slots [shardCount]int
		const n = 64 * 200
		for i := range n {
			shards[b.shardIndex(id(i))]++
			slots[strhash(id(i), b.shards[0].seed)&(shardCount-1)]++
		}
		for i := range shardCount {
			if c := shards[i]; c < n/shardCount/2 || c > n/shardCount*2 {
				t.Errorf("%s: shard %d holds %d of %d IDs", name, i, c, n)
				break
			}
			if c := slots[i]; c < n/shardCount/2 || c > n/shardCount*2 {
				t.Errorf("%s: slot %d holds %d of %d keys", name, i, c, n)
				break
			}
		}
	}
}

func TestFlushWhilePaused(t *testing.T) {
	h := newHarness(t, Config{})
	h.b.Pause()
	h.commit("a", put("k", "1"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.b.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) || h.ncalls() != 0 {
		t.Fatalf("Flush while paused: %v, %d calls", err, h.ncalls())
	}
	if !h.b.Stats().Paused {
		t.Error("Stats.Paused not set")
	}
	done := make(chan error, 1)
	go func() { done <- h.b.Flush(context.Background()) }()
	h.settle()
	h.b.Resume()
	if err := <-done; err != nil || h.ncalls() != 1 {
		t.Errorf("Flush after Resume: %v, %d calls", err, h.ncalls())
	}
}

// A snapshot of more items than a Cassandra batch holds is split by count
// too, however small its bytes: before, a part could carry any number of
// items under MaxBatchBytes, and a store that sends each part as one batch
// was refused every time (65,535 statements at most).
func TestSplitCapsThePartsItems(t *testing.T) {
	h := newHarness(t, Config{MaxBatchBytes: 64 << 20, MaxPendingBytes: 1 << 30, MaxSessionItems: 1 << 20})
	changes := make([]Change, 2*MaxPartItems+1)
	for i := range changes {
		changes[i] = put(fmt.Sprintf("k%06d", i), "")
	}
	h.commit("s", changes...)
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range h.ncalls() {
		c := h.call(i)
		got = append(got, fmt.Sprintf("%d/%d %d", c.Part, c.Parts, len(c.Items)))
	}
	want := fmt.Sprintf("1/3 %d|2/3 %d|3/3 1", MaxPartItems, MaxPartItems)
	if g := strings.Join(got, "|"); g != want {
		t.Errorf("parts %s, want %s", g, want)
	}
	if got := h.st.read("s"); len(got) != len(changes) {
		t.Errorf("store holds %d items, want %d", len(got), len(changes))
	}
}

// The backoff doubles from RetryMin up to RetryMax and stays there, for any
// RetryMin in range and any number of attempts. Before, RetryMin<<(n-1)
// could overflow for a RetryMin of several seconds after some twenty
// failures in a row and wrap to a short wait: 2^33+1 ns (8.6 s) at attempt
// 32 waited about 2 s instead of RetryMax.
func TestBackoffNeverWrapsBelowRetryMax(t *testing.T) {
	h := newHarness(t, Config{RetryMin: 1<<33 + 1, RetryMax: time.Hour})
	for attempt := 1; attempt <= 100; attempt++ {
		want := time.Hour
		if attempt <= 9 { // 8.6 s << 8 = 36.6 min, << 9 over the hour
			want = time.Duration(1<<33+1) << (attempt - 1)
		}
		if d := time.Duration(h.b.backoff(attempt)); d < want/2 || d > want {
			t.Fatalf("backoff of attempt %d: %v, want between %v and %v", attempt, d, want/2, want)
		}
	}
}
