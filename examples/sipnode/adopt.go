package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/holdover/holdover/adapter"
)

// outcome is what resolve decided for a request whose session is not in
// memory: serve it (the session is resident now), or answer it with Status.
type outcome struct {
	Status     int
	Reason     string
	RetryAfter int // seconds, with 503
	Adopted    bool
	Held       time.Duration // how long the request waited for a live owner's lease
	AdoptTime  time.Duration // the successful Adopt call alone
}

// resolve makes the session of tx resident by adopting it, for a request
// that names a session this node does not hold (the proxy routed it here
// because its node died or drains). Its outcomes:
//
//   - adopted: restored into tx, serve the request;
//   - found nowhere (never created, ended, expired, or created less than the
//     flush window before its node died): 481, or, with createIfMissing,
//     serve it as new (a REGISTER for an unknown address of record);
//   - owned by a node whose lease is live: the request is held until that
//     lease expires (the owner is dead: Adopt waits for it, with
//     AdoptOptions.Wait, and adopts the moment it ends), or, when the lease
//     runs past the hold bound, answered at once: 503 with Retry-After (the
//     owner is alive and the request should have gone there);
//   - another node adopted it first, or this node is fenced: 503 with
//     Retry-After 1;
//   - Cassandra trouble: 503 with Retry-After 1 (Adopt is safe to retry).
func (n *Node) resolve(ctx context.Context, tx *Tx, session, method string, createIfMissing bool) outcome {
	began := time.Now()
	deadline := began.Add(n.cfg.Hold)
	for attempt := 0; ; attempt++ {
		if attempt > 0 && time.Now().After(deadline) {
			n.stats.holdTimeouts.Add(1)
			return outcome{Status: sip.StatusServiceUnavailable, Reason: "Ownership Unsettled", RetryAfter: 1}
		}
		t0 := time.Now()
		// Fresh when a "not found" creates the session: one this node
		// found absent moments ago (the negative cache) may have been
		// created by a peer since, and a create over it would be answered
		// 200 and then dropped as owned elsewhere.
		s, err := n.a.Adopt(ctx, session, adapter.AdoptOptions{Wait: time.Until(deadline), Fresh: createIfMissing})
		var owned *adapter.OwnedElsewhereError
		switch {
		case err == nil:
			if len(s.Items) == 0 && !createIfMissing {
				// Recorded, but nothing of it written: its node died between
				// recording it and its first flush. Nothing of it was durable,
				// and nothing is made resident: a later request must get 481
				// too, not an empty dialog.
				n.log.Info("adopted with nothing written", "session", session, "method", method, "from", s.PreviousOwner)
				return outcome{Status: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist"}
			}
			tx.Restore(s.Map())
			// The time Adopt waited for the owner's lease is the hold; the
			// rest, the adoption.
			o := outcome{Adopted: true, AdoptTime: time.Since(t0) - s.Waited, Held: s.Waited}
			if attempt > 0 {
				o.Held += t0.Sub(began)
			}
			n.stats.adoption(session, o)
			n.log.Info("adopted", "session", session, "method", method, "from", s.PreviousOwner,
				"epoch", s.Epoch, "items", len(s.Items), "held_ms", ms(o.Held), "adopt_ms", ms(o.AdoptTime))
			return o

		case errors.Is(err, adapter.ErrNotFound):
			if createIfMissing {
				return outcome{} // the first commit creates it
			}
			n.stats.notFound.Add(1)
			return outcome{Status: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist"}

		case errors.As(err, &owned) && owned.Live && !owned.Raced:
			if ctx.Err() != nil { // the wait was cut short
				return outcome{Status: sip.StatusServiceUnavailable, Reason: "Shutting Down", RetryAfter: 1}
			}
			// Its lease runs past the hold bound: the owner is alive.
			n.stats.holdTimeouts.Add(1)
			n.log.Warn("owner still live after the hold bound", "session", session, "method", method,
				"owner", owned.Owner, "held_ms", ms(time.Since(began)))
			return outcome{Status: sip.StatusServiceUnavailable, Reason: "Owned By " + owned.Owner, RetryAfter: 1}

		case errors.As(err, &owned):
			n.stats.raced.Add(1)
			n.log.Warn("adopted by another node first", "session", session, "owner", owned.Owner)
			return outcome{Status: sip.StatusServiceUnavailable, Reason: "Owned By " + owned.Owner, RetryAfter: 1}

		case errors.Is(err, adapter.ErrAlreadyOwned):
			// This node owns it but does not hold it: it ended moments ago (the
			// end is not flushed yet) or was dropped when the node fenced.
			// Make the adapter's view durable and read it back.
			if err := n.a.Flush(ctx); err != nil {
				return n.unavailable(session, method, err)
			}
			p, err := n.a.Peek(ctx, session)
			if errors.Is(err, adapter.ErrNotFound) {
				if createIfMissing {
					return outcome{}
				}
				return outcome{Status: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist"}
			}
			if err != nil {
				return n.unavailable(session, method, err)
			}
			if p.Owner != n.a.NodeID() {
				continue // adopted elsewhere meanwhile: ask again
			}
			if len(p.Items) == 0 && !createIfMissing { // as above: nothing of it was written
				return outcome{Status: sip.StatusCallTransactionDoesNotExists, Reason: "Call/Transaction Does Not Exist"}
			}
			tx.Restore(p.Map())
			return outcome{}

		default:
			return n.unavailable(session, method, err)
		}
	}
}

func (n *Node) unavailable(session, method string, err error) outcome {
	n.stats.adoptErrors.Add(1)
	n.log.Warn("adopt failed", "session", session, "method", method, "err", err)
	return outcome{Status: sip.StatusServiceUnavailable, Reason: "Service Unavailable", RetryAfter: 1}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// logAttrs is a request's identity for the log.
func logAttrs(req *sip.Request) []any {
	cid := ""
	if h := req.CallID(); h != nil {
		cid = h.Value()
	}
	return []any{slog.String("call_id", cid), slog.String("method", string(req.Method))}
}
