package adapter

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors, tested with errors.Is. Every error the adapter returns or
// hands to a hook is expressed in these (and in the typed errors below): the
// building blocks' own errors are translated where they cross into the
// adapter, so a host never tests against package buffer or residency.
var (
	// ErrNotFound: Adopt or Peek found no persisted session with that ID (it
	// never existed, ended, or expired). The host may create it.
	ErrNotFound = errors.New("holdover: session not found")
	// ErrOwnedElsewhere: another node owns the session; the error is an
	// *OwnedElsewhereError naming it, so the host can forward the event.
	ErrOwnedElsewhere = errors.New("holdover: session owned by another node")
	// ErrAlreadyOwned: Adopt was called for a session this node owns already
	// (the host dropped or never had its in-memory copy). Flush, then Peek to
	// reload it; do not Adopt it again.
	ErrAlreadyOwned = errors.New("holdover: session already owned by this node")
	// ErrFenced: this node's lease lapsed; it does not adopt or flush until it
	// renews (OnFenced told the host which sessions it may have lost, and
	// OnRecovered will say which of them it did lose).
	ErrFenced = errors.New("holdover: node fenced: lease not renewed")
	// ErrReplaced: this process was paused past its lease and another process
	// with the same node ID took over meanwhile. It stays fenced for good; it
	// matches ErrFenced too. Close it.
	ErrReplaced = fmt.Errorf("%w for good: node ID taken over by another process", ErrFenced)
	// ErrNodeIDInUse: Open found another live process holding this node ID's
	// lease and gave up waiting for it (its context ended); the error is a
	// *NodeIDInUseError. Two processes must never share a node ID: stop the
	// other one or give this one its own HOLDOVER_NODE_ID.
	ErrNodeIDInUse = errors.New("holdover: node ID in use by another live process")
	// ErrBufferFull: the commit would push pending state over
	// HOLDOVER_MAX_PENDING_BYTES. Nothing of it was applied; it is counted.
	ErrBufferFull = errors.New("holdover: buffer full: pending bytes would exceed HOLDOVER_MAX_PENDING_BYTES")
	// ErrOverloaded: flushes cannot keep unwritten changes within
	// HOLDOVER_MAX_WINDOW (a backlog, Cassandra slow or down), so the commit
	// was refused rather than acknowledged and maybe lost beyond the window.
	// Nothing of it was applied; it is counted. Retryable: the host should
	// reject the request it is handling (a SIP 503 with Retry-After, an HTTP
	// 503) and let the client retry.
	ErrOverloaded = errors.New("holdover: overloaded: unwritten changes would outlive HOLDOVER_MAX_WINDOW")
	// ErrSessionTooLarge: the commit would make the session's unwritten
	// changes exceed its family's largest session (HOLDOVER_FAMILIES max=);
	// the message names the session, the family, the size and the limit.
	// Nothing of it was applied; it is counted. Refuse the event. A retry
	// may pass once the session's pending changes are written (they are
	// written at once at the bound), unless the change alone exceeds it:
	// then the error matches ErrInvalidInput too, and no retry can pass.
	ErrSessionTooLarge = errors.New("holdover: session too large for its family (HOLDOVER_FAMILIES max=)")
	// ErrClosed: the adapter is closed (or is closing: a call racing Close
	// returns it too).
	ErrClosed = errors.New("holdover: adapter closed")
	// ErrInvalidInput: an empty or over-long session ID or key, a session ID
	// or key that is not valid UTF-8 (Cassandra stores them as text), or a
	// value over HOLDOVER_MAX_VALUE_BYTES; the error is a *LimitError naming
	// the field and the limit or the reason. Nothing of the call was applied.
	ErrInvalidInput = errors.New("holdover: invalid input")
	// ErrCorrupt: a stored row of the session cannot be decoded. It is
	// reported for that session only; the node keeps running.
	ErrCorrupt = errors.New("holdover: stored row cannot be decoded")
	// ErrNoKeyspace: holdover-inspect reached Cassandra, but the configured keyspace
	// (HOLDOVER_KEYSPACE) does not exist there: no node has run with it yet, or
	// HOLDOVER_CREATE_SCHEMA=false and it was never created.
	ErrNoKeyspace = errors.New("keyspace does not exist")
)

// OwnedElsewhereError says that another node owns a session: Adopt returns it
// when a live node owns the session (forward the event to Owner) or when
// another node won the race to adopt it (Raced; forward the event too), and
// Takeover when the node to take over is still live. Hooks.OnDropped reports
// it when a new session's ID was taken; with Stored set, by state this very
// node stored earlier, to be adopted rather than created.
type OwnedElsewhereError struct {
	// Session is the session's ID; empty when Takeover refused a live node.
	Session string
	// Owner is the node that owns the session.
	Owner string
	// Epoch is the ownership epoch Owner holds the session at.
	Epoch uint64
	// Live is true when Owner's lease was live: the event may be forwarded to
	// it. False only when Owner won a claim race (Raced).
	Live bool
	// Raced is true when this node lost a concurrent claim to Owner.
	Raced bool
	// Stored is true when Owner is this very node: the host committed to a
	// session as new whose ID has state stored by an earlier incarnation of
	// this node (or by this process before a fence dropped it). The new
	// changes were dropped (Hooks.OnDropped); Adopt the session to get the
	// stored state, then apply the event to it.
	Stored bool
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

// LimitError is an input the adapter refuses (it wraps ErrInvalidInput).
// Commit and End refuse the whole call; the message of an error from Commit
// also names the change ("change 1: ...").
type LimitError struct {
	// Field names what was wrong: "session ID", "key" or "value" (or
	// "node ID", the node a Takeover names, or "AdoptOptions.From").
	Field string
	// Limit is the field's limit in bytes (HOLDOVER_MAX_SESSION_ID_BYTES,
	// HOLDOVER_MAX_KEY_BYTES, HOLDOVER_MAX_VALUE_BYTES; 64 for a node ID).
	Limit int
	// Got is the field's length in bytes.
	Got int
	// Reason is empty when the length is at fault; otherwise it says what the
	// field must be ("must be valid UTF-8": session IDs and keys are CQL text).
	Reason string
}

func (e *LimitError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s", e.Field, e.Reason)
	}
	if e.Got == 0 {
		return fmt.Sprintf("%s is empty; it must be 1 to %d bytes", e.Field, e.Limit)
	}
	return fmt.Sprintf("%s is %d bytes, over the limit of %d bytes", e.Field, e.Got, e.Limit)
}

// Unwrap makes errors.Is(err, ErrInvalidInput) true.
func (e *LimitError) Unwrap() error { return ErrInvalidInput }

// NodeIDInUseError is Open's error when another live process holds this node
// ID's lease (it wraps ErrNodeIDInUse). Two processes with one node ID would
// adopt each other's sessions without fencing, so Open waits for the other
// lease to expire (a process that was SIGKILLed: up to HOLDOVER_LEASE_TTL)
// and gives up with this error when its context ends first.
type NodeIDInUseError struct {
	// Node is the node ID in use.
	Node string
	// Incarnation identifies the other process's lease.
	Incarnation string
	// RenewedAt is when the other process last renewed that lease.
	RenewedAt time.Time
	// Err is why Open stopped waiting (its context's error).
	Err error
}

func (e *NodeIDInUseError) Error() string {
	return fmt.Sprintf("node ID %q is in use by another live process (incarnation %s, lease renewed at %s); "+
		"stop it, wait for its lease to expire, or give this process another node ID: %v",
		e.Node, e.Incarnation, e.RenewedAt.Format(time.RFC3339Nano), e.Err)
}

// Unwrap makes errors.Is(err, ErrNodeIDInUse) true, and errors.Is(err,
// context.DeadlineExceeded) when the wait timed out.
func (e *NodeIDInUseError) Unwrap() []error { return []error{ErrNodeIDInUse, e.Err} }
