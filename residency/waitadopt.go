package residency

import (
	"context"
	"sync"
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
//   - the states are read several sessions to a request (stateReader), and
//     the fences leave several to a request (the takeover's fencer).

// adoptAfterWait adopts session, whose ownership row was o when a live
// owner refused it, once its wait is over. refused is set when the owner's
// lease is still live.
func (m *Manager) adoptAfterWait(ctx context.Context, session string, o store.Owner) (*Adopted, refusal, error) {
	live, lease, err := m.sharedLease(ctx, o.Node, o.ClaimedAt)
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	}
	if live {
		m.stats.ownedElsewhere.Add(1)
		return nil, refusal{lease: lease, owner: o}, &OwnedElsewhereError{Session: session, Owner: o.Node, Epoch: o.Epoch, Live: true}
	}
	state := m.waitReads.read(session)
	won, cur, err := m.store.Claim(ctx, session, o, m.cfg.NodeID, m.ttl(session))
	switch {
	case err != nil:
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	case !won && (cur.Epoch == 0 || cur.Ended):
		m.neg.remember(session)
		m.stats.notFound.Add(1)
		return nil, refusal{}, ErrNotFound
	case !won && cur.Node == o.Node:
		// Released, or the owner came back and claimed it again: the
		// ordinary way decides.
		return m.adoptOnce(ctx, session, AdoptOptions{})
	case !won:
		m.stats.claimConflicts.Add(1)
		return nil, refusal{}, &OwnedElsewhereError{Session: session, Owner: cur.Node, Epoch: cur.Epoch, Raced: true}
	}
	items, err := state.wait()
	if err != nil { // read it alone
		items, err = m.store.ReadState(ctx, session)
	}
	if err == nil {
		err = m.waitFences.fence(store.Fencing{Session: session, Epoch: cur.Epoch, Items: items})
	}
	if err != nil {
		m.stats.adoptErrors.Add(1)
		return nil, refusal{}, err
	}
	return m.adopted(session, o.Node, cur.Epoch, false, items, true), refusal{}, nil
}

const (
	// stateReadGroup bounds the sessions of one grouped state read, as the
	// takeover's reads ahead.
	stateReadGroup = 64
	// stateReadWait is how long a read waits for others to fill its group.
	stateReadWait = 2 * time.Millisecond
	// stateReadsInFlight is how many grouped reads may be on their way.
	stateReadsInFlight = 4
)

// stateReader groups the state reads of adoptions running at once: a read
// joins those waiting, and a group leaves when it holds stateReadGroup
// sessions or its oldest has waited stateReadWait, with at most
// stateReadsInFlight groups on their way.
type stateReader struct {
	ctx context.Context
	st  Store

	mu      sync.Mutex
	queue   []*stateCall
	sending int
	armed   bool
}

// stateCall is one session's read, answered with its group.
type stateCall struct {
	session string
	at      time.Time
	items   []store.Item
	err     error
	done    chan struct{}
}

func newStateReader(ctx context.Context, st Store) *stateReader {
	return &stateReader{ctx: ctx, st: st}
}

// read starts reading session's state with others; wait returns it.
func (r *stateReader) read(session string) *stateCall {
	c := &stateCall{session: session, at: time.Now(), done: make(chan struct{})}
	r.mu.Lock()
	r.queue = append(r.queue, c)
	r.dispatch()
	r.mu.Unlock()
	return c
}

func (c *stateCall) wait() ([]store.Item, error) {
	<-c.done
	return c.items, c.err
}

// dispatch sends the reads waiting in full groups, or once the oldest has
// waited stateReadWait, while fewer than stateReadsInFlight are on their
// way. mu held.
func (r *stateReader) dispatch() {
	for r.sending < stateReadsInFlight && len(r.queue) > 0 {
		n := min(len(r.queue), stateReadGroup)
		if wait := stateReadWait - time.Since(r.queue[0].at); n < stateReadGroup && wait > 0 {
			if !r.armed {
				r.armed = true
				time.AfterFunc(wait, func() {
					r.mu.Lock()
					r.armed = false
					r.dispatch()
					r.mu.Unlock()
				})
			}
			return
		}
		group := r.queue[:n:n]
		r.queue = r.queue[n:]
		r.sending++
		go r.send(group)
	}
}

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
	r.mu.Lock()
	r.sending--
	r.dispatch()
	r.mu.Unlock()
}
