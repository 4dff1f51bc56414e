package node

import (
	"maps"
	"sync"

	"github.com/holdover/holdover/adapter"
)

// CommitHook receives every transaction a Table commits, while the
// transaction still holds its session: changes are exactly the items it
// changed, and ended says it ended the session. An error rolls the
// transaction back. The node's hook is adapter.Commit / adapter.End.
type CommitHook func(session string, changes []adapter.Change, ended bool) error

// Table is the node's in-memory session database. Transactions on one
// session run one at a time, in the order they began; transactions on
// different sessions run in parallel. Reads (Get, Len) never wait for a
// transaction.
type Table struct {
	hook CommitHook

	mu       sync.Mutex
	rows     map[string]*row
	resident int // rows with a session
}

// row is one session's slot. lock is held by the transaction working on it;
// s changes only under both lock and Table.mu, so either one is enough to
// read it.
type row struct {
	lock sync.Mutex
	refs int      // transactions holding or waiting for lock (Table.mu)
	s    *Session // the committed session, nil when not resident
}

// NewTable returns an empty table whose commits go through hook.
func NewTable(hook CommitHook) *Table {
	return &Table{hook: hook, rows: map[string]*row{}}
}

// Get returns the committed state of a resident session, or nil. The
// returned Session must not be modified.
func (t *Table) Get(id string) *Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	if r := t.rows[id]; r != nil {
		return r.s
	}
	return nil
}

// Len is the number of resident sessions.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.resident
}

// Begin starts a transaction on session id, waiting for any earlier one on
// the same session to finish. End it with Commit or Rollback.
func (t *Table) Begin(id string) *Tx {
	t.mu.Lock()
	r := t.rows[id]
	if r == nil {
		r = &row{}
		t.rows[id] = r
	}
	r.refs++
	t.mu.Unlock()
	r.lock.Lock()
	tx := &Tx{t: t, r: r, id: id, base: r.s}
	if r.s != nil {
		tx.cur = r.s.clone()
	}
	return tx
}

// Evict drops resident sessions from the table without committing anything
// (the node may no longer own them). Later events for them adopt them
// again. It waits for transactions in progress on them.
func (t *Table) Evict(ids ...string) int {
	n := 0
	for _, id := range ids {
		tx := t.Begin(id)
		if tx.base != nil {
			tx.t.set(tx.r, nil)
			n++
		}
		tx.finish()
	}
	return n
}

// set installs s as r's committed session.
func (t *Table) set(r *row, s *Session) {
	t.mu.Lock()
	switch {
	case r.s == nil && s != nil:
		t.resident++
	case r.s != nil && s == nil:
		t.resident--
	}
	r.s = s
	t.mu.Unlock()
}

// Tx is a transaction on one session. It is not safe for concurrent use.
type Tx struct {
	t  *Table
	r  *row
	id string

	base  *Session // committed state cur derives from, nil for a new session
	cur   *Session // the working copy, nil when there is no session
	over  []string // Create over a reused ID: the persisted keys to replace
	fresh bool     // cur was created by this transaction
	dirty bool     // an event was applied to cur
	ended bool
	done  bool
}

// Resident reports whether the session exists in the table (or was
// restored into it by this transaction).
func (tx *Tx) Resident() bool { return tx.r.s != nil }

// Session is the transaction's working copy, nil when the session does not
// exist. Change it only through the Tx's methods.
func (tx *Tx) Session() *Session { return tx.cur }

// Restore makes s, the session's persisted state (from Adopt), resident at
// once: it stays in the table even if the transaction rolls back, since
// nothing needs to be written for it.
func (tx *Tx) Restore(s *Session) {
	tx.t.set(tx.r, s)
	tx.base, tx.cur, tx.fresh = s, s.clone(), false
}

// Create starts the session afresh at version 1 with attrs. over lists the
// keys persisted under the ID when it is being reused (a stale session this
// node just claimed): the commit deletes those the new session lacks.
func (tx *Tx) Create(attrs map[string]string, over []string) {
	s := &Session{ID: tx.id, Attrs: maps.Clone(attrs)}
	if s.Attrs == nil {
		s.Attrs = map[string]string{}
	}
	tx.base, tx.cur, tx.over, tx.fresh, tx.dirty = nil, s, over, true, true
}

// SetAttrs sets attributes of the session.
func (tx *Tx) SetAttrs(attrs map[string]string) {
	for k, v := range attrs {
		tx.cur.Attrs[k] = v
	}
	tx.dirty = true
}

// Append adds an entry to the session's history.
func (tx *Tx) Append(entry string) {
	tx.cur.History = append(tx.cur.History, entry)
	tx.dirty = true
}

// Unset removes attributes of the session; names it lacks are ignored.
func (tx *Tx) Unset(names []string) {
	for _, k := range names {
		delete(tx.cur.Attrs, k)
	}
	tx.dirty = true
}

// End ends the session.
func (tx *Tx) End() { tx.ended, tx.dirty = true, true }

// Commit applies the transaction: it bumps the session's version by one,
// passes the changed items to the commit hook and, if the hook accepts
// them, makes the new state visible (or removes an ended session). If the
// hook refuses, nothing is applied and its error is returned. Commit
// returns the session's new version.
func (tx *Tx) Commit() (uint64, error) {
	if tx.done {
		panic("node: Commit of a finished transaction")
	}
	defer tx.finish()
	if !tx.dirty {
		if tx.cur == nil {
			return 0, nil
		}
		return tx.cur.Version, nil
	}
	if tx.ended {
		var v uint64
		if tx.cur != nil {
			v = tx.cur.Version + 1
		}
		if err := tx.t.hook(tx.id, nil, true); err != nil {
			return 0, err
		}
		tx.t.set(tx.r, nil)
		return v, nil
	}
	tx.cur.Version++
	var changes []adapter.Change
	if tx.fresh {
		changes = replace(tx.over, tx.cur)
	} else {
		changes = diff(tx.base, tx.cur)
	}
	if err := tx.t.hook(tx.id, changes, false); err != nil {
		tx.cur.Version--
		return 0, err
	}
	tx.t.set(tx.r, tx.cur)
	return tx.cur.Version, nil
}

// Rollback ends the transaction without applying it. It does nothing after
// Commit, so it can be deferred.
func (tx *Tx) Rollback() {
	if !tx.done {
		tx.finish()
	}
}

func (tx *Tx) finish() {
	tx.done = true
	tx.r.lock.Unlock()
	tx.t.mu.Lock()
	tx.r.refs--
	if tx.r.refs == 0 && tx.r.s == nil {
		delete(tx.t.rows, tx.id)
	}
	tx.t.mu.Unlock()
}
