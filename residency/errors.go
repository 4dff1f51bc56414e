package residency

import (
	"errors"
	"fmt"
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
)

// OwnedElsewhereError names the node that owns a session. Live is true when
// that node's lease was live (the event may be forwarded to it); Raced is true
// when this node lost a claim race to it.
type OwnedElsewhereError struct {
	Session string
	Owner   string
	Epoch   uint64
	Live    bool
	Raced   bool
}

func (e *OwnedElsewhereError) Error() string {
	switch {
	case e.Raced:
		return fmt.Sprintf("session %q was adopted by node %q (epoch %d) first", e.Session, e.Owner, e.Epoch)
	case e.Live:
		return fmt.Sprintf("session %q is owned by live node %q (epoch %d)", e.Session, e.Owner, e.Epoch)
	}
	return fmt.Sprintf("session %q is owned by node %q (epoch %d)", e.Session, e.Owner, e.Epoch)
}

// Unwrap makes errors.Is(err, ErrOwnedElsewhere) true.
func (e *OwnedElsewhereError) Unwrap() error { return ErrOwnedElsewhere }
