// Package memstore is an in-memory model of the Cassandra store
// (internal/store) for randomized tests of the ownership protocol. It keeps
// the semantics the protocol relies on: every cell carries a write timestamp
// and the newest wins (a tombstone wins a tie, then the greater value, as in
// Cassandra), a partition tombstone shadows every cell written at or below
// its timestamp, rows and cells expire by TTL, and conditional updates
// (lightweight transactions) are linearizable. Faults can be injected per
// call: an error before the call applies, or a lost reply after it applied.
//
// It implements what residency.Store needs plus WriteSession. Time is the
// caller's (Now), so tests can move it.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/holdover/holdover/internal/store"
)

// Fault is what happens to one call.
type Fault int

const (
	// OK lets the call apply and answer.
	OK Fault = iota
	// Fail answers an error without applying (a request that never arrived).
	Fail
	// LoseReply applies the call and answers an error (a timeout after
	// Cassandra applied it).
	LoseReply
)

// ErrInjected is the error of an injected fault.
var ErrInjected = errors.New("memstore: injected fault (timeout)")

// Store is the in-memory store. The zero value is not usable: call New.
type Store struct {
	// Now is the store's clock (TTLs, lease stamps). Default time.Now.
	Now func() time.Time
	// Faults, when set, decides the fate of each call of op on session
	// (empty for calls about no session).
	Faults func(op, session string) Fault

	mu     sync.Mutex
	parts  map[string]*partition
	owners map[string]ownerRow
	index  map[string]map[string]indexEntry
	leases map[string]leaseRow
}

type partition struct {
	tomb  int64
	cells map[string]cell
}

type cell struct {
	ts      int64
	val     []byte
	deleted bool
	expires time.Time
}

type ownerRow struct {
	store.Owner
	expires time.Time
}

type leaseRow struct {
	store.Lease
	expires time.Time
}

// New returns an empty store.
func New() *Store {
	return &Store{
		Now:    time.Now,
		parts:  map[string]*partition{},
		owners: map[string]ownerRow{},
		index:  map[string]map[string]indexEntry{},
		leases: map[string]leaseRow{},
	}
}

// call runs apply under the lock unless a fault says otherwise.
func (m *Store) call(op, session string, apply func()) error {
	f := OK
	if m.Faults != nil {
		f = m.Faults(op, session)
	}
	if f == Fail {
		return ErrInjected
	}
	m.mu.Lock()
	apply()
	m.mu.Unlock()
	if f == LoseReply {
		return ErrInjected
	}
	return nil
}

// owner returns the live ownership row of session. Lock held.
func (m *Store) owner(session string) (ownerRow, bool) {
	r, ok := m.owners[session]
	if ok && !r.expires.IsZero() && !m.Now().Before(r.expires) {
		delete(m.owners, session)
		return ownerRow{}, false
	}
	return r, ok
}

func (m *Store) setOwner(session string, o store.Owner, ttl time.Duration) {
	m.owners[session] = ownerRow{Owner: o, expires: m.Now().Add(ttl)}
}

// ReadOwner implements residency.Store.
func (m *Store) ReadOwner(_ context.Context, session string) (store.Owner, bool, error) {
	return m.readOwner("read_owner", session)
}

// ReadOwnerSerial implements residency.Store: the model is linearizable, so
// it is ReadOwner, counted as its own operation.
func (m *Store) ReadOwnerSerial(_ context.Context, session string) (store.Owner, bool, error) {
	return m.readOwner("read_owner_serial", session)
}

func (m *Store) readOwner(op, session string) (o store.Owner, found bool, err error) {
	err = m.call(op, session, func() {
		var r ownerRow
		r, found = m.owner(session)
		o = r.Owner
	})
	return o, found, err
}

// CreateOwner implements residency.Store: epoch 1 for a new ID, one above an
// ended row, nothing for a live one.
// The ended hint only saves the real store a round; the outcome is the same.
func (m *Store) CreateOwner(_ context.Context, session, node string, _ uint64, ttl time.Duration) (created bool, cur store.Owner, err error) {
	err = m.call("create_owner", session, func() {
		r, ok := m.owner(session)
		switch {
		case !ok:
			cur = store.Owner{Node: node, Epoch: 1, ClaimedAt: m.Now()}
		case r.Ended:
			cur = store.Owner{Node: node, Epoch: r.Epoch + 1, ClaimedAt: m.Now()}
		default:
			cur = r.Owner
			return
		}
		created = true
		m.setOwner(session, cur, ttl)
	})
	return created, cur, err
}

// Claim implements residency.Store: a compare-and-set on owner and epoch
// (and released, when prev is released).
func (m *Store) Claim(_ context.Context, session string, prev store.Owner, node string, ttl time.Duration) (won bool, cur store.Owner, err error) {
	if prev.Ended || prev.Node == "" {
		return false, prev, nil // as the store: an ended session is nobody's to claim
	}
	err = m.call("claim", session, func() {
		r, ok := m.owner(session)
		if !ok {
			return
		}
		if r.Node != prev.Node || r.Epoch != prev.Epoch || (prev.Released && !r.Released) {
			cur = r.Owner
			return
		}
		won, cur = true, store.Owner{Node: node, Epoch: r.Epoch + 1, ClaimedAt: m.Now()}
		m.setOwner(session, cur, ttl)
	})
	return won, cur, err
}

// Release implements residency.Store.
func (m *Store) Release(_ context.Context, session, node string, epoch uint64, ttl time.Duration) (applied bool, err error) {
	err = m.call("release", session, func() {
		if r, ok := m.owner(session); ok && r.Node == node && r.Epoch == epoch {
			r.Released = true
			m.setOwner(session, r.Owner, ttl)
			applied = true
		}
	})
	return applied, err
}

// EndOwner implements residency.Store: the row stays, ended, one epoch up.
func (m *Store) EndOwner(_ context.Context, session, node string, epoch uint64, ttl time.Duration) (applied bool, err error) {
	err = m.call("end_owner", session, func() {
		if r, ok := m.owner(session); ok && r.Node == node && r.Epoch == epoch {
			m.setOwner(session, store.Owner{Epoch: epoch + 1, Ended: true, ClaimedAt: m.Now()}, ttl)
			applied = true
		}
	})
	return applied, err
}

// RefreshOwner implements residency.Store; it never touches Released.
func (m *Store) RefreshOwner(_ context.Context, session, node string, epoch uint64, ttl time.Duration) (applied bool, err error) {
	err = m.call("refresh_owner", session, func() {
		if r, ok := m.owner(session); ok && r.Node == node && r.Epoch == epoch {
			m.setOwner(session, r.Owner, ttl)
			applied = true
		}
	})
	return applied, err
}

// part returns session's partition, made if needed. Lock held.
func (m *Store) part(session string) *partition {
	p := m.parts[session]
	if p == nil {
		p = &partition{cells: map[string]cell{}}
		m.parts[session] = p
	}
	return p
}

// put writes one cell at ts with Cassandra's reconciliation. Lock held.
func (m *Store) put(p *partition, key string, c cell) {
	old, ok := p.cells[key]
	if ok && m.live(old) {
		switch {
		case c.ts < old.ts:
			return
		case c.ts == old.ts && old.deleted:
			return
		case c.ts == old.ts && !c.deleted && !c.expires.Equal(old.expires):
			// Cassandra's tie-break between two live cells: the later
			// expiry (local deletion time, in seconds) wins, a cell that
			// never expires above all, before values are compared.
			if !c.expires.IsZero() && (old.expires.IsZero() || c.expires.Before(old.expires)) {
				return
			}
		case c.ts == old.ts && !c.deleted && bytes.Compare(c.val, old.val) <= 0:
			return
		}
	}
	p.cells[key] = c
}

func (m *Store) live(c cell) bool { return c.expires.IsZero() || m.Now().Before(c.expires) }

// stateTTL is the TTL the model gives state cells.
const stateTTL = 7 * 24 * time.Hour

func (m *Store) writeItems(p *partition, ts int64, items []store.Item) {
	exp := m.Now().Truncate(time.Second).Add(stateTTL) // Cassandra counts expiry in whole seconds
	for _, it := range items {
		c := cell{ts: ts, val: bytes.Clone(it.Value), deleted: it.Delete, expires: exp}
		if it.Delete {
			c.val, c.expires = nil, time.Time{}
		}
		m.put(p, it.Key, c)
	}
}

// WriteSession writes one snapshot as the store does: the End's partition
// delete at Timestamp(Epoch, Seq), the items at Seq+1, atomically.
func (m *Store) WriteSession(_ context.Context, w *store.Write) error {
	endTS, err := store.Timestamp(w.Epoch, w.Seq)
	if err != nil {
		return err
	}
	return m.call("write", w.Session, func() {
		p := m.part(w.Session)
		if w.Ended {
			p.tomb = max(p.tomb, endTS)
		}
		m.writeItems(p, endTS+1, w.Items)
	})
}

// Fence implements residency.Store.
func (m *Store) Fence(_ context.Context, session string, epoch uint64, items []store.Item) error {
	if epoch == 0 || epoch > store.MaxEpoch {
		return fmt.Errorf("memstore: fence of %q at epoch %d outside 1..%d", session, epoch, uint64(store.MaxEpoch))
	}
	return m.call("fence", session, func() {
		p := m.part(session)
		base := store.EpochBase(epoch)
		p.tomb = max(p.tomb, base)
		m.writeItems(p, base+1, items)
	})
}

// FenceSessions implements residency.Store: each session's fence as Fence,
// with a fault of its own (an unlogged batch across partitions may apply to
// some of them only).
func (m *Store) FenceSessions(ctx context.Context, fs []store.Fencing, errs []error) {
	for i := range fs {
		errs[i] = m.Fence(ctx, fs[i].Session, fs[i].Epoch, fs[i].Items)
	}
}

// ReadStates implements residency.Store: each session read as ReadState.
func (m *Store) ReadStates(ctx context.Context, sessions []string, items [][]store.Item, errs []error) {
	for i, s := range sessions {
		items[i], errs[i] = m.ReadState(ctx, s)
	}
}

// ReadState implements residency.Store.
func (m *Store) ReadState(_ context.Context, session string) (items []store.Item, err error) {
	err = m.call("read_state", session, func() { items = m.visible(session) })
	return items, err
}

// visible returns session's visible items in key order. Lock held.
func (m *Store) visible(session string) []store.Item {
	p := m.parts[session]
	if p == nil {
		return nil
	}
	var items []store.Item
	for k, c := range p.cells {
		if c.ts > p.tomb && !c.deleted && m.live(c) {
			items = append(items, store.Item{Key: k, Value: bytes.Clone(c.val)})
		}
	}
	slices.SortFunc(items, func(a, b store.Item) int { return cmpString(a.Key, b.Key) })
	return items
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Visible returns session's visible items without faults, for checkers.
func (m *Store) Visible(session string) []store.Item {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.visible(session)
}

// Owner returns session's ownership row without faults, for checkers.
func (m *Store) Owner(session string) (store.Owner, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.owner(session)
	return r.Owner, ok
}

// RefreshState implements residency.Store: items keep their timestamps.
func (m *Store) RefreshState(_ context.Context, session string, _ time.Duration) (n int, err error) {
	err = m.call("refresh_state", session, func() {
		p := m.parts[session]
		if p == nil {
			return
		}
		exp := m.Now().Add(stateTTL)
		for k, c := range p.cells {
			if !c.deleted && m.live(c) {
				c.expires = exp
				p.cells[k] = c
				n++
			}
		}
	})
	return n, err
}

// IndexOwner implements residency.Store: the entry of epoch is written at
// its epoch-ranked timestamp, as the store writes it.
func (m *Store) IndexOwner(_ context.Context, node, session string, epoch uint64, _ time.Duration) error {
	return m.call("index", session, func() { m.putEntry(node, session, indexEntry{epoch: epoch, ts: store.EpochBase(epoch) + 1}) })
}

// indexEntry is an owner index cell: an entry, or a delete's tombstone.
type indexEntry struct {
	epoch   uint64
	ts      int64
	deleted bool
}

// putEntry writes one index cell with Cassandra's reconciliation (the
// newer wins, a tombstone a tie). Lock held.
func (m *Store) putEntry(node, session string, e indexEntry) {
	if m.index[node] == nil {
		m.index[node] = map[string]indexEntry{}
	}
	if old, ok := m.index[node][session]; ok && (e.ts < old.ts || (e.ts == old.ts && old.deleted)) {
		return
	}
	m.index[node][session] = e
}

// unindex deletes node's entry of session as it is (at its timestamp), as
// the store's MoveIndex does a stale entry. Lock held.
func (m *Store) unindex(node, session string) {
	if e, ok := m.index[node][session]; ok && !e.deleted {
		m.index[node][session] = indexEntry{ts: e.ts, deleted: true}
	}
}

// UnindexOwner implements residency.Store: node's entries of session are
// deleted at the base of the next epoch, as an adoption at it would.
func (m *Store) UnindexOwner(_ context.Context, node, session string, epoch uint64) error {
	return m.call("unindex", session, func() { m.putEntry(node, session, indexEntry{ts: store.EpochBase(epoch + 1), deleted: true}) })
}

// MoveIndex implements residency.Store: from's entry of a moved session is
// deleted at the base of the epoch it moved at, so from keeps an entry of a
// later epoch.
func (m *Store) MoveIndex(_ context.Context, from, to string, moved []store.Owned, stale []string, _ time.Duration) error {
	return m.call("move_index", "", func() {
		for _, o := range moved {
			m.putEntry(to, o.Session, indexEntry{epoch: o.Epoch, ts: store.EpochBase(o.Epoch) + 1})
			m.putEntry(from, o.Session, indexEntry{ts: store.EpochBase(o.Epoch), deleted: true})
		}
		for _, s := range stale {
			m.unindex(from, s)
		}
	})
}

// OwnedBy implements residency.Store.
func (m *Store) OwnedBy(_ context.Context, node string, fn func(store.Owned) bool) error {
	var owned []store.Owned
	if err := m.call("owned_by", "", func() {
		for s, e := range m.index[node] {
			if !e.deleted {
				owned = append(owned, store.Owned{Session: s, Epoch: e.epoch})
			}
		}
	}); err != nil {
		return err
	}
	for _, o := range owned {
		if !fn(o) {
			break
		}
	}
	return nil
}

func (m *Store) lease(node string) (leaseRow, bool) {
	l, ok := m.leases[node]
	if ok && !m.Now().Before(l.expires) {
		delete(m.leases, node)
		return leaseRow{}, false
	}
	return l, ok
}

func (m *Store) stamp(node string, l store.Lease, ttl, grace time.Duration, since time.Time) {
	l.Node, l.RenewedAt, l.TTL, l.Since = node, m.Now(), ttl, since
	m.leases[node] = leaseRow{Lease: l, expires: m.Now().Add(ttl + 2*grace + time.Second)}
}

// RenewLease implements residency.Store: it writes the incarnation when
// given and keeps it otherwise. (The model keeps a kept incarnation as long
// as the row; in Cassandra its cell expires with the write that set it,
// which is why a valid lease is renewed with it.)
func (m *Store) RenewLease(_ context.Context, node string, ttl, grace time.Duration, since time.Time, incarnation string) error {
	return m.call("renew_lease", "", func() {
		l, _ := m.lease(node)
		if incarnation != "" {
			l.Incarnation = incarnation
		}
		m.stamp(node, l.Lease, ttl, grace, since)
	})
}

// TakeLease implements residency.Store.
func (m *Store) TakeLease(_ context.Context, node, incarnation string, prev store.Lease, found bool, ttl, grace time.Duration, since time.Time) (took bool, cur store.Lease, err error) {
	err = m.call("take_lease", "", func() {
		l, ok := m.lease(node)
		cur = l.Lease
		if ok != found || (ok && !l.RenewedAt.Equal(prev.RenewedAt)) {
			return
		}
		took = true
		m.stamp(node, store.Lease{Incarnation: incarnation}, ttl, grace, since)
	})
	return took, cur, err
}

// CheckLease implements residency.Store.
func (m *Store) CheckLease(_ context.Context, node, incarnation string, ttl, grace time.Duration, since time.Time) (held bool, cur store.Lease, err error) {
	err = m.call("check_lease", "", func() {
		l, ok := m.lease(node)
		cur = l.Lease
		if !ok || l.Incarnation != incarnation {
			return
		}
		held = true
		m.stamp(node, l.Lease, ttl, grace, since)
	})
	return held, cur, err
}

// ReadLease implements residency.Store.
func (m *Store) ReadLease(_ context.Context, node string) (l store.Lease, found bool, err error) {
	err = m.call("read_lease", "", func() {
		var r leaseRow
		r, found = m.lease(node)
		l = r.Lease
		if found {
			l.Remaining = r.expires.Sub(m.Now())
		}
	})
	return l, found, err
}

// DropLease implements residency.Store.
func (m *Store) DropLease(_ context.Context, node, incarnation string) error {
	return m.call("drop_lease", "", func() {
		if l, ok := m.lease(node); ok && l.Incarnation == incarnation {
			delete(m.leases, node)
		}
	})
}
