package adapter

import (
	"context"
	"errors"

	"github.com/holdover/holdover/buffer"
)

// CloseReport says what Close could not write and how many sessions it
// released to peers.
type CloseReport struct {
	// Unwritten lists the sessions whose pending changes Close could not
	// write before ctx ended (they are lost unless the host commits them again
	// elsewhere).
	Unwritten buffer.Report
	// Released counts the sessions handed over to peers, which may adopt them
	// at once without waiting for this node's lease to expire.
	Released int
}

// Close refuses new commits (ErrClosed), drains the buffer until ctx ends,
// releases every session whose state it wrote, stops renewing the lease and
// closes the Cassandra session. Sessions left unwritten stay owned and become
// adoptable when the lease expires. Close is for graceful shutdown (SIGTERM).
func (a *Adapter) Close(ctx context.Context) (CloseReport, error) {
	var rep CloseReport
	if !a.closed.CompareAndSwap(false, true) {
		return rep, ErrClosed
	}
	drainCtx := ctx
	if a.res.Replaced() {
		// Another process holds this node ID: nothing can be written any
		// more, so do not wait for the deadline.
		c, cancel := context.WithCancel(ctx)
		cancel()
		drainCtx = c
	}
	unwritten, bufErr := a.buf.Close(drainCtx)
	rep.Unwritten = unwritten
	for _, u := range unwritten.Sessions {
		a.res.Forget(u.Session) // not released: its latest state is not persisted
	}
	released, relErr := a.res.ReleaseAll(context.WithoutCancel(ctx))
	rep.Released = released
	closeErr := a.res.Close(context.WithoutCancel(ctx), relErr == nil && len(unwritten.Sessions) == 0)
	a.tel.unregister()
	a.store.Close()
	a.log.Info("holdover: adapter closed", "node", a.cfg.NodeID, "released", released, "unwritten_sessions", len(unwritten.Sessions))
	return rep, errors.Join(bufErr, relErr, closeErr)
}
