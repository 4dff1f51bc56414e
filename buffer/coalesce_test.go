package buffer

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// op is one step of a coalescing scenario on session "s".
type op struct {
	end     bool
	changes []Change
}

func tx(cs ...Change) op { return op{changes: cs} }

var endOp = op{end: true}

func (h *harness) do(ops ...op) {
	h.t.Helper()
	for _, o := range ops {
		if o.end {
			if err := h.b.End("s"); err != nil {
				h.t.Fatal(err)
			}
			continue
		}
		h.commit("s", o.changes...)
	}
}

func TestCoalescing(t *testing.T) {
	long := strings.Repeat("x", 3000)
	cases := []struct {
		name string
		ops  []op
		want string
	}{
		{"put after put keeps the latest", []op{tx(put("a", "1")), tx(put("a", "2"))}, "s a=2"},
		{"delete after put is a delete", []op{tx(put("a", "1")), tx(del("a"))}, "s a-"},
		{"put after delete is a put", []op{tx(del("a")), tx(put("a", "3"))}, "s a=3"},
		{"delete of a new key", []op{tx(del("a"))}, "s a-"},
		{"empty value is a put", []op{tx(put("a", "1")), tx(put("a", ""))}, "s a="},
		{"end supersedes pending items", []op{tx(put("a", "1"), put("b", "2")), endOp}, "s E"},
		{"puts after an end", []op{tx(put("a", "1")), endOp, tx(put("b", "2"))}, "s E b=2"},
		{"delete after an end", []op{endOp, tx(put("b", "2")), tx(del("b"))}, "s E b-"},
		{"end twice", []op{tx(put("a", "1")), endOp, tx(put("b", "2")), endOp}, "s E"},
		{"same key twice in a transaction", []op{tx(put("a", "1"), put("a", "2"))}, "s a=2"},
		{"put delete put in a transaction", []op{tx(put("a", "1"), del("a"), put("a", "xyz"))}, "s a=xyz"},
		{"value grows past its capacity", []op{tx(put("a", "1")), tx(put("a", long))}, "s a=" + long},
		{"value shrinks far below its capacity", []op{tx(put("a", long)), tx(put("a", "2"))}, "s a=2"},
		{"delete of a large value", []op{tx(put("a", long)), tx(del("a")), tx(put("a", "4"))}, "s a=4"},
		{"items sorted by key", []op{tx(put("c", "3"), put("a", "1")), tx(put("b", "2"))}, "s a=1 b=2 c=3"},
		{"many rewrites, one slot", manyRewrites(1000), "s k=999"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.do(tc.ops...)
			if got := h.b.Stats().PendingItems; got != strings.Count(tc.want, " ")-strings.Count(tc.want, " E") {
				t.Errorf("PendingItems = %d before the flush", got)
			}
			if err := h.flushAll(); err != nil {
				t.Fatal(err)
			}
			if h.ncalls() != 1 {
				t.Fatalf("%d flush calls, want 1", h.ncalls())
			}
			if got := describe(h.call(0)); got != tc.want {
				t.Errorf("snapshot %q, want %q", got, tc.want)
			}
			if st := h.b.Stats(); st.PendingItems != 0 || st.PendingSessions != 0 || st.PendingBytes != 0 {
				t.Errorf("after the flush: %+v", st)
			}
		})
	}
}

func manyRewrites(n int) []op {
	ops := make([]op, n)
	for i := range ops {
		ops[i] = tx(put("k", itoa(i)))
	}
	return ops
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// TestRetryMerge: after a transient error the retried snapshot is rebuilt from the
// latest state, the failed items put back under newer changes of the same keys.
func TestRetryMerge(t *testing.T) {
	cases := []struct {
		name   string
		before []op // flushed, then failed
		during []op // committed while that flush is in flight
		first  string
		retry  string
	}{
		{"newer put wins", []op{tx(put("a", "1"), put("b", "1"))}, []op{tx(put("a", "2"))}, "s a=1 b=1", "s a=2 b=1"},
		{"newer delete wins", []op{tx(put("a", "1"), put("b", "1"))}, []op{tx(del("a"))}, "s a=1 b=1", "s a- b=1"},
		{"new key joins", []op{tx(put("a", "1"))}, []op{tx(put("c", "3"))}, "s a=1", "s a=1 c=3"},
		{"end during the flight supersedes it", []op{tx(put("a", "1"), put("b", "1"))}, []op{endOp, tx(put("c", "3"))}, "s a=1 b=1", "s E c=3"},
		{"failed end is kept", []op{endOp, tx(put("a", "1"))}, []op{tx(put("b", "2"))}, "s E a=1", "s E a=1 b=2"},
		{"nothing new", []op{tx(put("a", "1"))}, nil, "s a=1", "s a=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.block()
			fails := 1
			h.setFail(func(*Snapshot) error {
				if fails > 0 {
					fails--
					return errors.New("timeout")
				}
				return nil
			})
			h.do(tc.before...)
			h.advance(h.b.cfg.Delay)
			if h.ncalls() != 1 {
				t.Fatalf("%d calls after Delay", h.ncalls())
			}
			h.do(tc.during...)
			h.release() // fails
			h.unblock()
			if err := h.flushAll(); err != nil {
				t.Fatal(err)
			}
			if h.ncalls() != 2 {
				t.Fatalf("%d calls, want 2", h.ncalls())
			}
			if got := describe(h.call(0)); got != tc.first {
				t.Errorf("first %q, want %q", got, tc.first)
			}
			if got := describe(h.call(1)); got != tc.retry {
				t.Errorf("retry %q, want %q", got, tc.retry)
			}
			if h.call(1).Seq <= h.call(0).Seq+1 {
				t.Errorf("retry Seq %d not above %d+1", h.call(1).Seq, h.call(0).Seq)
			}
			if !h.call(1).Oldest.Equal(h.call(0).Oldest) {
				t.Errorf("retry Oldest %v, want the failed snapshot's %v", h.call(1).Oldest, h.call(0).Oldest)
			}
			if st := h.b.Stats(); st.Retries != 1 || st.PendingSessions != 0 || st.PendingBytes != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestCommitInput(t *testing.T) {
	h := newHarness(t, Config{})
	b := h.b
	for _, tc := range []struct {
		err  error
		name string
	}{
		{b.Commit("", put("a", "1")), "session ID"},
		{b.End(""), "session ID"},
		{b.Commit("s", put("a", "1"), put("", "2")), "Change[1].Key"},
		{b.Commit("s", Change{Key: "a", Value: make([]byte, MaxValueLen+1)}), "Change[0].Value"},
	} {
		if !errors.Is(tc.err, ErrInvalid) || !strings.Contains(tc.err.Error(), tc.name) {
			t.Errorf("error %v, want ErrInvalid naming %s", tc.err, tc.name)
		}
	}
	if b.Pending("s") {
		t.Error("a rejected transaction was partly applied")
	}
	if err := b.Commit("s"); err != nil || b.Pending("s") {
		t.Errorf("empty transaction: %v, pending %v", err, b.Pending("s"))
	}
}

func TestCallerMayReuseValue(t *testing.T) {
	h := newHarness(t, Config{})
	v := []byte("one")
	h.commit("s", Change{Key: "a", Value: v})
	copy(v, "two")
	h.commit("s", Change{Key: "b", Value: v})
	copy(v, "xxx")
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if got := describe(h.call(0)); got != "s a=one b=two" {
		t.Errorf("got %q", got)
	}
}

func TestPermanentError(t *testing.T) {
	h := newHarness(t, Config{})
	h.setFail(func(s *Snapshot) error {
		if s.Session == "bad" {
			return Permanent(errors.New("value too large"))
		}
		return nil
	})
	h.commit("bad", put("a", "1"), put("b", "2"))
	h.commit("good", put("a", "1"))
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	h.commit("bad", put("c", "3")) // newer commits are not dropped
	h.setFail(nil)
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	st := h.b.Stats()
	if st.Drops != 1 || st.DroppedItems != 2 || st.Retries != 0 {
		t.Errorf("stats %+v", st)
	}
	if h.onDrop[0] != "bad:2" || len(h.onDrop) != 1 {
		t.Errorf("OnDrop calls %v", h.onDrop)
	}
	if got := h.st.read("bad"); len(got) != 1 || got["c"] != "3" {
		t.Errorf("bad session state %v", got)
	}
	if got := h.st.read("good"); got["a"] != "1" {
		t.Errorf("good session state %v", got)
	}
}

func TestPermanentClassification(t *testing.T) {
	base := errors.New("schema")
	p := Permanent(base)
	if !IsPermanent(p) || !errors.Is(p, base) || p.Error() != "schema" {
		t.Error("Permanent does not wrap")
	}
	if !IsPermanent(errors.Join(errors.New("x"), p)) || !IsPermanent(errors.Join(p)) {
		t.Error("wrapped permanent not found")
	}
	if IsPermanent(base) || IsPermanent(nil) || Permanent(nil) != nil {
		t.Error("transient classified permanent")
	}
	if !IsPermanent(ErrSeqExhausted) || IsPermanent(context.DeadlineExceeded) {
		t.Error("sentinels misclassified")
	}
	if IsPermanent(notPermanent{}) {
		t.Error("Permanent() false ignored")
	}
}

type notPermanent struct{}

func (notPermanent) Error() string   { return "no" }
func (notPermanent) Permanent() bool { return false }

func TestSeqClock(t *testing.T) {
	var c seqClock
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s1, _ := c.next(t0)
	if want := uint64(t0.Sub(seqOrigin) / SeqUnit); s1 != want {
		t.Fatalf("seq %d, want %d", s1, want)
	}
	s2, _ := c.next(t0)                  // same instant
	s3, _ := c.next(t0.Add(-time.Hour))  // clock stepped back
	s4, _ := c.next(t0.Add(time.Second)) // forward again
	s5, _ := c.next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	if !(s2 >= s1+2 && s3 >= s2+2 && s4 == s1+10000 && s5 == s4+2) {
		t.Errorf("seqs %d %d %d %d %d", s1, s2, s3, s4, s5)
	}
	if got := SeqTime(s1); !got.Equal(t0) {
		t.Errorf("SeqTime = %v", got)
	}
	if _, err := c.next(seqOrigin.Add(SeqUnit * (1<<SeqBits - 1))); !errors.Is(err, ErrSeqExhausted) {
		t.Errorf("no ErrSeqExhausted: %v", err)
	}
}

func TestSeqExhaustedDrops(t *testing.T) {
	h := newHarness(t, Config{})
	h.b.seq.last.Store(1<<SeqBits - 3)
	h.commit("s", put("a", "1"))
	if err := h.flushAll(); err != nil {
		t.Fatal(err)
	}
	if h.ncalls() != 0 || h.b.Stats().Drops != 1 || len(h.onDrop) != 1 {
		t.Errorf("calls %d, stats %+v", h.ncalls(), h.b.Stats())
	}
}

// TestCommitUpdateAllocs: rewriting dirty keys with same-sized values allocates
// nothing, for one change and for a transaction.
func TestCommitUpdateAllocs(t *testing.T) {
	b := benchBuffer(t)
	v := make([]byte, 100)
	tx := []Change{{Key: "a", Value: v}, {Key: "b", Value: v}, {Key: "c", Value: v}}
	if err := b.Commit("s", tx...); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { b.Commit("s", Change{Key: "b", Value: v}) }); n != 0 {
		t.Errorf("single update: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() { b.Commit("s", tx...) }); n != 0 {
		t.Errorf("transaction update: %v allocs", n)
	}
}

// A delete's Value is ignored: the buffer neither keeps nor counts it.
// Before, the tombstone entry copied it, so a host that sent the old value
// (or a reused buffer) with a delete held memory MaxPendingBytes never saw.
func TestDeleteDoesNotKeepItsIgnoredValue(t *testing.T) {
	h := newHarness(t, Config{Delay: time.Hour})
	for _, tc := range []struct{ name, key string }{{"new key", "k1"}, {"pending key", "k2"}} {
		if tc.key == "k2" {
			h.commit("s", put("k2", string(make([]byte, 2000)))) // capacity > 1 KiB: the delete makes a new entry
		}
		h.commit("s", Change{Key: tc.key, Value: make([]byte, 1<<20), Delete: true})
		sh := h.b.shardOf("s")
		sh.mu.Lock()
		e, _ := sh.sessions["s"].lookup(tc.key)
		mem := entryHeader + int(e.k) + int(e.c)
		counted := entryBytes(len(tc.key), e.size())
		sh.mu.Unlock()
		if mem > 1<<10 {
			t.Errorf("%s: a pending delete holds a %d-byte entry, counted as %d bytes against MaxPendingBytes (Stats.PendingBytes %d): the ignored Value was copied",
				tc.name, mem, counted, h.b.Stats().PendingBytes)
		}
	}
}
