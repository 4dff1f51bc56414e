package adapter

import (
	"errors"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Sentinel errors, tested with errors.Is.
var (
	// ErrNotFound: Adopt or Peek found no persisted session with that ID.
	ErrNotFound = residency.ErrNotFound
	// ErrOwnedElsewhere: another node owns the session; the error is an
	// *OwnedElsewhereError naming it, so the host can forward the event.
	ErrOwnedElsewhere = residency.ErrOwnedElsewhere
	// ErrAlreadyOwned: Adopt was called for a session this node owns.
	ErrAlreadyOwned = residency.ErrAlreadyOwned
	// ErrFenced: this node's lease lapsed; it does not adopt or flush until it
	// renews (OnFenced told the host which sessions it may have lost).
	ErrFenced = residency.ErrFenced
	// ErrBufferFull: the commit would push pending state over
	// HOLDOVER_MAX_PENDING_BYTES. Nothing of it was applied; it is counted.
	ErrBufferFull = buffer.ErrBufferFull
	// ErrOverloaded: flushes cannot keep unwritten changes within
	// HOLDOVER_MAX_WINDOW (a backlog, Cassandra slow or down), so the commit
	// was refused rather than acknowledged and maybe lost beyond the window.
	// Nothing of it was applied; it is counted. Retryable: the host should
	// reject the request it is handling (a SIP 503 with Retry-After, an HTTP
	// 503) and let the client retry.
	ErrOverloaded = buffer.ErrOverloaded
	// ErrNodeIDInUse: Open found another live process holding this node ID's
	// lease and gave up waiting for it (its context ended). Two processes must
	// never share a node ID: stop the other one or give this one its own
	// HOLDOVER_NODE_ID.
	ErrNodeIDInUse = residency.ErrNodeIDInUse
	// ErrReplaced: this process was paused past its lease and another process
	// with the same node ID took over meanwhile. It stays fenced for good; it
	// matches ErrFenced too. Close it.
	ErrReplaced = residency.ErrReplaced
	// ErrClosed: the adapter is closed.
	ErrClosed = buffer.ErrClosed
	// ErrInvalidInput: an empty or over-long session ID or key, a session ID
	// or key that is not valid UTF-8 (Cassandra stores them as text), or a
	// value over HOLDOVER_MAX_VALUE_BYTES; the error is a *LimitError naming
	// the field and the limit or the reason. Nothing of the call was applied.
	ErrInvalidInput = store.ErrInvalidInput
	// ErrNoKeyspace: OpenInspector reached Cassandra, but the configured keyspace
	// (HOLDOVER_KEYSPACE) does not exist there: no node has run with it yet, or
	// HOLDOVER_CREATE_SCHEMA=false and it was never created.
	ErrNoKeyspace = errors.New("keyspace does not exist")
)

// OwnedElsewhereError names the node that owns a session (Owner), whether its
// lease was live, and whether this node lost a claim race to it.
type OwnedElsewhereError = residency.OwnedElsewhereError

// LimitError names the field ("session ID", "key", "value") and the limit a
// call exceeded, or the reason it was refused (Reason, e.g. "must be valid
// UTF-8").
type LimitError = store.LimitError
