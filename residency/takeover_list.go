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
// states (nil when none was wanted).
type listedGroup struct {
	owned []store.Owned
	read  *groupRead
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
			if read {
				select {
				case reads <- struct{}{}:
				case <-ctx.Done():
					return
				}
				g.read = m.readGroup(ctx, g.owned, func() { <-reads })
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

// readGroup starts reading the states of sessions in one request and calls
// done once it has answered.
func (m *Manager) readGroup(ctx context.Context, sessions []store.Owned, done func()) *groupRead {
	r := &groupRead{done: make(chan struct{}), sessions: make([]string, len(sessions)),
		items: make([][]store.Item, len(sessions)), errs: make([]error, len(sessions))}
	for i, o := range sessions {
		r.sessions[i] = o.Session
	}
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
	if l.cur.read != nil {
		state = &aheadRead{g: l.cur.read, i: i}
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

// wait returns the session's state once its request has answered.
func (a *aheadRead) wait() ([]store.Item, error) {
	<-a.g.done
	return a.g.items[a.i], a.g.errs[a.i]
}
