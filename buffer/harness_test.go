package buffer

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// store models the Cassandra table the adapter writes: one partition per session,
// last write wins by timestamp, an Ended snapshot deletes the partition at Seq and
// writes its items at Seq+1.
type store struct {
	mu    sync.Mutex
	parts map[string]*partition
}

type partition struct {
	tomb  uint64 // partition delete timestamp; shadows cells with ts <= tomb
	cells map[string]cell
}

type cell struct {
	ts  uint64
	val []byte
	del bool
}

func (st *store) apply(s *Snapshot) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.parts == nil {
		st.parts = map[string]*partition{}
	}
	p := st.parts[s.Session]
	if p == nil {
		p = &partition{cells: map[string]cell{}}
		st.parts[s.Session] = p
	}
	if s.Ended && s.Seq > p.tomb {
		p.tomb = s.Seq
	}
	for _, it := range s.Items {
		ts := s.Seq + 1
		if c, ok := p.cells[it.Key]; !ok || ts > c.ts {
			p.cells[it.Key] = cell{ts: ts, val: bytes.Clone(it.Value), del: it.Delete}
		}
	}
}

// read returns the visible items of a session.
func (st *store) read(session string) map[string]string {
	st.mu.Lock()
	defer st.mu.Unlock()
	out := map[string]string{}
	p := st.parts[session]
	if p == nil {
		return out
	}
	for k, c := range p.cells {
		if c.ts > p.tomb && !c.del {
			out[k] = string(c.val)
		}
	}
	return out
}

// harness runs a Buffer over a fake clock and a recording FlushFunc that checks the
// invariants as calls arrive: no two calls of one session overlap, and Seq strictly
// increases per session (parts of one snapshot share it, in order).
type harness struct {
	t   testing.TB
	b   *Buffer
	clk *fakeClock
	st  store

	mu       sync.Mutex
	calls    []*Snapshot // deep copies, in call order
	times    []time.Time // when each call started
	inflight map[string]bool
	last     map[string][2]uint64 // session -> {seq, part}
	bad      []string
	fail     func(*Snapshot) error // result of a call; nil means success
	gate     chan struct{}         // when set, every call waits for a token (or ctx)
	waiting  int                   // calls parked at the gate
	dropped  map[string]map[string]bool
	droppedS map[string]bool // sessions whose End was dropped
	onDrop   []string        // "session:items" of each OnDrop call
	dropErrs []error         // and its error
	groups   [][]string      // sessions of each GroupFlush call

	// droppedAfter holds, per session, the smallest last key of a part that failed
	// permanently before the last part: the later parts, whose keys sort after it, were
	// dropped unwritten.
	droppedAfter map[string]string
}

func newHarness(t testing.TB, cfg Config) *harness {
	t.Helper()
	return newHarnessOpt(t, cfg, false)
}

// newHarnessOpt is newHarness; with grouped set, the buffer also gets a GroupFlush
// that passes each snapshot of a group through the same recording flush in turn and
// records the group's sessions.
func newHarnessOpt(t testing.TB, cfg Config, grouped bool) *harness {
	t.Helper()
	h := &harness{
		t:        t,
		clk:      newFakeClock(),
		inflight: map[string]bool{},
		last:     map[string][2]uint64{},
		dropped:  map[string]map[string]bool{},
		droppedS: map[string]bool{},

		droppedAfter: map[string]string{},
	}
	cfg.Clock = h.clk
	cfg.OnDrop = func(session string, err error, items int) {
		h.mu.Lock()
		h.onDrop = append(h.onDrop, fmt.Sprintf("%s:%d", session, items))
		h.dropErrs = append(h.dropErrs, err)
		h.mu.Unlock()
	}
	if grouped {
		cfg.GroupFlush = h.groupFlush
	}
	b, err := New(cfg, h.flush)
	if err != nil {
		t.Fatal(err)
	}
	h.b = b
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		h.mu.Lock()
		if h.gate != nil {
			close(h.gate)
			h.gate = nil
			h.waiting = 0
		}
		h.mu.Unlock()
		b.Close(ctx)
		h.check()
	})
	return h
}

func (h *harness) groupFlush(ctx context.Context, group []*Snapshot, errs []error) {
	var ids []string
	for _, s := range group {
		if slices.Contains(ids, s.Session) {
			h.mu.Lock()
			h.bad = append(h.bad, "session twice in one group: "+s.Session)
			h.mu.Unlock()
		}
		ids = append(ids, s.Session)
	}
	h.mu.Lock()
	h.groups = append(h.groups, ids)
	h.mu.Unlock()
	for i, s := range group {
		errs[i] = h.flush(ctx, s)
	}
}

func (h *harness) flush(ctx context.Context, s *Snapshot) error {
	cp := *s
	cp.Items = slices.Clone(s.Items)
	for i := range cp.Items {
		cp.Items[i].Value = bytes.Clone(cp.Items[i].Value)
	}
	h.mu.Lock()
	if h.inflight[s.Session] {
		h.bad = append(h.bad, "overlapping flushes of "+s.Session)
	}
	h.inflight[s.Session] = true
	last, seen := h.last[s.Session]
	if seen && !(s.Seq > last[0] && s.Part == 1 || s.Seq == last[0] && uint64(s.Part) == last[1]+1) {
		h.bad = append(h.bad, fmt.Sprintf("%s: seq %d part %d after seq %d part %d", s.Session, s.Seq, s.Part, last[0], last[1]))
	}
	if !seen && s.Part != 1 {
		h.bad = append(h.bad, fmt.Sprintf("%s: first call is part %d", s.Session, s.Part))
	}
	if s.Seq+1 >= 1<<SeqBits {
		h.bad = append(h.bad, "seq out of range")
	}
	h.last[s.Session] = [2]uint64{s.Seq, uint64(s.Part)}
	h.calls = append(h.calls, &cp)
	h.times = append(h.times, h.clk.Now())
	fail, gate := h.fail, h.gate
	if gate != nil {
		h.waiting++
	}
	h.mu.Unlock()

	var err error
	if gate != nil {
		select {
		case <-gate: // release or unblock counted us out
		case <-ctx.Done():
			err = ctx.Err()
			h.mu.Lock()
			if h.gate == gate {
				h.waiting--
			}
			h.mu.Unlock()
		}
	}
	if err == nil && fail != nil {
		err = fail(&cp)
	}
	h.mu.Lock()
	switch {
	case err == nil:
		h.st.apply(&cp)
	case IsPermanent(err):
		if cp.Ended {
			h.droppedS[cp.Session] = true
		}
		if h.dropped[cp.Session] == nil {
			h.dropped[cp.Session] = map[string]bool{}
		}
		for _, it := range cp.Items {
			h.dropped[cp.Session][it.Key] = true
		}
		if cp.Part < cp.Parts {
			last := cp.Items[len(cp.Items)-1].Key // parts before the last are never empty
			if k, ok := h.droppedAfter[cp.Session]; !ok || last < k {
				h.droppedAfter[cp.Session] = last
			}
		}
	}
	delete(h.inflight, s.Session)
	h.mu.Unlock()
	return err
}

// settle waits until the scheduler has handled the current time and every flush
// worker is parked at the gate or gone. It polls; it asserts nothing.
func (h *harness) settle() {
	h.t.Helper()
	b := h.b
	deadline := time.Now().Add(10 * time.Second)
	for {
		reply := make(chan struct{})
		select {
		case b.syncReq <- reply:
			<-reply
		case <-b.loopDone:
			return
		}
		for {
			b.mu.Lock()
			running := b.running
			b.mu.Unlock()
			h.mu.Lock()
			waiting := h.waiting
			h.mu.Unlock()
			if running == waiting {
				break
			}
			if time.Now().After(deadline) {
				h.t.Fatalf("settle: %d workers, %d parked", running, waiting)
			}
			runtime.Gosched()
			time.Sleep(20 * time.Microsecond)
		}
		if len(b.kick) == 0 && len(b.tick) == 0 {
			return
		}
	}
}

// advance moves the fake clock and lets the buffer react.
func (h *harness) advance(d time.Duration) {
	h.clk.Advance(d)
	h.settle()
}

func (h *harness) commit(session string, changes ...Change) {
	h.t.Helper()
	if err := h.b.Commit(session, changes...); err != nil {
		h.t.Fatalf("Commit(%s): %v", session, err)
	}
}

func put(k, v string) Change { return Change{Key: k, Value: []byte(v)} }
func del(k string) Change    { return Change{Key: k, Delete: true} }

// ncalls returns the number of FlushFunc calls so far.
func (h *harness) ncalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.calls)
}

func (h *harness) call(i int) *Snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[i]
}

func (h *harness) setFail(f func(*Snapshot) error) {
	h.mu.Lock()
	h.fail = f
	h.mu.Unlock()
}

// block makes every later call wait for release.
func (h *harness) block() {
	h.mu.Lock()
	h.gate = make(chan struct{})
	h.mu.Unlock()
}

// release lets one blocked call return and waits for the buffer to react.
func (h *harness) release() {
	h.mu.Lock()
	g := h.gate
	if h.waiting == 0 {
		h.mu.Unlock()
		h.t.Fatal("release: no blocked flush")
	}
	h.waiting--
	h.mu.Unlock()
	g <- struct{}{}
	h.settle()
}

// unblock lets every call through from now on.
func (h *harness) unblock() {
	h.mu.Lock()
	if h.gate != nil {
		close(h.gate)
		h.gate = nil
		h.waiting = 0
	}
	h.mu.Unlock()
	h.settle()
}

func (h *harness) inFlight() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Sorted(maps.Keys(h.inflight))
}

// flushAll runs Flush while driving the fake clock, so that backoffs expire.
func (h *harness) flushAll() error {
	h.t.Helper()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- h.b.Flush(ctx)
	}()
	for {
		select {
		case err := <-done:
			return err
		default:
		}
		h.advance(h.b.cfg.RetryMax)
	}
}

// check reports invariant violations seen by the FlushFunc.
func (h *harness) check() {
	h.t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.bad {
		h.t.Error(m)
	}
	h.bad = nil
}

// describe renders a snapshot compactly: "s1 E a=1 b- #2/3".
func describe(s *Snapshot) string {
	var b bytes.Buffer
	b.WriteString(s.Session)
	if s.Ended {
		b.WriteString(" E")
	}
	for _, it := range s.Items {
		if it.Delete {
			fmt.Fprintf(&b, " %s-", it.Key)
		} else {
			fmt.Fprintf(&b, " %s=%s", it.Key, it.Value)
		}
	}
	if s.Parts != 1 {
		fmt.Fprintf(&b, " #%d/%d", s.Part, s.Parts)
	}
	return b.String()
}
