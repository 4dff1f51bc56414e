// Package adapter is the one package a session server imports to persist its
// in-memory session state behind its back, and to take over the sessions of a
// node that died.
//
// The host calls Commit from its in-memory database's commit hook. Commit
// never does I/O: it records the latest value of each changed key in a buffer
// that coalesces changes per (session, key) and, no later than the flush delay
// after a session's first unflushed change, writes that session's dirty items
// to Cassandra as one atomic single-partition batch. The persisted state of a
// session is therefore always a state it really had at some commit.
//
// When a node dies, its sessions stay in Cassandra. An event for one of them
// that reaches another node finds no local state there; the host calls Adopt,
// which claims the session (a compare-and-set on its ownership epoch: exactly
// one node wins), fences the previous owner so none of its late writes can
// become visible, and returns the items for the host to restore.
//
// Durability window: a change is durable once its session's flush completes,
// at most FlushDelay plus one flush's latency after the session's first
// unflushed change (longer while Cassandra is unreachable: the buffer keeps the
// latest state and drains when it returns). A crash loses what was committed
// inside that window, nothing older. Stats().OldestPendingAge and the metric
// holdover.buffer.oldest_pending_age measure it live.
//
// Errors are documented sentinels tested with errors.Is: ErrNotFound,
// ErrOwnedElsewhere (carried by *OwnedElsewhereError, which names the owner),
// ErrAlreadyOwned, ErrFenced, ErrReplaced, ErrNodeIDInUse (carried by
// *NodeIDInUseError), ErrBufferFull, ErrOverloaded, ErrSessionTooLarge,
// ErrCorrupt, ErrClosed and ErrInvalidInput (carried by *LimitError, which
// names the field and the limit, when a length or an encoding is at fault). They are the adapter's own values: the errors of the building
// blocks beneath (packages buffer and residency) are translated before they
// reach the host, which imports only this package.
//
// Fences are not ends: when Hooks.OnFenced or Hooks.OnRecovered name
// sessions, the host drops its in-memory copies but never calls End for them,
// since End deletes the persisted state a peer is adopting. The README's
// "Embedding it" section (examples/readme) is a complete host.
package adapter
