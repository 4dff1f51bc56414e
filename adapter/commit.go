package adapter

import (
	"context"
	"errors"
	"fmt"
	"unsafe"

	"github.com/holdover/holdover/buffer"
)

// Change is one change of a committed transaction: a put of Value under Key,
// or a delete of Key.
type Change struct {
	// Key names the item inside its session: 1 to HOLDOVER_MAX_KEY_BYTES
	// bytes of valid UTF-8.
	Key string
	// Value is the item's new value, up to HOLDOVER_MAX_VALUE_BYTES; ignored
	// when Delete is set. An empty value is stored as present and empty.
	// Commit copies it: the caller may reuse the slice once Commit returns.
	Value []byte
	// Delete removes the item instead of writing Value.
	Delete bool
}

// Change and buffer.Change have one underlying type (this conversion compiles
// only then), so a slice of one is a slice of the other: Commit hands the
// host's changes to the buffer without copying them.
var _ = buffer.Change(Change{})

func bufferChanges(cs []Change) []buffer.Change {
	return unsafe.Slice((*buffer.Change)(unsafe.Pointer(unsafe.SliceData(cs))), len(cs))
}

// Commit records a committed transaction of session: the latest value of each
// changed key is flushed to Cassandra within the flush delay, atomically with
// the session's other dirty keys. Call it from the in-memory database's commit
// hook, in commit order per session.
//
// Commit never does I/O and never waits for Cassandra. It applies the whole
// transaction or nothing: bad input returns a *LimitError (ErrInvalidInput),
// a full buffer ErrBufferFull, a backlog that would outlive
// HOLDOVER_MAX_WINDOW ErrOverloaded, a session over its family's max=
// ErrSessionTooLarge, a closed adapter ErrClosed; the host
// rolls the transaction back and refuses the event. The caller may reuse the
// values' memory as soon as it returns.
func (a *Adapter) Commit(session string, changes ...Change) error {
	// The limits are checked by the buffer (CheckSession, CheckChange), only for what its
	// fast path has not seen: an update of a dirty key with a value of the
	// same size was checked when the key entered.
	if session == "" {
		return translate(a.limits.CheckSession(session))
	}
	return translate(a.buf.Commit(session, bufferChanges(changes)...))
}

// checkSession is the buffer's CheckSession, run when the buffer holds
// nothing of a session: the session ID against the limits, and, while
// ownership creations are backed up, the admission of a session this node
// does not own yet (HOLDOVER_MAX_CONCURRENT_CREATES).
func (a *Adapter) checkSession(session string) error {
	if err := a.checkID(session); err != nil {
		return err
	}
	if !a.res.AdmitNew(session) {
		return errCreationsBusy
	}
	return nil
}

// checkID is what checkSession and CheckNew both check first: the session
// ID against the limits, and that it is not a shared family's.
func (a *Adapter) checkID(session string) error {
	if err := a.limits.CheckSession(session); err != nil {
		return translate(err)
	}
	if f := a.fams.of(session); f != nil && f.Shared {
		return errSharedSession(session, f)
	}
	return nil
}

// CheckNew returns the error a Commit to session would get now for want of
// room, before the host does any work for a new session: nil when this node
// owns session or would admit it; a *LimitError (ErrInvalidInput) for a bad
// ID; ErrOverloaded while its family's unwritten changes would outlive
// HOLDOVER_MAX_WINDOW or while ownership creations are backed up
// (HOLDOVER_MAX_CONCURRENT_CREATES). It does no I/O and applies nothing; the
// Commit that follows may still be refused. A host that looks up a new
// session's ID in Cassandra before creating it (Adopt, to replace a stale
// session under that ID) calls CheckNew first: otherwise a burst of new
// sessions it refuses costs Cassandra a read each, which on a slow node
// starves the creations and writes of the sessions it admitted.
//
// It checks the family's window bound itself, which Commit leaves to its
// buffer, and does not count the session as admitted.
func (a *Adapter) CheckNew(session string) error {
	if err := a.checkID(session); err != nil {
		return err
	}
	if err := a.buf.Overloaded(session); err != nil {
		return translate(err)
	}
	if !a.res.WouldAdmitNew(session) {
		return errCreationsBusy
	}
	return nil
}

// errCreationsBusy refuses a new session while ownership creations are
// backed up.
var errCreationsBusy = fmt.Errorf("%w: new sessions wait while ownership creations are backed up (HOLDOVER_MAX_CONCURRENT_CREATES); sessions already owned are accepted", ErrOverloaded)

// checkChange is the buffer's CheckChange: a key and value against the
// configured limits and Cassandra's column types.
func (a *Adapter) checkChange(key string, value []byte, del bool) error {
	if del {
		value = nil
	}
	return translate(a.limits.CheckItem(key, value))
}

// End ends a session: its persisted state and ownership row are deleted at
// the next flush, superseding every pending change of it. Changes committed
// after End start the session afresh.
func (a *Adapter) End(session string) error {
	if err := a.limits.CheckSession(session); err != nil {
		return translate(err)
	}
	return translate(a.buf.End(session))
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
// That includes the changes of shared families (CommitShared, EndShared).
func (a *Adapter) Flush(ctx context.Context) error {
	if a.sharedBuf == nil {
		return translate(a.buf.Flush(ctx))
	}
	shared := make(chan error, 1)
	go func() { shared <- a.sharedBuf.Flush(ctx) }()
	err := a.buf.Flush(ctx)
	return translate(errors.Join(err, <-shared))
}
