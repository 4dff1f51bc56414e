package soak

import "strings"

// op adds an operation of the workload to its session's tree.
func (c *Checker) op(r Record) {
	if r.Kind == OpTakeover {
		return // no session: the observations that follow check what it restored
	}
	s := c.session(r.Session)
	if r.Kind != OpAdoptRace {
		s.raceWon = nil
	}
	switch r.Kind {
	case OpCreate, OpUpdate, OpAppend, OpUnset, OpEnd:
		c.event(s, r, false)
	case OpProbe:
		c.event(s, r, true)
	case OpForceLive:
		if r.From != "" && r.Outcome != OutRefused {
			// Dispossessed from the moment the forced adoption was sent,
			// whether or not its answer arrived.
			s.dispossessed[r.From] = append(s.dispossessed[r.From], r.Start)
		}
		c.observeOp(s, r)
	case OpAdoptRace:
		c.raced(s, r)
		c.observeOp(s, r)
		return
	case OpRead, OpAdopt, OpForceAdopt:
		c.observeOp(s, r)
	}
}

// raced checks one answer of an adoption race: two nodes asked at once
// must not both restore the session (one claim wins; I3).
func (c *Checker) raced(s *sess, r Record) {
	if r.Outcome != OutObserved || r.Obs == nil || !r.Obs.Restored {
		return
	}
	if w := s.raceWon; w != nil && w.Node != r.Node && w.Start.Before(r.End) && r.Start.Before(w.End) {
		c.violate(I3, "double_adoption", s, r.End, []int64{w.Seq, r.Seq},
			"adopt-race #%d on %s and #%d on %s both adopted the session, asked at once (versions %d and %d): two owners",
			w.Seq, w.Node, r.Seq, r.Node, w.Obs.Version, r.Obs.Version)
	}
	s.raceWon = &r
}

func (c *Checker) observeOp(s *sess, r Record) {
	switch r.Outcome {
	case OutObserved:
		if r.Obs != nil {
			c.observe(s, r, *r.Obs, r.End)
		}
	case OutAbsent:
		c.observe(s, r, Observed{Found: false, Restored: true}, r.End)
	}
}

// base finds the state an event was applied to.
func (c *Checker) base(s *sess, r Record, probe bool) *tnode {
	if r.Kind == OpCreate || r.Base == nil {
		return s.tip()
	}
	if !probe {
		for i := len(s.head) - 1; i >= 0; i-- {
			if s.head[i].kind == kLive && s.head[i].ref() == *r.Base {
				return s.head[i]
			}
		}
	}
	cands := s.index[*r.Base]
	if len(cands) > 0 {
		return cands[len(cands)-1]
	}
	if !probe {
		return s.tip()
	}
	return nil
}

// event adds the state an event produced. A probe's state is a side branch:
// the workload's idea of where the session is does not move.
func (c *Checker) event(s *sess, r Record, probe bool) {
	switch r.Outcome {
	case OutRefused, "":
		return
	case OutAbsent:
		if !probe {
			c.observe(s, r, Observed{Found: false, Restored: true}, r.End)
		}
		return
	}
	if probe && r.Adopted && r.Outcome == OutAck {
		// The probed node adopted the session for real: the event is on the
		// session's line, applied to whatever was persisted.
		probe = false
		r.Base = nil
	}
	b := c.base(s, r, probe)
	if b == nil || (b.st == nil && r.Kind != OpCreate && r.Kind != OpEnd && b.kind == kLive) {
		c.rep.Unplaced++
		if !probe && r.Outcome == OutAck {
			// Carry on from an unknown state of the answered version.
			n := &tnode{kind: kLive, gen: s.tip().gen, version: r.Version, parent: s.tip(), unknown: true,
				op: r.Seq, node: r.Node, sent: r.Start, acked: true, ackAt: r.End}
			s.add(n)
			s.head = []*tnode{n}
		}
		return
	}
	n := &tnode{parent: b, op: r.Seq, node: r.Node, sent: r.Start, gen: b.gen}
	switch r.Kind {
	case OpCreate:
		// Generations count the creates on the session's line: 1 for the
		// first, one more after each end.
		n.kind, n.version, n.gen = kLive, 1, b.gen+1
		n.st = apply(nil, r.Event)
	case OpEnd:
		n.kind, n.version = kEnded, b.version+1
	default:
		if b.kind != kLive {
			// An event on a session the checker thinks is gone: the node
			// had it (the answer proves it); its state is unknown.
			n.kind, n.version, n.unknown = kLive, b.version+1, true
		} else {
			n.kind, n.version = kLive, b.version+1
			n.st = apply(b.st, r.Event)
		}
	}
	if n.st != nil {
		n.digest = n.st.Digest()
	}
	if r.Kind == OpEnd && r.Outcome == OutAck && r.Adopted && !probe && r.Version > 1 {
		// The node restored version r.Version-1 from Cassandra and ended it:
		// no read follows an End, so check that restoration here.
		for x := b; x != nil && x.kind == kLive; x = x.parent {
			if x.version == r.Version-1 {
				c.rep.Observations++
				c.rep.Restores++
				c.checkLoss(s, Record{Type: RecOp, Seq: r.Seq, Kind: "implicit adoption by end", Node: r.Node, Session: s.id}, x, b, r.End)
				x.durable = true
				break
			}
		}
	}
	if r.Outcome == OutAck {
		n.acked, n.ackAt = true, r.End
		if r.Version != n.version {
			// The node's base was not the one the workload believed: only
			// the version is known. The next observation tells the rest.
			n.version, n.st, n.digest, n.unknown = r.Version, nil, "", true
		}
	}
	s.add(n)
	if probe {
		if n.acked {
			c.rep.ProbeAcks++
		}
		return
	}
	if r.Adopted && r.Kind != OpCreate {
		c.rep.ImplicitAdoptions++
	}
	if r.Outcome == OutAck {
		s.head = []*tnode{n}
	} else {
		s.head = []*tnode{b, n}
	}
	if (r.Adopted && r.Kind != OpCreate) || r.Outcome == OutUnknown || n.unknown {
		s.pending = &pending{rec: r, child: n}
	} else {
		s.pending = nil
	}
}

// final checks a session as Cassandra holds it after the run.
func (c *Checker) final(r Record) {
	s := c.session(r.Session)
	c.rep.FinalChecked++
	if r.Obs == nil {
		return
	}
	o := *r.Obs
	o.Restored = true
	if o.Problem != "" {
		c.violate(I2, "undecodable", s, r.End, []int64{r.Seq},
			"the persisted items are not a state the reference node wrote (%s): %s", o.Problem, strings.Join(o.Raw, " "))
		return
	}
	if o.Ended && o.Found {
		ended := false
		for n := s.tip(); n != nil && n.kind != kAbsent; n = n.parent {
			if n.kind == kEnded {
				ended = true
				break
			}
			if n.kind == kLive && n.parent != nil && n.parent.kind != kLive {
				break // this generation's create: an earlier generation's End does not count
			}
		}
		if !ended {
			c.violate(I4, "ended_row_with_items", s, r.End, []int64{r.Seq},
				"the ownership row is marked ended (epoch %d) but the session was never ended and its items persist (version %d): an adoption would answer not found",
				o.Epoch, o.Version)
		}
	}
	c.observe(s, r, o, r.End)
}
