package adapter

import (
	"context"
	"fmt"
)

// Commit records a committed transaction of session: the latest value of each
// changed key is flushed to Cassandra within the flush delay, atomically with
// the session's other dirty keys. Call it from the in-memory database's commit
// hook, in commit order per session.
//
// Commit never does I/O and never waits for Cassandra. It applies the whole
// transaction or nothing: bad input returns a *LimitError (ErrInvalidInput),
// a full buffer ErrBufferFull, a closed adapter ErrClosed. The caller may
// reuse the values' memory as soon as it returns.
func (a *Adapter) Commit(session string, changes ...Change) error {
	if err := a.limits.CheckSession(session); err != nil {
		return err
	}
	for i := range changes {
		c := &changes[i]
		var v []byte
		if !c.Delete {
			v = c.Value
		}
		if err := a.limits.CheckItem(c.Key, v); err != nil {
			return fmt.Errorf("change %d: %w", i, err)
		}
	}
	return a.buf.Commit(session, changes...)
}

// End ends a session: its persisted state and ownership row are deleted at
// the next flush, superseding every pending change of it. Changes committed
// after End start the session afresh.
func (a *Adapter) End(session string) error {
	if err := a.limits.CheckSession(session); err != nil {
		return err
	}
	return a.buf.End(session)
}

// LeaseValid reports whether this node may act as an owner now: its lease
// is renewed and it is not fenced. Commit does not check it (Commit must stay
// as cheap as a map assignment); a host that must not acknowledge changes it
// may no longer own checks it once per event, before acknowledging. After a
// pause longer than the lease TTL it returns false and makes the node fence
// and recover at once (OnFenced, then OnRecovered).
func (a *Adapter) LeaseValid() bool { return a.res.LeaseValid() }

// Flush returns when everything committed before the call is durable in
// Cassandra (or was dropped and reported through OnDropped), or ctx ends.
func (a *Adapter) Flush(ctx context.Context) error { return a.buf.Flush(ctx) }
