package main

import (
	"maps"
	"slices"
	"sync"
)

// This file is the host's own in-memory database, a stand-in for whatever
// your server keeps its live sessions in. Nothing in it knows about holdover:
// the only contact point is OnCommit, the commit hook that main.go sets.

// Change is one change of a committed transaction, as the database reports it
// to its commit hook.
type Change struct {
	Key    string
	Value  []byte
	Delete bool
}

// DB keeps sessions of key/value items in memory. Items change only through
// transactions (Update), which apply entirely or not at all.
type DB struct {
	// OnCommit is called with every transaction about to commit, in commit
	// order, while the database lock is held. If it returns an error the
	// transaction is rolled back and Update returns that error.
	OnCommit func(session string, changes []Change) error
	// OnEnd is called, with the lock held, before a session ends (End); if
	// it returns an error the session stays. Forget does not call it.
	OnEnd func(session string) error

	mu       sync.Mutex
	sessions map[string]map[string][]byte
}

// NewDB returns an empty database.
func NewDB() *DB { return &DB{sessions: make(map[string]map[string][]byte)} }

// Tx is a transaction on one session. Reads see the transaction's own
// writes; nothing is visible to others before it commits.
type Tx struct {
	base    map[string][]byte
	pending map[string]*Change
	order   []string // keys in first-change order
}

// Get returns the value of key as the transaction sees it.
func (tx *Tx) Get(key string) ([]byte, bool) {
	if c, ok := tx.pending[key]; ok {
		return c.Value, !c.Delete
	}
	v, ok := tx.base[key]
	return v, ok
}

// Put sets key to value.
func (tx *Tx) Put(key string, value []byte) { tx.change(Change{Key: key, Value: value}) }

// Delete removes key.
func (tx *Tx) Delete(key string) { tx.change(Change{Key: key, Delete: true}) }

func (tx *Tx) change(c Change) {
	if _, ok := tx.pending[c.Key]; !ok {
		tx.order = append(tx.order, c.Key)
	}
	tx.pending[c.Key] = &c
}

// Update runs fn in a transaction on session and commits it: first the
// commit hook, then the changes become visible. If fn or the hook fails,
// nothing changes.
func (db *DB) Update(session string, fn func(tx *Tx) error) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	tx := &Tx{base: db.sessions[session], pending: make(map[string]*Change)}
	if err := fn(tx); err != nil {
		return err
	}
	if len(tx.order) == 0 {
		return nil
	}
	changes := make([]Change, 0, len(tx.order))
	for _, k := range tx.order {
		changes = append(changes, *tx.pending[k])
	}
	if db.OnCommit != nil {
		if err := db.OnCommit(session, changes); err != nil {
			return err // rolled back: memory never holds what was not handed on
		}
	}
	items := db.sessions[session]
	if items == nil {
		items = make(map[string][]byte)
		db.sessions[session] = items
	}
	for _, c := range changes {
		if c.Delete {
			delete(items, c.Key)
		} else {
			items[c.Key] = slices.Clone(c.Value)
		}
	}
	return nil
}

// End removes a whole session because it is over (the call ended): the
// commit hook's counterpart, OnEnd, ends it in the persistence layer too.
func (db *DB) End(session string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.OnEnd != nil {
		if err := db.OnEnd(session); err != nil {
			return err
		}
	}
	delete(db.sessions, session)
	return nil
}

// Forget removes sessions from memory only, without calling any hook: the
// sessions are not over, this node just no longer holds them (it was fenced,
// or another node owns them). Their persisted state stays for the node that
// adopts them.
func (db *DB) Forget(sessions ...string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	for _, s := range sessions {
		delete(db.sessions, s)
	}
}

// Snapshot returns a copy of a session's items.
func (db *DB) Snapshot(session string) map[string][]byte {
	db.mu.Lock()
	defer db.mu.Unlock()
	return maps.Clone(db.sessions[session])
}
