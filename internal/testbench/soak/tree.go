package soak

import "time"

// nodeKind is what a state of the tree is.
type nodeKind uint8

const (
	kAbsent nodeKind = iota // the session does not exist (before its first create)
	kLive
	kEnded
)

// tnode is one state a session had or may have had: the result of an event
// (acknowledged or not), or a state observed that no event explains.
type tnode struct {
	kind    nodeKind
	gen     int
	version uint64
	digest  Digest
	st      *State // nil once far behind the head (memory), or unknown
	parent  *tnode
	depth   int
	op      int64     // the record that produced it
	node    string    // the node the event went to
	sent    time.Time // the event's start
	acked   bool
	ackAt   time.Time
	durable bool // persisted for sure: restored by an adoption or read from Cassandra
	unknown bool // produced on a base the checker does not know: version only
}

func (n *tnode) ref() Ref { return Ref{Version: n.version, Digest: n.digest} }

// keepStates is how many states behind the head keep their full state (the
// bases of later events and of implicit adoptions are recent ones).
const keepStates = 64

type sess struct {
	id           string
	head         []*tnode // the states the session may be in now: a path suffix, deepest last
	index        map[Ref][]*tnode
	byVersion    map[uint64][]*tnode
	dispossessed map[string][]time.Time // forced adoptions away from a live node
	pending      *pending               // an event that may have adopted implicitly
	raceWon      *Record                // the adoption that won the race under way
}

// pending is an event answered adopted=true (or not answered): the state the
// node restored before applying it is known only from the next observation.
type pending struct {
	rec   Record
	child *tnode
}

func (c *Checker) session(id string) *sess {
	s := c.sessions[id]
	if s == nil {
		root := &tnode{kind: kAbsent}
		s = &sess{id: id, head: []*tnode{root}, index: map[Ref][]*tnode{}, byVersion: map[uint64][]*tnode{},
			dispossessed: map[string][]time.Time{}}
		c.sessions[id] = s
	}
	return s
}

func (s *sess) tip() *tnode { return s.head[len(s.head)-1] }

func (s *sess) add(n *tnode) {
	if n.parent != nil {
		n.depth = n.parent.depth + 1
	}
	if n.kind == kLive && !n.unknown {
		s.index[n.ref()] = append(s.index[n.ref()], n)
		s.byVersion[n.version] = append(s.byVersion[n.version], n)
	}
	// Free the full states of old ancestors.
	a := n
	for i := 0; i < keepStates && a != nil; i++ {
		a = a.parent
	}
	if a != nil {
		a.st = nil
	}
}

// isAncestor reports whether a is b or an ancestor of b.
func isAncestor(a, b *tnode) bool {
	for b != nil && b.depth > a.depth {
		b = b.parent
	}
	return b == a
}

// lca returns the deepest common ancestor of a and b.
func lca(a, b *tnode) *tnode {
	for a.depth > b.depth {
		a = a.parent
	}
	for b.depth > a.depth {
		b = b.parent
	}
	for a != b {
		a, b = a.parent, b.parent
	}
	return a
}
