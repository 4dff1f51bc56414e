package buffer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The model-based test drives a Buffer with an operation sequence decoded from bytes
// (random bytes in TestModel, fuzzer bytes in FuzzOps) and checks it against a plain
// map of the last committed state. The harness checks on every FlushFunc call that no
// two calls of a session overlap and that Seq strictly increases per session; at the
// end, after Resume and a final Flush with failures and blocking switched off, the store (which
// applies snapshots with Cassandra's timestamp rules) must equal the model for every
// key, except keys in snapshots dropped by permanent errors (with the later parts of a
// split snapshot whose earlier part was) and sessions discarded.

var modelConfig = Config{
	MaxSessionItems: 4,
	MaxBatchBytes:   1 << 10,
	Concurrency:     2,
	RetryMin:        10 * time.Millisecond,
	RetryMax:        80 * time.Millisecond,
}

type modelRun struct {
	h       *harness
	model   map[string]map[string]string // session -> key -> value; missing = absent
	exempt  map[string]bool              // discarded sessions
	rnd     *rand.Rand                   // failure decisions (guarded by h.mu)
	mode    int                          // guarded by h.mu: 0 ok, 1 some transient, 2 some permanent, 3 mostly transient
	paused  bool
	counter int
	ops     []string // for failure messages
}

// modelGrouped is modelConfig for runs whose buffer also has a GroupFlush.
var modelGrouped = func() Config {
	c := modelConfig
	c.GroupMax = 3
	c.GroupBytes = 1 << 10
	return c
}()

// modelFamilies gives sessions s1 to s3 families of their own (s0 stays in the
// default family): s1 flushes after 10ms and refuses to hold more than 1 KiB, s2
// after 300ms, s3 after 40ms.
var modelFamilies = []Family{
	{Name: "fast", Prefix: "s1", Delay: 10 * time.Millisecond, MaxSessionBytes: 1 << 10},
	{Name: "slow", Prefix: "s2", Delay: 300 * time.Millisecond},
	{Name: "mid", Prefix: "s3", Delay: 40 * time.Millisecond},
}

// runOps returns the number of GroupFlush calls the run made. With families set,
// the buffer has modelFamilies, and a commit that the fast family's bound refuses
// must apply nothing.
func runOps(t *testing.T, data []byte, grouped, families bool) int {
	var seed uint64
	for i := 0; i < 8 && i < len(data); i++ {
		seed = seed<<8 | uint64(data[i])
	}
	cfg := modelConfig
	if grouped {
		cfg = modelGrouped
	}
	if families {
		cfg.Families = modelFamilies
	}
	h := newHarnessOpt(t, cfg, grouped)
	m := &modelRun{
		h:      h,
		model:  map[string]map[string]string{},
		exempt: map[string]bool{},
		rnd:    rand.New(rand.NewPCG(seed, 1)),
	}
	h.setFail(m.decide)
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	for steps := 0; len(data) > 0 && steps < 400; steps++ {
		m.step(next)
		if err := h.b.verify(); err != nil {
			t.Fatalf("after %s: %v", m.ops[len(m.ops)-1], err)
		}
	}
	m.finish()
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.groups)
}

// decide is the FlushFunc's result, chosen at random per call by the current mode.
func (m *modelRun) decide(*Snapshot) error {
	m.h.mu.Lock()
	r, mode := m.rnd.IntN(100), m.mode
	m.h.mu.Unlock()
	switch {
	case mode == 1 && r < 30, mode == 3 && r < 80:
		return errors.New("transient")
	case mode == 2 && r < 10:
		return Permanent(errors.New("permanent"))
	}
	return nil
}

func (m *modelRun) step(next func() int) {
	h, t := m.h, m.h.t
	session := fmt.Sprint("s", next()%4)
	switch op := next() % 15; {
	case op < 6:
		n := 1 + next()%3
		var cs []Change
		for range n {
			key := fmt.Sprint("k", next()%6)
			if next()%4 == 0 {
				cs = append(cs, del(key))
				continue
			}
			m.counter++
			v := fmt.Sprint(m.counter, strings.Repeat("x", next()%8*50))
			cs = append(cs, put(key, v))
		}
		m.ops = append(m.ops, fmt.Sprintf("commit %s %v", session, describe(&Snapshot{Items: toItems(cs)})))
		err := h.b.Commit(session, cs...)
		if errors.Is(err, ErrSessionTooLarge) && h.b.cfg.Families != nil {
			m.ops[len(m.ops)-1] += " (too large)"
			return
		}
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		st := m.model[session]
		if st == nil {
			st = map[string]string{}
			m.model[session] = st
		}
		for _, c := range cs {
			if c.Delete {
				delete(st, c.Key)
			} else {
				st[c.Key] = string(c.Value)
			}
		}
	case op == 6:
		m.ops = append(m.ops, "end "+session)
		if err := h.b.End(session); err != nil {
			t.Fatalf("End: %v", err)
		}
		m.model[session] = map[string]string{}
	case op == 7 || op == 8:
		d := time.Duration(next()%8) * 20 * time.Millisecond
		m.ops = append(m.ops, fmt.Sprint("advance ", d))
		h.advance(d)
	case op == 9:
		h.mu.Lock()
		m.mode = next() % 4
		h.mu.Unlock()
		m.ops = append(m.ops, fmt.Sprint("mode ", m.mode))
	case op == 10:
		m.ops = append(m.ops, "discard "+session)
		h.b.Discard(session)
		m.exempt[session] = true
	case op == 12:
		h.mu.Lock()
		blocked := h.gate != nil
		h.mu.Unlock()
		m.ops = append(m.ops, fmt.Sprint("blocked ", !blocked))
		if blocked {
			h.unblock()
		} else {
			h.block()
		}
	case op == 13 || op == 14:
		h.mu.Lock()
		n := h.waiting
		h.mu.Unlock()
		if n > 0 {
			m.ops = append(m.ops, "release")
			h.release()
		}
	case op == 11:
		m.paused = !m.paused
		m.ops = append(m.ops, fmt.Sprint("paused ", m.paused))
		if m.paused {
			h.b.Pause()
		} else {
			h.b.Resume()
		}
		h.settle()
	}
}

func toItems(cs []Change) []Item {
	var out []Item
	for _, c := range cs {
		out = append(out, Item(c))
	}
	return out
}

func (m *modelRun) finish() {
	h, t := m.h, m.h.t
	h.b.Resume()
	h.mu.Lock()
	m.mode = 0
	h.mu.Unlock()
	h.unblock()
	if err := h.flushAll(); err != nil {
		t.Fatalf("final Flush: %v", err)
	}
	h.check()
	st := h.b.Stats()
	if st.PendingSessions != 0 || st.PendingItems != 0 || st.PendingBytes != 0 || st.OldestPendingAge != 0 {
		t.Errorf("after the final Flush: %+v", st)
	}
	for _, fs := range st.Families {
		if fs.PendingSessions != 0 || fs.PendingItems != 0 || fs.OldestPendingAge != 0 {
			t.Errorf("after the final Flush: %+v", fs)
		}
	}
	h.mu.Lock()
	dropped, droppedS, droppedAfter := h.dropped, h.droppedS, h.droppedAfter
	h.mu.Unlock()
	for session, want := range m.model {
		if m.exempt[session] || droppedS[session] {
			continue
		}
		got := h.st.read(session)
		for _, k := range keysOf(want, got) {
			if after, ok := droppedAfter[session]; dropped[session][k] || ok && k > after {
				continue
			}
			if got[k] != want[k] {
				t.Errorf("%s/%s: stored %.20q, last committed %.20q", session, k, got[k], want[k])
			}
		}
	}
	if t.Failed() {
		t.Logf("ops:\n%s", strings.Join(m.ops, "\n"))
	}
}

func keysOf(ms ...map[string]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ms {
		for k := range m {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return out
}

func TestModel(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 20
	}
	groups := 0
	for i := range n {
		rnd := rand.New(rand.NewPCG(uint64(i), 7))
		data := make([]byte, 200+rnd.IntN(800))
		for j := range data {
			data[j] = byte(rnd.UintN(256))
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { groups += runOps(t, data, i%2 == 1, i%4 >= 2) })
	}
	if groups == 0 {
		t.Error("no run with a GroupFlush grouped any snapshots")
	}
	t.Logf("%d GroupFlush calls in the grouped runs", groups)
}

func FuzzOps(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = runOps(t, data, len(data) > 8 && data[8]&1 == 1, len(data) > 9 && data[9]&1 == 1)
	})
}
