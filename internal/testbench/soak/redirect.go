package soak

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// resync learns what the owner holds after an operation whose outcome is
// unknown (or that answered a version the workload did not expect).
func (d *driver) resync(ctx context.Context, s *session, dr draw) {
	if s.owner < 0 {
		s.needResync = false
		return
	}
	if !d.up(s.owner) {
		d.redirect(ctx, s, dr)
		return
	}
	if d.read(ctx, s) {
		d.adopt(ctx, s, s.owner, false, OpAdopt)
	}
}

// redirect moves a session whose owner is gone (down, paused, draining or
// restarted) to a node that adopts it, as a load balancer redirects.
func (d *driver) redirect(ctx context.Context, s *session, dr draw) {
	from := s.owner
	st, inc := d.view.get(from)
	except := from
	if st == nodeUp {
		except = -1 // restarted: it may adopt its own sessions again
	}
	target := d.pick(s, except)
	if target < 0 {
		return
	}
	force := (st == nodeDown || st == nodePaused) && dr.r < d.cfg.ForceRedirectRatio
	if dr.a%2 == 0 && st != nodeDown && st != nodeDraining {
		// Paused, or replaced while paused: once the old process wakes,
		// does it acknowledge anything for the session?
		if h, ok := s.held[from]; ok && (h.inc == inc || h.inc == d.view.zombieOf(from).inc) {
			s.probe = from
		}
	}
	if !force && dr.b%4 == 1 && st != nodeUp {
		if other := d.pick(s, from); other >= 0 && other != target {
			d.race(ctx, s, [2]int{target, other})
			return
		}
	}
	kind := OpAdopt
	if force {
		kind = OpForceAdopt
	}
	d.adopt(ctx, s, target, force, kind)
}

// race asks two nodes at once to adopt s: exactly one may win; the other
// must be told the winner (409). Both answers are recorded (OpAdoptRace).
func (d *driver) race(ctx context.Context, s *session, targets [2]int) {
	from := d.name(s.owner)
	var recs [2]Record
	var answers [2]answer
	var wg sync.WaitGroup
	for k, t := range targets {
		s.sseq++
		recs[k] = Record{Type: RecOp, Session: s.id, SSeq: s.sseq, Gen: s.gen, Kind: OpAdoptRace, Node: d.name(t), From: from,
			Detail: fmt.Sprintf("racing %s", d.name(targets[1-k]))}
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[k] = d.claim(ctx, &recs[k], t, from)
		}()
	}
	wg.Wait()
	won := false
	for k, t := range targets {
		a := answers[k]
		switch recs[k].Outcome {
		case OutObserved:
			if !won {
				recs[k].Obs = d.observe(s, t, a)
				won = true
			} else {
				recs[k].Obs = observed(a.View) // a second winner: the checker will say
			}
		case OutAbsent:
			if !won {
				d.gone(s)
			}
		}
		d.hist.Add(recs[k])
	}
}

// claim is one racer: GET ?adopt=true on target, retried while the dead
// owner's lease is live, until it wins, loses (a 409 naming a live node),
// finds nothing, or the deadline passes. It fills rec and touches no
// session state.
func (d *driver) claim(ctx context.Context, rec *Record, target int, from string) answer {
	rec.Start = time.Now()
	deadline := rec.Start.Add(d.cfg.LeaseTTL + 6*time.Second)
	for {
		rec.Attempts++
		a := d.cl.get(ctx, d.view.urlOf(target), rec.Session, true, "")
		rec.End, rec.Status, rec.Err = time.Now(), a.Status, a.errText()
		switch {
		case a.Err == nil && a.Status == http.StatusOK:
			rec.Outcome = OutObserved
			return a
		case a.Status == http.StatusNotFound:
			rec.Outcome = OutAbsent
			return a
		case a.Status == http.StatusConflict && d.up(d.index(a.Owner)):
			// Lost to the other racer, or the dead owner is back (restarted):
			// a live node is named; the next step follows the 409.
			rec.Outcome = OutRefused
			return a
		}
		if ctx.Err() != nil || time.Now().Add(250*time.Millisecond).After(deadline) || !sleep(ctx, 250*time.Millisecond) {
			rec.Outcome = OutGaveUp
			return a
		}
	}
}

// adopt asks node target to adopt s (GET ?adopt=true), retrying while the
// previous owner's lease is live, until an answer settles it or the
// deadline (lease TTL + 6s) passes. A 409 naming a live node moves the
// request there. One record covers the attempts.
func (d *driver) adopt(ctx context.Context, s *session, target int, force bool, kind string) {
	rec := d.op(s, kind, target)
	rec.From, rec.Force = d.name(s.owner), force
	deadline := rec.Start.Add(d.cfg.LeaseTTL + 6*time.Second)
	waitedNeg := false
	pause := func(dt time.Duration) bool {
		select {
		case <-time.After(dt):
			return true
		case <-ctx.Done():
			return false
		}
	}
	// A forced adoption names the node believed gone: a peer that took the
	// session over meanwhile (its automatic takeover) is answered 409 and
	// followed, never dispossessed.
	forceFrom := ""
	if force && s.owner >= 0 {
		forceFrom = d.nodes[s.owner].ID
	}
	for {
		rec.Attempts++
		a := d.cl.get(ctx, d.view.urlOf(target), s.id, true, forceFrom)
		rec.Node, rec.Status, rec.Err = d.name(target), a.Status, a.errText()
		rec.End = time.Now()
		retry := 250 * time.Millisecond
		switch {
		case a.Err == nil && a.Status == http.StatusOK:
			rec.Outcome = OutObserved
			rec.Obs = d.observe(s, target, a)
			d.hist.Add(rec)
			return
		case a.Status == http.StatusNotFound:
			// A negative cache may answer 404 for a while after a lookup
			// (docs/node-api.md, caveats): ask once more after its TTL.
			if !waitedNeg && time.Until(deadline) > d.cfg.NegativeCacheTTL {
				waitedNeg = true
				retry = d.cfg.NegativeCacheTTL + 250*time.Millisecond
				break
			}
			rec.Outcome = OutAbsent
			d.gone(s)
			d.hist.Add(rec)
			return
		case a.Status == http.StatusConflict:
			// A live owner: ask it (it holds the session, or adopts it
			// from an earlier incarnation of itself).
			if o := d.index(a.Owner); o >= 0 && o != target && d.up(o) {
				delete(s.stale, o) // the ownership row names it
				target = o
				retry = 20 * time.Millisecond
			}
		case a.Err != nil && !d.up(target):
			if t := d.pick(s, target); t >= 0 {
				target = t
			}
		}
		if ctx.Err() != nil || time.Now().Add(retry).After(deadline) {
			rec.Outcome = OutGaveUp
			d.hist.Add(rec)
			return
		}
		if !pause(retry) {
			rec.Outcome = OutGaveUp
			d.hist.Add(rec)
			return
		}
	}
}

// forceLive adopts the session with force=true on another node while its
// owner is alive and holds it: the owner is dispossessed without knowing.
// The workload then never routes the session to it again (until it
// restarts); with one draw in two it sends it one probe event.
func (d *driver) forceLive(ctx context.Context, s *session, dr draw) {
	from := s.owner
	target := d.pick(s, from)
	if target < 0 {
		d.read(ctx, s)
		return
	}
	rec := d.op(s, OpForceLive, target)
	rec.From, rec.Force, rec.Attempts = d.name(from), true, 1
	a := d.cl.get(ctx, d.view.urlOf(target), s.id, true, d.nodes[from].ID)
	rec.End = time.Now()
	rec.Status, rec.Err = a.Status, a.errText()
	_, fromInc := d.view.get(from)
	switch {
	case a.Err != nil:
		rec.Outcome = OutUnknown
		s.stale[from] = fromInc
		s.owner = target
		_, s.inc = d.view.get(target)
		s.needResync = true
	case a.Status == http.StatusOK:
		rec.Outcome = OutObserved
		rec.Obs = d.observe(s, target, a)
		s.stale[from] = fromInc
		if dr.b%2 == 0 {
			s.probe = from
		}
	default:
		rec.Outcome = OutRefused
	}
	d.hist.Add(rec)
}

// sendProbe sends one update to a node that should no longer own the
// session (dispossessed by a forced adoption, or paused while peers adopted
// it), applied to what it was last seen holding. It reports whether it sent
// one; the probe is dropped when that node restarted meanwhile.
func (d *driver) sendProbe(ctx context.Context, s *session, dr draw) bool {
	i := s.probe
	h, ok := s.held[i]
	st, inc := d.view.get(i)
	url, name, old := d.view.urlOf(i), d.name(i), false
	if z := d.view.zombieOf(i); ok && h.inc != inc && h.inc == z.inc && z.state != nodeDown {
		// The process that held it was replaced: probe that one.
		st, inc, url, name, old = z.state, z.inc, z.url, d.name(i)+ZombieSuffix, true
	}
	if st == nodePaused || st == nodeDraining {
		return false // later
	}
	s.probe = -1
	if st != nodeUp || !ok || h.inc != inc || h.st == nil || (i == s.owner && !old) {
		return false
	}
	ev := Event{Type: EvUpdate, Attrs: map[string]string{"state": fmt.Sprintf("probe-%04x", dr.a&0xffff)}}
	s.sseq++
	rec := Record{Type: RecOp, Session: s.id, SSeq: s.sseq, Gen: s.gen, Kind: OpProbe, Node: name, Start: time.Now()}
	base := h.ref
	rec.Base = &base
	rec.Event = &ev
	a := d.cl.event(ctx, url, rec.Session, ev)
	rec.End = time.Now()
	rec.Status, rec.Err = a.Status, a.errText()
	switch {
	case a.Err != nil:
		rec.Outcome = OutUnknown
	case a.Status == http.StatusOK:
		rec.Outcome, rec.Version, rec.Adopted = OutAck, a.Result.Version, a.Result.Adopted
	case a.Status == http.StatusNotFound:
		rec.Outcome = OutAbsent
	default:
		rec.Outcome = OutRefused
	}
	if rec.Outcome == OutAck {
		next := apply(h.st, &ev)
		s.held[i] = held{ref: Ref{Version: a.Result.Version, Digest: next.Digest()}, st: next, inc: inc}
		if a.Result.Adopted && !old {
			// It adopted the session for real: it is the owner now.
			s.owner, s.inc, s.needResync = i, inc, true
			delete(s.stale, i)
		}
	}
	d.hist.Add(rec)
	return true
}
