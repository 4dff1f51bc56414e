package soak

import (
	"fmt"
	"slices"
	"time"
)

// observe checks one observation of session s made by r at t, then makes the
// observed state the session's current one.
func (c *Checker) observe(s *sess, r Record, o Observed, t time.Time) {
	c.rep.Observations++
	if o.Restored {
		c.rep.Restores++
	}
	c.resolvePending(s, o)
	tip := s.tip()
	var m *tnode
	foreign := false
	if o.Found {
		if o.State == nil {
			o.State = &State{}
		}
		ref := Ref{Version: o.Version, Digest: o.State.Digest()}
		for _, cand := range s.index[ref] {
			if isAncestor(cand, tip) {
				m = cand
				break
			}
		}
		if m == nil {
			if cands := s.index[ref]; len(cands) > 0 {
				m = cands[len(cands)-1]
			}
		}
		if m == nil {
			ops := []int64{r.Seq}
			for _, h := range s.head {
				ops = append(ops, h.op)
			}
			c.violate(I2, "never_had", s, t, ops,
				"%s showed version %d (digest %s), a state the session never had: no event sent explains it (expected %s)",
				describe(r), o.Version, short(ref.Digest), describeHead(s))
			m = &tnode{kind: kLive, gen: tip.gen, version: o.Version, digest: ref.Digest, st: o.State, parent: tip, op: r.Seq, node: r.Node}
			s.add(m)
			foreign = true
		}
	} else {
		m = tip
		for m.kind == kLive {
			m = m.parent
		}
	}
	switch {
	case foreign:
	case isAncestor(m, tip):
		c.checkLoss(s, r, m, tip, t)
	default:
		c.checkBranch(s, r, m, tip, t)
	}
	if o.Restored { // Cassandra showed it: found, or the End (or nothing) it holds
		m.durable = true
	}
	if m.st == nil && o.Found && o.State != nil && !m.unknown {
		m.st = o.State
	}
	if m.unknown && o.Found && o.State != nil {
		// The observation tells the state only the version was known of.
		m.st, m.digest, m.unknown = o.State, o.State.Digest(), false
		s.index[m.ref()] = append(s.index[m.ref()], m)
		s.byVersion[m.version] = append(s.byVersion[m.version], m)
	}
	s.head = []*tnode{m}
}

// resolvePending: an event answered adopted=true (or not answered) was applied
// to a state restored from Cassandra, assumed to be the one the workload
// believed. When the observation that follows shows otherwise, find the
// restored state among the states of the version below that explain it, and
// check that restoration as an observation of its own.
func (c *Checker) resolvePending(s *sess, o Observed) {
	p := s.pending
	s.pending = nil
	if p == nil || !o.Found || o.State == nil {
		return
	}
	d := o.State.Digest()
	if p.child.digest == d && p.child.version == o.Version {
		// As assumed: the node restored the state below from Cassandra.
		if p.rec.Adopted && p.rec.Outcome == OutAck && p.rec.Kind != OpCreate && p.child.parent != nil {
			p.child.parent.durable = true
			c.rep.Restores++
		}
		return
	}
	if p.rec.Outcome != OutAck || p.rec.Version != o.Version || o.Version == 0 || p.rec.Kind == OpCreate || p.rec.Kind == OpEnd {
		return
	}
	for _, cand := range s.byVersion[o.Version-1] {
		if cand == p.child.parent || cand.st == nil {
			continue
		}
		if apply(cand.st, p.rec.Event).Digest() != d {
			continue
		}
		// The node restored cand: check that restoration where it happened.
		s.head = []*tnode{p.child.parent}
		restored := Record{Type: RecOp, Seq: p.rec.Seq, Kind: "implicit adoption by " + p.rec.Kind, Node: p.rec.Node, Session: s.id}
		c.rep.Observations++
		c.rep.Restores++
		tip := s.tip()
		if isAncestor(cand, tip) {
			c.checkLoss(s, restored, cand, tip, p.rec.End)
		} else {
			c.checkBranch(s, restored, cand, tip, p.rec.End)
		}
		cand.durable = true
		n := &tnode{kind: kLive, gen: cand.gen, version: o.Version, parent: cand, op: p.rec.Seq, node: p.rec.Node,
			sent: p.rec.Start, acked: true, ackAt: p.rec.End, st: apply(cand.st, p.rec.Event)}
		n.digest = n.st.Digest()
		s.add(n)
		s.head = []*tnode{n}
		return
	}
}

// required returns the deepest state on the path to tip that the observation
// at t must show at least: a state restored from Cassandra earlier, or an
// acknowledged one that no failure excuses (nil if none).
func (c *Checker) required(s *sess, tip *tnode, t time.Time) *tnode {
	for x := tip; x != nil; x = x.parent {
		if x.durable {
			return x
		}
		if x.acked && !c.excused(s, x, t) {
			return x
		}
	}
	return nil
}

// failureGrace: a failure the nemesis caused counts for events sent up to
// this long after it. The nemesis marks a node down just before it signals
// it; an event whose worker had looked a moment earlier may still be sent,
// and acknowledged, in between. No event sent that long after a SIGKILL or
// SIGSTOP can be acknowledged by that process (a restart takes longer than
// a lease). A self-fence gets none: the node logs it when it happens, and
// acknowledges nothing after it until it recovers, so an event it
// acknowledged later is owed in full (it excused such losses, found by
// review).
const failureGrace = time.Second

// failure is one failure of a node: when, and whether failureGrace applies.
type failure struct {
	at    time.Time
	grace bool
}

// excused reports whether the loss of acknowledged state x by time t is
// within the window: the first failure of the node that acknowledged it (a
// SIGKILL, SIGKILL during a drain, SIGSTOP, a partition from Cassandra, a
// self-fence it logged, or a forced adoption of this session away from it) after x was sent (less failureGrace) and by t came
// less than the window (as cut computes it) after x was acknowledged.
func (c *Checker) excused(s *sess, x *tnode, t time.Time) bool {
	f, _ := c.firstFailure(s, x, t)
	return !f.IsZero() && x.ackAt.After(c.cut(f))
}

// firstFailure returns the first failure of x's node that counts for x by
// time t (zero if none) and what it was.
func (c *Checker) firstFailure(s *sess, x *tnode, t time.Time) (first time.Time, kind string) {
	consider := func(f time.Time, grace time.Duration, k string) {
		if f.After(x.sent.Add(-grace)) && !f.After(t) && (first.IsZero() || f.Before(first)) {
			first, kind = f, k
		}
	}
	for _, f := range c.failures[x.node] {
		grace := time.Duration(0)
		if f.grace {
			grace = failureGrace
		}
		consider(f.at, grace, "failure")
	}
	for _, f := range s.dispossessed[x.node] {
		consider(f, failureGrace, "forced adoption away from it")
	}
	return first, kind
}

// checkLoss: m is on the session's line. Every state it must show at least
// (required) must be m or below it.
func (c *Checker) checkLoss(s *sess, r Record, m, tip *tnode, t time.Time) {
	req := c.required(s, tip, t)
	within := 0
	for x := tip; x != m && x != nil; x = x.parent {
		if x.acked && (req == nil || x.depth > req.depth) {
			within++
			if f, kind := c.firstFailure(s, x, t); !f.IsZero() && f.Sub(x.ackAt) > c.maxLostAge {
				c.maxLostAge = f.Sub(x.ackAt)
				c.rep.MaxLostAgeMS = float64(c.maxLostAge.Microseconds()) / 1000
				c.rep.MaxLost = fmt.Sprintf("session %s: %s showed %s; version %d (#%d) acknowledged by %s at %s, %v before the %s of %s at %s (owed up to %s)",
					s.id, describe(r), describeNode(m), x.version, x.op, x.node, clock(x.ackAt), c.maxLostAge.Round(time.Millisecond),
					kind, x.node, clock(f), clock(c.cut(f)))
			}
		}
	}
	c.rep.LostWithinWindow += within
	if req == nil || req.depth <= m.depth {
		return
	}
	var lost []*tnode
	for x := req; x != m; x = x.parent {
		if x.acked || x.durable {
			lost = append(lost, x)
		}
	}
	slices.Reverse(lost)
	var lostOps []int64
	for _, x := range lost {
		lostOps = append(lostOps, x.op)
	}
	ops := append([]int64{r.Seq}, firstLast(lostOps, 10)...)
	why := c.why(s, req, t)
	seen := describeNode(m)
	switch {
	case req.kind == kEnded && m.kind == kLive && m.gen == req.gen:
		c.violate(I4, "ended_came_back", s, t, ops,
			"%s showed %s, but the session was ended (end event #%d acknowledged by %s at %s; %s)",
			describe(r), seen, req.op, req.node, clock(req.ackAt), why)
	case req.gen >= 2 && m.gen < req.gen:
		c.violate(I4, "recreated_lost_writes", s, t, ops,
			"%s showed %s, but the session was started afresh (generation %d) and version %d was acknowledged by %s at %s (%s): %d acknowledged versions lost",
			describe(r), seen, req.gen, req.version, req.node, clock(req.ackAt), why, len(lost))
	default:
		c.violate(I1, "lost_beyond_window", s, t, ops,
			"%s showed %s, but %s (%s): %d acknowledged versions lost beyond the window of %v",
			describe(r), seen, describeRequired(req), why, len(lost), c.window)
	}
}

// checkBranch: m is not on the session's line (it is a state the line has
// left behind, or a fork).
func (c *Checker) checkBranch(s *sess, r Record, m, tip *tnode, t time.Time) {
	f := lca(m, tip)
	sideNodes, lineNodes := map[string]bool{}, map[string]bool{}
	var sideOps, lineOps []int64
	lineEnded := false
	for x := m; x != f; x = x.parent {
		if x.acked {
			sideNodes[x.node] = true
		}
		sideOps = append(sideOps, x.op)
	}
	for x := tip; x != f; x = x.parent {
		if x.acked {
			lineNodes[x.node] = true
		}
		if x.kind == kEnded || (x.kind == kLive && x.parent != nil && x.parent.kind != kLive) {
			lineEnded = true
		}
		lineOps = append(lineOps, x.op)
	}
	slices.Reverse(sideOps)
	slices.Reverse(lineOps)
	ops := append(append([]int64{r.Seq}, firstLast(sideOps, 6)...), firstLast(lineOps, 6)...)
	seen := describeNode(m)
	switch {
	case lineEnded || m.gen != tip.gen:
		c.violate(I4, "ended_came_back", s, t, ops,
			"%s showed %s (generation %d), a state of the session from before it was ended or started afresh (now %s)",
			describe(r), seen, m.gen, describeHead(s))
	default:
		var x, y string
		for a := range sideNodes {
			for b := range lineNodes {
				if a != b && (x == "" || a+b < x+y) {
					x, y = a, b
				}
			}
		}
		if x != "" {
			c.violate(I3, "split_brain", s, t, ops,
				"%s showed %s, acknowledged by %s on a branch that forked at %s from the line %s acknowledged (now %s): both nodes acknowledged, %s's persisted",
				describe(r), seen, x, describeNode(f), y, describeHead(s), x)
		} else {
			c.violate(I2, "stale_branch", s, t, ops,
				"%s showed %s, a state the session had left behind at %s (a write of an older owner or of an event superseded by an adoption; now %s)",
				describe(r), seen, describeNode(f), describeHead(s))
		}
	}
}

// why explains why req was owed: no failure of its node, or the failure that
// came too late to excuse it.
func (c *Checker) why(s *sess, req *tnode, t time.Time) string {
	if req.durable && !req.acked {
		return "it had been restored from Cassandra before"
	}
	first, kind := c.firstFailure(s, req, t)
	if first.IsZero() {
		return fmt.Sprintf("%s did not fail before the observation", orDash(req.node))
	}
	return fmt.Sprintf("%s of %s at %s, %v after the acknowledgement; owed up to %s",
		kind, req.node, clock(first), first.Sub(req.ackAt).Round(time.Millisecond), clock(c.cut(first)))
}

// firstLast keeps the first n-1 and the last of ops when there are more
// than n: a violation names the operations at stake, not a whole session.
func firstLast(ops []int64, n int) []int64 {
	if len(ops) <= n {
		return ops
	}
	return append(slices.Clone(ops[:n-1]), ops[len(ops)-1])
}
