package residency

import (
	"context"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// When a node dies, every session of it that a host asked for meanwhile
// waits in Adopt (AdoptOptions.Wait) for its lease to end, and all of them
// wake at that moment: a burst of adoptions on a survivor that is busy with
// its own sessions. The burst does less per session than separate
// adoptions would:
//
//   - the lease is read once for all of them (sharedLease);
//   - the ownership row is not read again: each claims at the row it read
//     before waiting (a compare-and-set on its node and epoch, so a row
//     that moved on meanwhile, ended or adopted elsewhere, loses the claim,
//     and a dead owner's session whose claim predates the expiry the read
//     saw may be claimed, as vouched allows);
//   - the states are read several sessions to a request (stateReader), the
//     fences leave several to a request (the takeover's fencer), and the
//     owner-index entries move several to a request (indexMover).

// adoptAfterWait adopts session, whose ownership row was o when a live
// owner refused it, once its wait is over: claimListed with the burst's
// grouped read and fence, once the shared lease read finds the owner gone
// (vouched for this session's claim, or read after o). The refusal is set
// when the owner's lease is still live.
func (m *Manager) adoptAfterWait(ctx context.Context, session string, o store.Owner, fences uint64) (*Adopted, refusal, error) {
	live, lease, err := m.sharedLease(ctx, o.Node, o.ClaimedAt)
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	}
	if live {
		m.stats.ownedElsewhere.Add(1)
		return nil, refusal{lease: lease, owner: o}, &OwnedElsewhereError{Session: session, Owner: o.Node, Epoch: o.Epoch, Live: true}
	}
	a, err := m.claimListed(ctx, o.Node, store.Owned{Session: session, Epoch: o.Epoch},
		pipeline{state: m.waitReads.read(session), fences: m.waitFences, claimed: func() {}, index: m.indexMoves}, fences)
	return a, refusal{}, err
}

const (
	// stateReadWait is how long a read waits for others to fill its group.
	stateReadWait = 2 * time.Millisecond
	// burstRequestsInFlight is how many grouped reads, and how many grouped
	// fences, a burst may have on their way at once. A takeover paces its
	// claims and keeps few fences in flight; a burst's sessions are all
	// waiting for their answers at once, and a small bound queued them
	// behind one another on a saturated machine (a 200-session burst's last
	// answers came 900 ms after the lease ended with 4).
	burstRequestsInFlight = 64
)

// stateReader groups the state reads of adoptions running at once: a read
// joins those waiting, and a group leaves when it holds readGroup
// sessions or its oldest has waited stateReadWait, with at most
// burstRequestsInFlight groups on their way.
type stateReader struct {
	ctx context.Context
	st  Store
	b   batcher[*stateCall]
}

// stateCall is one session's read, answered with its group.
type stateCall struct {
	session string
	items   []store.Item
	err     error
	done    chan struct{}
}

func newStateReader(ctx context.Context, st Store) *stateReader {
	r := &stateReader{ctx: ctx, st: st}
	r.b = batcher[*stateCall]{wait: stateReadWait, inFlight: burstRequestsInFlight, send: r.send,
		group: func(q []*stateCall) (int, bool) { n := min(len(q), readGroup); return n, n == readGroup }}
	return r
}

// read starts reading session's state with others; wait returns it.
func (r *stateReader) read(session string) *stateCall {
	c := &stateCall{session: session, done: make(chan struct{})}
	r.b.add(c)
	return c
}

// wait returns the state once its group has answered, or ctx's error when
// ctx ends first: the group's request serves other adoptions, on the
// manager's context.
func (c *stateCall) wait(ctx context.Context) ([]store.Item, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return c.items, c.err
}

// send reads one group's states and answers each of its callers.
func (r *stateReader) send(group []*stateCall) {
	sessions := make([]string, len(group))
	for i, c := range group {
		sessions[i] = c.session
	}
	items := make([][]store.Item, len(group))
	errs := make([]error, len(group))
	r.st.ReadStates(r.ctx, sessions, items, errs)
	for i, c := range group {
		c.items, c.err = items[i], errs[i]
		close(c.done)
	}
}

// indexMoveWait is how long an owner-index move waits for others to fill
// its group: the index is a hint, so nobody waits for the move itself.
const indexMoveWait = 50 * time.Millisecond

// indexMover moves the owner-index entries of adoptions from peers (a
// burst's, and those one at a time) several to a request, as a takeover
// moves its own (store.MoveIndex: per previous owner, a batch of entries
// under this node and one of deletions under the owner), where each
// adoption alone wrote two rows in two requests: 400 requests for a dead
// node's 200 sessions, in the very moments the burst needs Cassandra. A move that fails is logged; Close waits for the
// moves queued (indexing).
type indexMover struct {
	m *Manager
	b batcher[indexCall]
}

// indexCall is one adopted session's entry, to move from the node that
// owned it.
type indexCall struct {
	from string
	o    store.Owned
}

func newIndexMover(m *Manager) *indexMover {
	x := &indexMover{m: m}
	x.b = batcher[indexCall]{wait: indexMoveWait, inFlight: 4, send: x.send,
		group: func(q []indexCall) (int, bool) {
			n := 1
			for n < len(q) && n < moveChunk && q[n].from == q[0].from {
				n++
			}
			return n, n == moveChunk || n < len(q) // full, or another owner's next
		}}
	return x
}

// move queues the entry of session, adopted at epoch from the node from,
// and reports whether it did (not once Close has begun waiting for the
// index updates). from is another node: a burst adopts only sessions a
// live peer refused (a move from this node to itself would delete the
// entry it writes).
func (x *indexMover) move(from, session string, epoch uint64) bool {
	m := x.m
	m.indexMu.Lock()
	defer m.indexMu.Unlock()
	if m.indexClosed {
		return false
	}
	m.indexing.Add(1)
	x.b.add(indexCall{from: from, o: store.Owned{Session: session, Epoch: epoch, TTL: m.ttl(session)}})
	return true
}

// send moves one group's entries, all from the same node.
func (x *indexMover) send(group []indexCall) {
	m := x.m
	defer m.indexing.Add(-len(group))
	moved := make([]store.Owned, len(group))
	for i, c := range group {
		moved[i] = c.o
	}
	ctx, cancel := context.WithTimeout(m.bg, 5*time.Second) // Close's context may end it
	defer cancel()
	if err := m.store.MoveIndex(ctx, group[0].from, m.cfg.NodeID, moved, nil, m.cfg.OwnershipTTL); err != nil {
		m.cfg.Logger.Warn("holdover: owner index not moved after adoptions", "node", group[0].from, "sessions", len(group), "err", err)
	}
}
