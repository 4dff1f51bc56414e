package residency

import (
	"context"

	"github.com/holdover/holdover/internal/store"
)

const (
	// readGroup is how many listed sessions one read-ahead request covers:
	// Cassandra still reads each partition, but decodes, dispatches and
	// answers the request once.
	readGroup = 64
	// readsInFlight is how many read-ahead requests may be on their way at
	// once; the listing, and so the claims, wait only beyond that.
	readsInFlight = 4
)

// listing hands out the sessions the owner index lists under a node as the
// index is read, readGroup at a time, each group with the read of its
// sessions' states started ahead of their claims (when wanted).
type listing struct {
	groups  chan *listedGroup
	cancel  context.CancelFunc
	listErr error        // the listing's error, set before groups closes
	cur     *listedGroup // the group next hands out sessions of
	at      int          // the index in cur of the next session
}

// listedGroup is up to readGroup listed sessions and the read of their
// states (nil when none was wanted or none needed it): at[i] is the index
// in read of owned[i]'s state, or -1 when it is not read ahead.
type listedGroup struct {
	owned []store.Owned
	read  *groupRead
	at    []int
}

// groupRead is one read-ahead request; done closes when it has answered.
type groupRead struct {
	done     chan struct{}
	sessions []string
	items    [][]store.Item
	errs     []error
}

// list starts listing the sessions the index lists under node and, with
// read, reading their states, readGroup sessions to a request and at most
// readsInFlight requests on their way. Stop it when the takeover ends.
func (m *Manager) list(ctx context.Context, node string, read bool) *listing {
	ctx, cancel := context.WithCancel(ctx)
	l := &listing{groups: make(chan *listedGroup, readsInFlight), cancel: cancel}
	owned := make(chan store.Owned, readGroup)
	var listErr error
	go func() {
		defer close(owned)
		listErr = m.store.OwnedBy(ctx, node, func(o store.Owned) bool {
			select {
			case owned <- o:
				return true
			case <-ctx.Done():
				return false
			}
		})
	}()
	go func() {
		defer close(l.groups)
		reads := make(chan struct{}, readsInFlight)
		for {
			g := &listedGroup{owned: make([]store.Owned, 0, readGroup)}
			for o := range owned {
				g.owned = append(g.owned, o)
				if len(g.owned) == readGroup {
					break
				}
			}
			if len(g.owned) == 0 {
				l.listErr = listErr // owned is closed: OwnedBy has returned
				return
			}
			if ahead := m.readAhead(g, read); len(ahead) > 0 {
				select {
				case reads <- struct{}{}:
				case <-ctx.Done():
					return
				}
				g.read = m.readGroup(ctx, ahead, func() { <-reads })
			}
			select {
			case l.groups <- g:
			case <-ctx.Done():
				return
			}
		}
	}()
	return l
}

// readAhead sets g.at and returns the sessions of g whose states are to be
// read ahead (none unless read): not those this node owns already, nor
// those an adoption is working on (adopting). The takeover joins that
// adoption for them (takeOne), and it reads their state itself: a dead
// node's sessions whose hosts' adoptions waited for its lease, woken as
// the takeover began, had every state read twice in the very burst the
// failover time measures.
func (m *Manager) readAhead(g *listedGroup, read bool) []string {
	g.at = make([]int, len(g.owned))
	var ahead []string
	for i, o := range g.owned {
		g.at[i] = -1
		if !read {
			continue
		}
		if _, busy := m.adopting.Load(o.Session); busy {
			continue
		}
		if _, owned := m.Epoch(o.Session); owned {
			continue
		}
		g.at[i] = len(ahead)
		ahead = append(ahead, o.Session)
	}
	return ahead
}

// readGroup starts reading the states of sessions in one request and calls
// done once it has answered.
func (m *Manager) readGroup(ctx context.Context, sessions []string, done func()) *groupRead {
	r := &groupRead{done: make(chan struct{}), sessions: sessions,
		items: make([][]store.Item, len(sessions)), errs: make([]error, len(sessions))}
	go func() {
		m.store.ReadStates(ctx, r.sessions, r.items, r.errs)
		close(r.done)
		done()
	}()
	return r
}

// next returns the next listed session and the read of its state, which
// may still be on its way (nil when none was wanted); ok is false past the
// end of the list or once stopped. One goroutine calls it.
func (l *listing) next() (o store.Owned, state stateWaiter, ok bool) {
	if l.cur == nil || l.at == len(l.cur.owned) {
		if l.cur, ok = <-l.groups; !ok {
			return o, nil, false
		}
		l.at = 0
	}
	i := l.at
	l.at++
	if j := l.cur.at[i]; j >= 0 {
		state = &aheadRead{g: l.cur.read, i: j}
	}
	return l.cur.owned[i], state, true
}

// err is the listing's error, once next has returned false.
func (l *listing) err() error { return l.listErr }

// stop ends the listing and the reads ahead.
func (l *listing) stop() { l.cancel() }

// aheadRead is one session's state in a read-ahead request.
type aheadRead struct {
	g *groupRead
	i int
}

// wait returns the session's state once its request has answered, or ctx's
// error when ctx ends first.
func (a *aheadRead) wait(ctx context.Context) ([]store.Item, error) {
	select {
	case <-a.g.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return a.g.items[a.i], a.g.errs[a.i]
}
