package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

// session is the workload's account of one session ID. Only its worker
// touches it.
type session struct {
	id    string
	plan  *planner
	route *rand.Rand // routing choices, apart from the plan's stream

	sseq    int
	gen     int  // creates that may have taken effect
	live    bool // exists, as far as the workload knows
	state   *State
	version uint64
	owner   int // node index the session is believed resident on; -1 none
	inc     int // the owner's incarnation when last seen holding it

	needResync bool         // the outcome of the last operation is unknown
	held       map[int]held // what each node was last seen to hold in memory
	stale      map[int]int  // nodes dispossessed by a forced adoption -> their incarnation then
	probe      int          // node to send a probe event to (or to its replaced process); -1 none
	createAt   int          // node a 409 named on create; -1 none
	wait       int          // steps to wait before the next create
	events     int          // events in this generation
	genLen     int          // events before the end
}

type held struct {
	ref Ref
	st  *State
	inc int
}

func (s *session) ref() *Ref {
	if s.state == nil {
		return nil
	}
	return &Ref{Version: s.version, Digest: s.state.Digest()}
}

// driver runs the workload's sessions.
type driver struct {
	cfg   Config
	hist  *History
	cl    client
	nodes []NodeInfo
	view  *view
	byID  map[string]int // node ID and name -> index
}

func (d *driver) name(i int) string {
	if i < 0 {
		return ""
	}
	return d.nodes[i].Name
}

func (d *driver) index(idOrName string) int {
	if i, ok := d.byID[idOrName]; ok {
		return i
	}
	return -1
}

// usable reports whether node i is up in incarnation inc.
func (d *driver) usable(i, inc int) bool {
	if i < 0 {
		return false
	}
	st, cur := d.view.get(i)
	return st == nodeUp && cur == inc
}

func (d *driver) up(i int) bool {
	if i < 0 {
		return false
	}
	st, _ := d.view.get(i)
	return st == nodeUp
}

// pick chooses an up node for s, not one holding a stale copy of it and not
// except; -1 when there is none.
func (d *driver) pick(s *session, except int) int {
	var cands []int
	for i := range d.nodes {
		st, inc := d.view.get(i)
		if st != nodeUp || i == except {
			continue
		}
		if si, ok := s.stale[i]; ok && si == inc {
			continue
		}
		cands = append(cands, i)
	}
	if len(cands) == 0 {
		return -1
	}
	return cands[s.route.IntN(len(cands))]
}

func (d *driver) op(s *session, kind string, node int) Record {
	s.sseq++
	return Record{Type: RecOp, Session: s.id, SSeq: s.sseq, Gen: s.gen, Kind: kind, Node: d.name(node), Start: time.Now()}
}

func (d *driver) observe(s *session, i int, v answer) *Observed {
	o := observed(v.View)
	s.live, s.state, s.version = true, o.State, o.Version
	s.owner = i
	_, s.inc = d.view.get(i)
	s.held[i] = held{ref: Ref{Version: o.Version, Digest: o.Digest}, st: o.State, inc: s.inc}
	s.needResync = false
	delete(s.stale, i)
	return o
}

func (d *driver) gone(s *session) {
	s.live, s.state, s.version, s.needResync = false, nil, 0, false
}

// step runs one operation of s; each step takes one draw of the plan.
func (d *driver) step(ctx context.Context, s *session) {
	dr := s.plan.draw()
	switch {
	case s.needResync:
		d.resync(ctx, s, dr)
	case s.live && !d.usable(s.owner, s.inc):
		d.redirect(ctx, s, dr)
	case s.probe >= 0 && d.sendProbe(ctx, s, dr):
	case !s.live:
		if s.wait > 0 {
			s.wait--
			return
		}
		d.create(ctx, s, dr)
	default:
		d.liveOp(ctx, s, dr)
	}
}

func (d *driver) create(ctx context.Context, s *session, dr draw) {
	target := s.createAt
	if target < 0 || !d.up(target) {
		target = d.pick(s, -1)
	}
	s.createAt = -1
	if target < 0 {
		return
	}
	ev := Event{Type: EvCreate, Attrs: map[string]string{
		"state": "new", "peer": fmt.Sprintf("p%04x", dr.a&0xffff), "gen": strconv.Itoa(s.gen + 1),
	}}
	rec := d.op(s, OpCreate, target)
	rec.Gen = s.gen + 1
	a := d.send(ctx, &rec, target, ev)
	switch rec.Outcome {
	case OutAck:
		s.gen++
		s.live, s.state, s.version = true, apply(nil, &ev), a.Result.Version
		s.owner = target
		_, s.inc = d.view.get(target)
		s.events, s.genLen = 0, 15+int(dr.b%76)
		s.held[target] = held{ref: *s.ref(), st: s.state, inc: s.inc}
		if a.Result.Version != 1 {
			s.needResync = true
		}
	case OutUnknown:
		s.gen++
		s.owner = target
		_, s.inc = d.view.get(target)
		s.events, s.genLen = 0, 15+int(dr.b%76)
		s.needResync = true
	case OutRefused:
		if a.Status == http.StatusConflict {
			s.createAt = d.index(a.Owner)
			if s.createAt == target {
				// Resident there: the session exists after all (the
				// workload missed it); read what the node holds.
				s.owner, s.needResync = target, true
				_, s.inc = d.view.get(target)
				delete(s.stale, target)
			}
		}
	}
	d.hist.Add(rec)
}

// liveOp is the next planned operation of a live session on its owner.
func (d *driver) liveOp(ctx context.Context, s *session, dr draw) {
	if s.events >= s.genLen {
		d.event(ctx, s, dr, Event{Type: EvEnd}, OpEnd)
		return
	}
	k1 := attrKeys[dr.a%uint32(len(attrKeys))]
	switch r := dr.r; {
	case r < d.cfg.ForceLiveRatio:
		d.forceLive(ctx, s, dr)
	case r < 0.345:
		attrs := map[string]string{k1: fmt.Sprintf("v%d-%04x", s.version+1, dr.b&0xffff)}
		if dr.a>>8%2 == 0 {
			attrs[attrKeys[(dr.a>>9)%uint32(len(attrKeys))]] = fmt.Sprintf("w%d-%04x", s.version+1, dr.b>>16)
		}
		d.event(ctx, s, dr, Event{Type: EvUpdate, Attrs: attrs}, OpUpdate)
	case r < 0.685:
		d.appendEntry(ctx, s, dr)
	case r < 0.785:
		d.event(ctx, s, dr, Event{Type: EvUnset, Keys: []string{k1}}, OpUnset)
	case r < 0.905:
		d.read(ctx, s)
	default:
		d.appendEntry(ctx, s, dr)
	}
}

func (d *driver) appendEntry(ctx context.Context, s *session, dr draw) {
	e := fmt.Sprintf("g%d-e%d-%06x", s.gen, s.version+1, dr.b&0xffffff)
	d.event(ctx, s, dr, Event{Type: EvAppend, Entry: &e}, OpAppend)
}

// send posts ev to node i and fills rec's outcome.
func (d *driver) send(ctx context.Context, rec *Record, i int, ev Event) answer {
	rec.Event = &ev
	a := d.cl.event(ctx, d.view.urlOf(i), rec.Session, ev)
	rec.End = time.Now()
	rec.Status, rec.Err = a.Status, a.errText()
	switch {
	case a.Err != nil:
		rec.Outcome = OutUnknown
	case a.Status == http.StatusOK:
		rec.Outcome, rec.Version, rec.Adopted = OutAck, a.Result.Version, a.Result.Adopted
	case a.Status == http.StatusNotFound && ev.Type != EvCreate:
		rec.Outcome = OutAbsent
	default:
		rec.Outcome = OutRefused
	}
	return a
}

// event sends an update, append, unset or end to the session's owner.
func (d *driver) event(ctx context.Context, s *session, dr draw, ev Event, kind string) {
	i := s.owner
	rec := d.op(s, kind, i)
	rec.Base = s.ref()
	a := d.send(ctx, &rec, i, ev)
	switch rec.Outcome {
	case OutAck:
		s.events++
		if ev.Type == EvEnd {
			d.gone(s)
			s.version = a.Result.Version
			s.wait = int(dr.b % 4)
			break
		}
		s.state, s.version = apply(s.state, &ev), a.Result.Version
		s.held[i] = held{ref: *s.ref(), st: s.state, inc: s.inc}
		if a.Result.Version != rec.Base.Version+1 || a.Result.Adopted {
			s.needResync = true // the node's base was another: read what it holds
		}
	case OutUnknown:
		s.needResync = true
	case OutAbsent:
		d.gone(s)
	case OutRefused:
		if a.Status == http.StatusConflict && a.Owner != "" {
			if o := d.index(a.Owner); o >= 0 {
				s.owner = o
				_, s.inc = d.view.get(o)
				delete(s.stale, o) // the ownership row names it: it owns the session
				s.needResync = true
			}
		}
	}
	d.hist.Add(rec)
}

// read reads the session on its owner (its memory).
func (d *driver) read(ctx context.Context, s *session) bool {
	i := s.owner
	rec := d.op(s, OpRead, i)
	a := d.cl.get(ctx, d.view.urlOf(i), s.id, false, "")
	rec.End = time.Now()
	rec.Status, rec.Err = a.Status, a.errText()
	switch {
	case a.Err != nil:
		rec.Outcome = OutUnknown
	case a.Status == http.StatusOK:
		rec.Outcome = OutObserved
		rec.Obs = d.observe(s, i, a)
	case a.Status == http.StatusNotFound:
		rec.Outcome = OutMiss
	default:
		rec.Outcome = OutRefused
	}
	d.hist.Add(rec)
	return rec.Outcome == OutMiss
}
