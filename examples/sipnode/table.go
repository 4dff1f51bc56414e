package main

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/holdover/holdover/adapter"
)

// This file is the node's in-memory database: dialogs and registrations as
// sessions of key/value items, changed only through transactions. It knows
// nothing of SIP nor of Cassandra; its one contact with holdover is the
// commit hook main.go installs (Table.OnCommit), called inside every commit.

// Table holds the sessions resident on this node.
type Table struct {
	// OnCommit is called with the changed items of every transaction about to
	// commit, while the session's lock is held (ended: the session ends and
	// changes is empty). If it returns an error nothing of the transaction is
	// applied and Commit returns that error.
	OnCommit func(session string, changes []adapter.Change, ended bool) error

	mu       sync.Mutex
	rows     map[string]*row
	resident atomic.Int64
}

type row struct {
	mu    sync.Mutex        // held by the transaction on this session
	refs  int               // transactions holding or waiting for mu (Table.mu)
	items map[string][]byte // nil: not resident
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{rows: make(map[string]*row)} }

// Begin starts a transaction on session, waiting for the one in progress on
// it. Transactions on different sessions run in parallel. Close ends it.
func (t *Table) Begin(session string) *Tx {
	t.mu.Lock()
	r := t.rows[session]
	if r == nil {
		r = &row{}
		t.rows[session] = r
	}
	r.refs++
	t.mu.Unlock()
	r.mu.Lock()
	return &Tx{t: t, id: session, r: r, pending: make(map[string]*adapter.Change)}
}

// Len is the number of resident sessions.
func (t *Table) Len() int { return int(t.resident.Load()) }

// Drop removes sessions from memory without committing anything (their node
// lost them: fenced, or adopted elsewhere). It waits for transactions on them.
func (t *Table) Drop(sessions ...string) {
	for _, s := range sessions {
		tx := t.Begin(s)
		tx.set(nil)
		tx.Close()
	}
}

// Tx is a transaction on one session.
type Tx struct {
	t       *Table
	id      string
	r       *row
	pending map[string]*adapter.Change
	order   []string
	ended   bool
	closed  bool
}

// Resident reports whether the session is in memory.
func (tx *Tx) Resident() bool { return tx.r.items != nil }

// Items is the session's committed state (nil when not resident). The caller
// must not modify it.
func (tx *Tx) Items() map[string][]byte { return tx.r.items }

// Restore makes items (a session's persisted state, from Adopt) resident,
// without committing: they are already persisted.
func (tx *Tx) Restore(items map[string][]byte) {
	if items == nil {
		items = map[string][]byte{}
	}
	tx.set(items)
}

// set replaces the session's committed state, keeping Table.resident.
func (tx *Tx) set(items map[string][]byte) {
	switch {
	case tx.r.items == nil && items != nil:
		tx.t.resident.Add(1)
	case tx.r.items != nil && items == nil:
		tx.t.resident.Add(-1)
	}
	tx.r.items = items
}

// Put sets key to value unless it holds that value already.
func (tx *Tx) Put(key string, value []byte) {
	if old, ok := tx.r.items[key]; ok && string(old) == string(value) {
		if _, pend := tx.pending[key]; !pend {
			return
		}
	}
	tx.change(adapter.Change{Key: key, Value: value})
}

// Delete removes key.
func (tx *Tx) Delete(key string) { tx.change(adapter.Change{Key: key, Delete: true}) }

// Discard drops the changes made so far: Commit then commits nothing.
func (tx *Tx) Discard() { tx.reset() }

// End ends the session: Commit removes it from memory and the hook ends it.
func (tx *Tx) End() { tx.ended = true }

func (tx *Tx) change(c adapter.Change) {
	if _, ok := tx.pending[c.Key]; !ok {
		tx.order = append(tx.order, c.Key)
	}
	tx.pending[c.Key] = &c
}

// Commit hands the changes to the commit hook and, if it accepts them,
// applies them. A transaction without changes commits nothing.
func (tx *Tx) Commit() error {
	if !tx.ended && len(tx.order) == 0 {
		return nil
	}
	changes := make([]adapter.Change, 0, len(tx.order))
	for _, k := range tx.order {
		changes = append(changes, *tx.pending[k])
	}
	if tx.ended {
		changes = nil
	}
	if h := tx.t.OnCommit; h != nil {
		if err := h(tx.id, changes, tx.ended); err != nil {
			tx.reset()
			return err
		}
	}
	if tx.ended {
		tx.set(nil)
	} else {
		items := maps.Clone(tx.r.items)
		if items == nil {
			items = make(map[string][]byte, len(changes))
		}
		for _, c := range changes {
			if c.Delete {
				delete(items, c.Key)
			} else {
				items[c.Key] = c.Value
			}
		}
		tx.set(items)
	}
	tx.reset()
	return nil
}

func (tx *Tx) reset() {
	clear(tx.pending)
	tx.order = tx.order[:0]
	tx.ended = false
}

// Close ends the transaction (what was not committed is discarded) and
// releases the session's lock.
func (tx *Tx) Close() {
	if tx.closed {
		return
	}
	tx.closed = true
	// Table.mu is taken with the session's lock still held (Begin never
	// waits for a session's lock while holding Table.mu), so the row's
	// residency seen here is current.
	t := tx.t
	t.mu.Lock()
	tx.r.refs--
	if tx.r.refs == 0 && tx.r.items == nil {
		delete(t.rows, tx.id)
	}
	t.mu.Unlock()
	tx.r.mu.Unlock()
}
