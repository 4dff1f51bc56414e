package soak

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// builder writes hand-made histories: it keeps each session's state the way
// the workload does, so tests say what happened, not the digests.
type builder struct {
	t0    time.Time
	recs  []Record
	state map[string]*State // current state per session
	ver   map[string]uint64
	seen  map[string]map[uint64]*State // every state each session had, by version (the last one written)
	gen   map[string]int
}

// newBuilder: flush delay 100ms + allowance 250ms = a 350ms window; 6s of
// recovery after a Cassandra stall.
func newBuilder() *builder {
	b := &builder{t0: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC), state: map[string]*State{},
		ver: map[string]uint64{}, seen: map[string]map[uint64]*State{}, gen: map[string]int{}}
	b.add(Record{Type: RecMeta, Start: b.t0, Meta: &Meta{Seed: 42, Start: b.t0, FlushDelayMS: 100,
		WindowAllowanceMS: 250, StallRecoveryMS: 6000, LeaseTTLMS: 3000}})
	return b
}

func (b *builder) at(ms int) time.Time { return b.t0.Add(time.Duration(ms) * time.Millisecond) }

func (b *builder) add(r Record) int64 {
	r.Seq = int64(len(b.recs) + 1)
	b.recs = append(b.recs, r)
	return r.Seq
}

func (b *builder) ref(id string) *Ref {
	if b.state[id] == nil {
		return nil
	}
	return &Ref{Version: b.ver[id], Digest: b.state[id].Digest()}
}

// event sends ev for id to node at ms (answered 10ms later) with outcome; an
// acknowledged or unknown one moves the builder's state (as the workload
// would after a read showing it applied).
func (b *builder) event(id, node string, ms int, kind string, ev Event, outcome string) int64 {
	r := Record{Type: RecOp, Session: id, Kind: kind, Node: node, Start: b.at(ms), End: b.at(ms + 10),
		Event: &ev, Base: b.ref(id), Outcome: outcome}
	var next *State
	v := b.ver[id] + 1
	switch ev.Type {
	case EvCreate:
		b.gen[id]++
		r.Gen = b.gen[id]
		next, v, r.Base = apply(nil, &ev), 1, nil
	case EvEnd:
		next = nil
	default:
		next = apply(b.state[id], &ev)
	}
	if outcome == OutAck {
		r.Version = v
	}
	if outcome == OutAck {
		b.state[id], b.ver[id] = next, v
		if next != nil {
			if b.seen[id] == nil {
				b.seen[id] = map[uint64]*State{}
			}
			b.seen[id][v] = next
		} else {
			b.ver[id] = 0
		}
	}
	return b.add(r)
}

func (b *builder) create(id, node string, ms int) int64 {
	return b.event(id, node, ms, OpCreate, Event{Type: EvCreate, Attrs: map[string]string{"state": "new", "peer": id + fmt.Sprint(b.gen[id]+1)}}, OutAck)
}

func (b *builder) update(id, node string, ms int, k, v string) int64 {
	return b.event(id, node, ms, OpUpdate, Event{Type: EvUpdate, Attrs: map[string]string{k: v}}, OutAck)
}

func (b *builder) appendE(id, node string, ms int, e string) int64 {
	return b.event(id, node, ms, OpAppend, Event{Type: EvAppend, Entry: &e}, OutAck)
}

func (b *builder) end(id, node string, ms int) int64 {
	return b.event(id, node, ms, OpEnd, Event{Type: EvEnd}, OutAck)
}

func (b *builder) fault(kind, node string, ms int) {
	b.add(Record{Type: RecFault, Kind: kind, Node: node, Start: b.at(ms), End: b.at(ms)})
}

func (b *builder) stall(fromMS, toMS int) {
	b.add(Record{Type: RecFault, Kind: FaultStall, Start: b.at(fromMS)})
	b.add(Record{Type: RecFault, Kind: FaultStallEnd, Start: b.at(fromMS), End: b.at(toMS)})
}

// obs is an observation of version v of id as the builder saw it (0: none).
func (b *builder) obs(id string, v uint64, restored bool) *Observed {
	if v == 0 {
		return &Observed{Found: false}
	}
	st := b.seen[id][v]
	if st == nil {
		panic(fmt.Sprintf("builder: %s never had version %d", id, v))
	}
	return &Observed{Found: true, Version: v, State: st, Digest: st.Digest(), Restored: restored}
}

// adopt records node adopting id at ms and restoring version v; the
// builder's state becomes that version.
func (b *builder) adopt(id, kind, node, from string, ms int, v uint64) int64 {
	o := b.obs(id, v, true)
	out := OutObserved
	if !o.Found {
		out = OutAbsent
	}
	seq := b.add(Record{Type: RecOp, Session: id, Kind: kind, Node: node, From: from, Start: b.at(ms), End: b.at(ms + 20),
		Outcome: out, Obs: o, Force: kind != OpAdopt})
	b.reset(id, v)
	return seq
}

func (b *builder) reset(id string, v uint64) {
	if v == 0 {
		b.state[id], b.ver[id] = nil, 0
		return
	}
	b.state[id], b.ver[id] = b.seen[id][v], v
}

func (b *builder) final(id string, ms int, o *Observed) int64 {
	return b.add(Record{Type: RecFinal, Session: id, Start: b.at(ms), End: b.at(ms), Outcome: OutObserved, Obs: o})
}

// expect checks the report's counts by invariant and by kind.
func expect(t *testing.T, rep Report, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for k, v := range rep.Violations {
		if v > 0 {
			got[k] = v
		}
	}
	for k, v := range rep.ByKind {
		got[k] = v
	}
	if want == nil {
		want = map[string]int{}
	}
	if !reflect.DeepEqual(got, want) {
		var ex []string
		for _, e := range rep.Examples {
			ex = append(ex, fmt.Sprintf("%s %s %s: %s (ops %v)", e.Invariant, e.Kind, e.Session, e.What, e.Ops))
		}
		t.Fatalf("violations %v, want %v\n%s", got, want, strings.Join(ex, "\n"))
	}
	for _, e := range rep.Examples {
		if e.Seed != 42 || e.Session == "" || len(e.Ops) == 0 || e.What == "" {
			t.Fatalf("violation lacks seed, session, ops or text: %+v", e)
		}
	}
}

// TestCleanHistory: kills, adoptions, a stall, a dispossession, an end and a
// re-create, with losses only inside the window: no violation.
func TestCleanHistory(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "codec", "pcmu")
	b.appendE("s", "A", 200, "INVITE")
	b.appendE("s", "A", 4800, "late") // within the window of the kill at 5000
	b.fault(FaultKill, "A", 5000)
	b.adopt("s", OpAdopt, "B", "A", 8200, 3)
	b.update("s", "B", 8300, "state", "up")
	// A dispossession that loses an acknowledgement made 50ms before it.
	b.appendE("s", "B", 9950, "x")
	b.adopt("s", OpForceLive, "C", "B", 10000, 4)
	b.appendE("s", "C", 10100, "on C")
	// A Cassandra stall suspends the window: an ack 100ms before the stall
	// is excused by a kill 2s into it.
	b.appendE("s", "C", 11900, "before stall")
	b.stall(12000, 15000)
	b.fault(FaultKill, "C", 14000)
	b.adopt("s", OpAdopt, "B", "C", 18000, 5)
	b.end("s", "B", 18500)
	b.create("s", "B", 19000)
	b.update("s", "B", 19100, "state", "again")
	// Reads of the owner's memory and an absence found for a session never
	// created (nothing owed).
	b.add(Record{Type: RecOp, Session: "t", Kind: OpAdopt, Node: "A", Start: b.at(19200), End: b.at(19300), Outcome: OutAbsent})
	b.final("s", 30000, b.obs("s", 2, true))
	b.final("t", 30000, &Observed{})
	rep := Check(b.recs)
	expect(t, rep, nil)
	if rep.LostWithinWindow != 3 || rep.FinalChecked != 2 || rep.Restores < 5 {
		t.Fatalf("lost_within_window=%d final=%d restores=%d", rep.LostWithinWindow, rep.FinalChecked, rep.Restores)
	}
}

// TestI1LostBeyondWindow: an adoption after a kill restores a version older
// than one acknowledged well before the kill.
func TestI1LostBeyondWindow(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 1000, "k", "1")
	b.update("s", "A", 2000, "k", "2") // owed: 3s before the kill
	b.fault(FaultKill, "A", 5000)
	b.adopt("s", OpAdopt, "B", "A", 8200, 2)
	expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
}

// TestI1GracefulLosesNothing: after graceful drains nothing may be lost, not
// even inside the window.
func TestI1GracefulLosesNothing(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 1000, "k", "1")
	b.fault(FaultTerm, "A", 1050)
	b.fault(FaultDrained, "A", 1200)
	b.final("s", 2000, b.obs("s", 1, true))
	expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
}

// TestI1StallExcusesOnlyDuringItsShadow: the same loss is excused when a
// stall overlaps and not without it.
func TestI1StallExcusesOnlyDuringItsShadow(t *testing.T) {
	for _, stalled := range []bool{false, true} {
		b := newBuilder()
		b.create("s", "A", 0)
		b.update("s", "A", 1000, "k", "1")
		if stalled {
			b.stall(1100, 4000)
		}
		b.fault(FaultKill, "A", 3000)
		b.adopt("s", OpAdopt, "B", "A", 7000, 1)
		if stalled {
			expect(t, Check(b.recs), nil)
		} else {
			expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
		}
	}
}

// TestI1PartitionExcusesOnlyItsWindow: a node cut off from Cassandra loses
// what it acknowledged within the window before the cut (excused, as for a
// kill) but owes what it acknowledged earlier.
func TestI1PartitionExcusesOnlyItsWindow(t *testing.T) {
	// A self-fence the node logged (its lease lapsed) is a failure too: what
	// it acknowledged within the window before it may be lost (a new
	// session not recorded yet is), what it acknowledged before may not.
	for _, fault := range []string{FaultPartition, FaultSelfFence} {
		for _, late := range []bool{true, false} {
			b := newBuilder()
			b.create("s", "A", 0)
			b.update("s", "A", 1000, "k", "1")
			at := 2000 // owed: 3 s before the cut
			if late {
				at = 4900 // 100 ms before it
			}
			b.update("s", "A", at, "k", "2")
			b.fault(fault, "A", 5000)
			b.adopt("s", OpAdopt, "B", "A", 8200, 2) // shows the update at 1000, not the one at "at"
			if fault == FaultPartition {
				b.fault(FaultHeal, "A", 9000)
			}
			if late {
				expect(t, Check(b.recs), nil)
			} else {
				expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
			}
		}
	}
}

// TestI1LiveNodeLosesNothing: a read of the owner's memory must show every
// acknowledged version.
func TestI1LiveNodeLosesNothing(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.update("s", "A", 200, "k", "2")
	o := b.obs("s", 2, false)
	b.add(Record{Type: RecOp, Session: "s", Kind: OpRead, Node: "A", Start: b.at(300), End: b.at(301), Outcome: OutObserved, Obs: o})
	expect(t, Check(b.recs), map[string]int{I1: 1, "lost_beyond_window": 1})
}

// TestI1ImplicitAdoption: an event answered adopted=true whose node restored
// an older state than it owed (found by the read that follows).
func TestI1ImplicitAdoption(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.update("s", "A", 200, "k", "2")
	// A lost version 3 from memory and adopted version 2 again.
	old := b.seen["s"][2]
	ev := Event{Type: EvUpdate, Attrs: map[string]string{"k": "3"}}
	b.add(Record{Type: RecOp, Session: "s", Kind: OpUpdate, Node: "A", Start: b.at(5000), End: b.at(5010),
		Event: &ev, Base: b.ref("s"), Outcome: OutAck, Version: 3, Adopted: true})
	got := apply(old, &ev)
	b.add(Record{Type: RecOp, Session: "s", Kind: OpRead, Node: "A", Start: b.at(5020), End: b.at(5021), Outcome: OutObserved,
		Obs: &Observed{Found: true, Version: 3, State: got}})
	rep := Check(b.recs)
	expect(t, rep, map[string]int{I1: 1, "lost_beyond_window": 1})
	if rep.ImplicitAdoptions != 1 {
		t.Fatalf("implicit adoptions %d", rep.ImplicitAdoptions)
	}
}

// TestI2NeverHad: a restored state mixing two versions.
func TestI2NeverHad(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.appendE("s", "A", 200, "e1")
	b.update("s", "A", 300, "k", "2")
	b.fault(FaultKill, "A", 5000)
	mix := &State{Attrs: b.seen["s"][2].Attrs, History: b.seen["s"][4].History} // k=1 with e1
	b.add(Record{Type: RecOp, Session: "s", Kind: OpAdopt, Node: "B", From: "A", Start: b.at(8200), End: b.at(8220),
		Outcome: OutObserved, Obs: &Observed{Found: true, Version: 4, State: mix, Restored: true}})
	expect(t, Check(b.recs), map[string]int{I2: 1, "never_had": 1})
}

// TestI2StaleBranch: an event the old owner never acknowledged (its answer
// was lost as it froze) becomes visible after a peer restored the version
// before it.
func TestI2StaleBranch(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.event("s", "A", 4900, OpUpdate, Event{Type: EvUpdate, Attrs: map[string]string{"k": "zombie"}}, OutUnknown)
	zombie := apply(b.seen["s"][2], &Event{Type: EvUpdate, Attrs: map[string]string{"k": "zombie"}})
	b.fault(FaultPause, "A", 5000)
	b.adopt("s", OpAdopt, "B", "A", 8200, 2)
	b.final("s", 20000, &Observed{Found: true, Version: 3, State: zombie, Restored: true})
	expect(t, Check(b.recs), map[string]int{I2: 1, "stale_branch": 1})
}

// TestI3SplitBrain: after a forced adoption by B, the dispossessed A
// acknowledges a probe, B acknowledges its own next version, and A's
// persists.
func TestI3SplitBrain(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.adopt("s", OpForceLive, "B", "A", 1000, 2)
	onA := b.seen["s"][2]
	probe := Event{Type: EvUpdate, Attrs: map[string]string{"state": "probe"}}
	b.add(Record{Type: RecOp, Session: "s", Kind: OpProbe, Node: "A", Start: b.at(1100), End: b.at(1110),
		Event: &probe, Base: &Ref{Version: 2, Digest: onA.Digest()}, Outcome: OutAck, Version: 3})
	b.update("s", "B", 1200, "k", "b")
	b.final("s", 20000, &Observed{Found: true, Version: 3, State: apply(onA, &probe), Restored: true})
	rep := Check(b.recs)
	expect(t, rep, map[string]int{I3: 1, "split_brain": 1})
	if rep.ProbeAcks != 1 {
		t.Fatalf("probe acks %d", rep.ProbeAcks)
	}
}

// TestI3ProbeThatDoesNotPersistIsNoViolation: the same fork, B's line
// persists.
func TestI3ProbeThatDoesNotPersistIsNoViolation(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.adopt("s", OpForceLive, "B", "A", 1000, 1)
	onA := b.seen["s"][1]
	probe := Event{Type: EvUpdate, Attrs: map[string]string{"state": "probe"}}
	b.add(Record{Type: RecOp, Session: "s", Kind: OpProbe, Node: "A", Start: b.at(1100), End: b.at(1110),
		Event: &probe, Base: &Ref{Version: 1, Digest: onA.Digest()}, Outcome: OutAck, Version: 2})
	b.update("s", "B", 1200, "k", "b")
	b.final("s", 20000, b.obs("s", 2, true))
	rep := Check(b.recs)
	expect(t, rep, nil)
	if rep.ProbeAcks != 1 {
		t.Fatalf("probe acks %d", rep.ProbeAcks)
	}
}

// TestI4EndedCameBack: a session ended (acknowledged, nodes drained) is
// restored.
func TestI4EndedCameBack(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.end("s", "A", 200)
	b.final("s", 20000, b.obs("s", 2, true))
	expect(t, Check(b.recs), map[string]int{I4: 1, "ended_came_back": 1})
}

// TestI4EndWithinWindowMayBeLost: the same after a kill right after the end
// is no violation.
func TestI4EndWithinWindowMayBeLost(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "1")
	b.end("s", "A", 4900)
	b.fault(FaultKill, "A", 5000)
	b.adopt("s", OpAdopt, "B", "A", 8200, 2)
	expect(t, Check(b.recs), nil)
}

// TestI4RecreatedLostWrites: a session started afresh after its end loses
// its acknowledged writes (the end's tombstone shadows them).
func TestI4RecreatedLostWrites(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.end("s", "A", 100)
	b.create("s", "B", 200)
	b.update("s", "B", 300, "k", "1")
	b.final("s", 20000, &Observed{Found: false})
	expect(t, Check(b.recs), map[string]int{I4: 1, "recreated_lost_writes": 1})
}

// TestI4EarlierGenerationCameBack: the state of the first generation shows up
// after the second one started.
func TestI4EarlierGenerationCameBack(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 100, "k", "old")
	first := b.seen["s"][2]
	b.end("s", "A", 200)
	b.create("s", "B", 300)
	b.final("s", 20000, &Observed{Found: true, Version: 2, State: first, Restored: true})
	expect(t, Check(b.recs), map[string]int{I4: 1, "recreated_lost_writes": 1})
}

// TestI4EndedRowWithItems: Cassandra says ended but holds the items of a
// session never ended.
func TestI4EndedRowWithItems(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	o := b.obs("s", 1, true)
	o.Ended = true
	b.final("s", 20000, o)
	expect(t, Check(b.recs), map[string]int{I4: 1, "ended_row_with_items": 1})
}

// TestUndecodable: persisted items that do not form a session.
func TestUndecodable(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.final("s", 20000, &Observed{Found: true, Problem: "history item hist/00000002 follows 0 entries", Raw: []string{"hist/00000002=x"}})
	expect(t, Check(b.recs), map[string]int{I2: 1, "undecodable": 1})
}

// TestHistoryRoundTrip: the file the soak writes checks like the records.
func TestHistoryRoundTrip(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.update("s", "A", 1000, "k", "1")
	b.update("s", "A", 2000, "k", "2")
	b.fault(FaultKill, "A", 5000)
	b.adopt("s", OpAdopt, "B", "A", 8200, 2)
	path := t.TempDir() + "/h.jsonl"
	var online []Record
	h, err := CreateHistory(path, func(r Record) { online = append(online, r) })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.recs {
		h.Add(r)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := CheckHistory(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep, Check(online)) || rep.Violations[I1] != 1 {
		t.Fatalf("file %+v\nrecords %+v", rep, Check(online))
	}
}

func TestDecodeItems(t *testing.T) {
	items := []Item{{Key: "attr/k", Value: []byte("v")}, {Key: "hist/00000000", Value: []byte("a")},
		{Key: "hist/00000001", Value: []byte("b")}, {Key: "meta/version", Value: []byte("4")}}
	o, err := DecodeItems(items)
	want := &State{Attrs: map[string]string{"k": "v"}, History: []string{"a", "b"}}
	if err != nil || !o.Found || o.Version != 4 || o.Digest != want.Digest() {
		t.Fatalf("%+v %v", o, err)
	}
	if o, err := DecodeItems(nil); err != nil || o.Found {
		t.Fatalf("empty: %+v %v", o, err)
	}
	for _, bad := range [][]Item{
		{{Key: "attr/k", Value: []byte("v")}},
		{{Key: "meta/version", Value: []byte("x")}},
		{{Key: "hist/00000001", Value: []byte("b")}, {Key: "meta/version", Value: []byte("1")}},
	} {
		if _, err := DecodeItems(bad); err == nil {
			t.Errorf("%v decoded", bad)
		}
	}
}

func TestDigestIgnoresNilVersusEmpty(t *testing.T) {
	a := &State{}
	b := &State{Attrs: map[string]string{}, History: []string{}}
	if a.Digest() != b.Digest() {
		t.Fatal("nil and empty differ")
	}
	c := &State{Attrs: map[string]string{"a": "b"}}
	d := &State{History: []string{"a", "b"}}
	if c.Digest() == d.Digest() {
		t.Fatal("attrs and history collide")
	}
}

// TestPlanReplays: one seed, one plan; every kind appears in each round.
func TestPlanReplays(t *testing.T) {
	c := PlanConfig{Nodes: []string{"n1", "n2", "n3"}, Warmup: 8 * time.Second, GapMin: 5 * time.Second,
		GapMax: 10 * time.Second, LeaseTTL: 3 * time.Second, Count: 10}
	p1, p2, p3 := Plan(7, c), Plan(7, c), Plan(8, c)
	if !reflect.DeepEqual(p1, p2) || reflect.DeepEqual(p1, p3) {
		t.Fatalf("plans of one seed differ, or of two seeds agree:\n%s\n%s", FormatPlan(p1), FormatPlan(p3))
	}
	if PlanDigest(7, p1, 10) != PlanDigest(7, p2, 10) || PlanDigest(7, p1, 10) == PlanDigest(8, p3, 10) {
		t.Fatal("plan digests")
	}
	seen := map[string]bool{}
	for _, e := range p1[:len(EpisodeKinds)] {
		seen[e.Kind] = true
		if e.Kind == EpPause && e.HoldMS <= c.LeaseTTL.Milliseconds() {
			t.Fatalf("pause %v not longer than the lease", e)
		}
		if e.Kind == EpTermKill && (e.HoldMS < 20 || e.HoldMS > 200) {
			t.Fatalf("term-kill %v", e)
		}
	}
	if len(seen) != len(EpisodeKinds) || p1[0].GapMS != 8000 {
		t.Fatalf("first round %v", p1[:len(EpisodeKinds)])
	}
}

// TestI3DoubleAdoption: two nodes asked at once both adopt the session.
func TestI3DoubleAdoption(t *testing.T) {
	for _, both := range []bool{false, true} {
		b := newBuilder()
		b.create("s", "A", 0)
		b.fault(FaultKill, "A", 1000)
		o := b.obs("s", 1, true)
		b.add(Record{Type: RecOp, Session: "s", Kind: OpAdoptRace, Node: "B", From: "A", Start: b.at(4200), End: b.at(4300), Outcome: OutObserved, Obs: o})
		lost := Record{Type: RecOp, Session: "s", Kind: OpAdoptRace, Node: "C", From: "A", Start: b.at(4200), End: b.at(4310),
			Outcome: OutRefused, Status: 409, Err: "owned by B"}
		if both {
			lost.Outcome, lost.Status, lost.Err, lost.Obs = OutObserved, 200, "", o
		}
		b.add(lost)
		if both {
			expect(t, Check(b.recs), map[string]int{I3: 1, "double_adoption": 1})
		} else {
			expect(t, Check(b.recs), nil)
		}
	}
}
