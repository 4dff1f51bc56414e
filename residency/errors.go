package residency

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of residency.
var (
	// ErrNotFound: no session with that ID is persisted (it never existed,
	// ended, or expired).
	ErrNotFound = errors.New("session not found")
	// ErrOwnedElsewhere: another node owns the session. The *OwnedElsewhereError
	// that carries it names the node, so the host can forward the event.
	ErrOwnedElsewhere = errors.New("session owned by another node")
	// ErrAlreadyOwned: this node already owns the session.
	ErrAlreadyOwned = errors.New("session already owned by this node")
	// ErrFenced: this node could not renew its lease and has stopped acting as
	// an owner until it can.
	ErrFenced = errors.New("node fenced: lease not renewed")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("residency manager closed")
	// ErrNodeIDInUse: another live process holds this node ID's lease. The
	// *NodeIDInUseError that carries it says since when.
	ErrNodeIDInUse = errors.New("node ID in use by another live process")
	// ErrReplaced: while this process was paused past its lease, another
	// process took over its node ID. It stays fenced for good; close it.
	// It matches ErrFenced too.
	ErrReplaced = fmt.Errorf("%w for good: node ID taken over by another process", ErrFenced)
	// ErrCreationLapsed: this node fenced while it was recording a new
	// session's ownership. Its pending changes were discarded by the fence
	// (a peer may have started the session afresh meanwhile); the record, if
	// it landed, is void (see Lease.Since) and must not be written to. It
	// matches ErrFenced too.
	ErrCreationLapsed = fmt.Errorf("%w while recording a new session: its changes were discarded", ErrFenced)
)

// NodeIDInUseError says that another process holds the node ID's lease and
// renewed it at RenewedAt: two processes with one node ID would adopt each
// other's sessions without fencing. Start waited for that lease to expire
// until its context ended (Err).
type NodeIDInUseError struct {
	Node        string
	Incarnation string
	RenewedAt   time.Time
	Err         error
}

func (e *NodeIDInUseError) Error() string {
	return fmt.Sprintf("node ID %q is in use by another live process (incarnation %s, lease renewed at %s); "+
		"stop it, wait for its lease to expire, or give this process another node ID: %v",
		e.Node, e.Incarnation, e.RenewedAt.Format(time.RFC3339Nano), e.Err)
}

// Unwrap makes errors.Is(err, ErrNodeIDInUse) true, and errors.Is(err,
// context.DeadlineExceeded) when the wait timed out.
func (e *NodeIDInUseError) Unwrap() []error { return []error{ErrNodeIDInUse, e.Err} }

// OwnedElsewhereError names the node that owns a session. Live is true when
// that node's lease was live (the event may be forwarded to it); Raced is true
// when this node lost a claim race to it. Stored is true when a creation
// found state stored under a row naming this node that this process does not
// hold (an earlier incarnation's, or this process's before a fence): Owner is
// this node, and the host must Adopt the session rather than create it.
type OwnedElsewhereError struct {
	Session string
	Owner   string
	Epoch   uint64
	Live    bool
	Raced   bool
	Stored  bool
}

func (e *OwnedElsewhereError) Error() string {
	switch {
	case e.Session == "" && e.Live: // a takeover of a live node
		return fmt.Sprintf("node %q is live (its lease has not expired)", e.Owner)
	case e.Raced:
		return fmt.Sprintf("session %q was adopted by node %q (epoch %d) first", e.Session, e.Owner, e.Epoch)
	case e.Stored:
		return fmt.Sprintf("session %q has state stored earlier by this node %q (epoch %d): adopt it, not create it", e.Session, e.Owner, e.Epoch)
	case e.Live:
		return fmt.Sprintf("session %q is owned by live node %q (epoch %d)", e.Session, e.Owner, e.Epoch)
	}
	return fmt.Sprintf("session %q is owned by node %q (epoch %d)", e.Session, e.Owner, e.Epoch)
}

// Unwrap makes errors.Is(err, ErrOwnedElsewhere) true.
func (e *OwnedElsewhereError) Unwrap() error { return ErrOwnedElsewhere }
