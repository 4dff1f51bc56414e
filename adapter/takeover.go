package adapter

import (
	"context"
	"fmt"
	"time"

	"github.com/holdover/holdover/residency"
)

// TakeoverOptions bounds a bulk takeover. The zero value takes over a dead
// node at HOLDOVER_ADOPT_RATE with 16 claims in flight.
type TakeoverOptions struct {
	// Rate is how many adoptions start per second. 0: HOLDOVER_ADOPT_RATE.
	Rate float64
	// Concurrency is how many claims (lightweight transactions) are in flight
	// at once; the fences of the sessions already claimed run beside them, as
	// many again. 0: 16.
	Concurrency int
	// Force takes the node's sessions over even if its lease is live (an
	// operator's takeover of a node known to be gone), forcing each adoption
	// away from that node only (AdoptOptions.From).
	Force bool
	// OnAdopted receives each session adopted, with its state, so the host
	// can restore it before its next event arrives. It is called from
	// several goroutines at once. An event's Adopt of the same session that
	// runs meanwhile shares the takeover's adoption, and gets the same state
	// too, perhaps before OnAdopted is called: restore only a session the
	// host has not got from elsewhere since the takeover began, or the
	// takeover's copy could replace what that event changed or ended (the
	// reference node, internal/testbench/node, shows one way).
	OnAdopted func(*Session)
	// Progress, when set, is called about once a second with the report so
	// far.
	Progress func(TakeoverReport)
}

// TakeoverReport says what a bulk takeover did.
type TakeoverReport struct {
	// Node is the node whose sessions were taken over.
	Node string
	// Listed counts the sessions the owner index listed under Node that the
	// takeover tried: Adopted + Skipped + Failed.
	Listed int
	// Adopted counts the sessions this node adopted.
	Adopted int
	// Skipped counts the sessions gone, ended, or already owned by another
	// node (or this one).
	Skipped int
	// Failed counts the adoptions that failed with an error; they stay listed
	// under Node, and a later takeover tries them again.
	Failed int
	// Errors holds up to 10 of those failures.
	Errors []error
	// Duration is the takeover's wall time.
	Duration time.Duration
}

func takeoverReport(r residency.TakeoverReport) TakeoverReport {
	out := TakeoverReport{Node: r.Node, Listed: r.Listed, Adopted: r.Adopted, Skipped: r.Skipped,
		Failed: r.Failed, Duration: r.Duration}
	for _, err := range r.Errors {
		out.Errors = append(out.Errors, translate(err))
	}
	return out
}

// Takeover adopts, at a bounded rate, every session owned by node, whose
// lease must have expired (unless opts.Force: otherwise it returns an
// *OwnedElsewhereError naming the live node), handing each to opts.OnAdopted
// so its state is warm here before redirected events arrive. A session that
// another node adopted meanwhile is skipped. It returns when every listed
// session was tried, or ctx ended (with the report so far and ctx's error).
// A node ID that no node may have (HOLDOVER_NODE_ID's rules), or this
// node's own, is refused with a *LimitError (ErrInvalidInput).
func (a *Adapter) Takeover(ctx context.Context, node string, opts TakeoverOptions) (TakeoverReport, error) {
	if err := a.checkTakeoverNode(node); err != nil {
		return TakeoverReport{Node: node}, err
	}
	if !a.enter() {
		return TakeoverReport{Node: node}, ErrClosed
	}
	defer a.calls.Done()
	ro := residency.TakeoverOptions{Rate: opts.Rate, Concurrency: opts.Concurrency, Force: opts.Force}
	if ro.Rate == 0 {
		ro.Rate = a.cfg.AdoptRate
	}
	if f := opts.OnAdopted; f != nil {
		ro.OnAdopted = func(got *residency.Adopted) { f(a.adopted(got)) }
	}
	if f := opts.Progress; f != nil {
		ro.Progress = func(r residency.TakeoverReport) { f(takeoverReport(r)) }
	}
	rep, err := a.res.Takeover(ctx, node, ro)
	return takeoverReport(rep), translate(err)
}

// checkTakeoverNode checks the node ID a takeover names.
func (a *Adapter) checkTakeoverNode(node string) error {
	if node == a.cfg.NodeID {
		return &LimitError{Field: "node ID", Limit: maxNodeIDBytes, Got: len(node),
			Reason: fmt.Sprintf("%q is this node's own: a node cannot take over its own sessions", node)}
	}
	return nodeIDError("node ID", node)
}

// CheckNodeID returns nil when id can be a node's ID (HOLDOVER_NODE_ID's
// rules: 1 to 64 bytes of [A-Za-z0-9._:-]), and otherwise a *LimitError
// naming the field "node ID" and what is wrong.
func CheckNodeID(id string) error { return nodeIDError("node ID", id) }

// nodeIDError is CheckNodeID for a node ID given as field.
func nodeIDError(field, id string) error {
	if validNodeID(id) {
		return nil
	}
	e := &LimitError{Field: field, Limit: maxNodeIDBytes, Got: len(id)}
	if len(id) > 0 && len(id) <= maxNodeIDBytes {
		e.Reason = fmt.Sprintf("%q must be bytes of [A-Za-z0-9._:-] (HOLDOVER_NODE_ID's rules)", id)
	}
	return e
}
