package adapter

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
)

// Shared families. Their sessions go through a buffer of their own, so that
// Commit's fast path never asks which family a session is in: the node's
// buffer refuses a shared family's session when it enters (checkSession),
// and the shared buffer refuses any other. A flush writes a shared session
// with the snapshot's time as its write timestamp, with no ownership
// record, no lease check and no fence: Cassandra keeps the latest write of
// each key, whichever node made it.
//
// Each node keeps a view of every shared family: loaded at Open, re-read on
// the family's refresh interval, and updated at once by the node's own
// writes. A re-read applies what Cassandra holds over the view, except the
// node's own writes that have not landed yet (they will win or lose when
// they do, and the next re-read shows which), and reports to
// Hooks.OnSharedChange what changed.

// SharedChange is one change of a shared family's state made by another
// node (or expired), seen when this node re-read the family.
type SharedChange struct {
	Session, Key string
	// Value is the new value; nil when Deleted.
	Value []byte
	// Deleted reports that the key is gone: deleted, ended with its session,
	// or expired.
	Deleted bool
}

// sharedViews holds every shared family's view. One mutex: shared state is
// small and rarely written.
type sharedViews struct {
	mu    sync.Mutex
	views map[string]*sharedView // by family name
	stop  chan struct{}
	done  sync.WaitGroup
	// ctx ends with close: a re-read under way stops rather than hold
	// Close up while Cassandra does not answer.
	ctx    context.Context
	cancel context.CancelFunc
}

// sharedView is one shared family as this node sees it.
type sharedView struct {
	fam      *Family
	sessions map[string]map[string]*sharedEntry
	// ended marks the sessions this node ended: items written before the End
	// are not taken from a read until it has landed and been read past.
	ended map[string]*sharedMark
}

// sharedEntry is one key of a shared session.
type sharedEntry struct {
	value []byte
	// ts is the write timestamp (µs) of value in Cassandra; for a write of
	// this node that has not landed yet, its commit time.
	ts int64
	// at is when this node knew the entry to be in Cassandra (the start of
	// the read that showed it, or when its own write landed): a read begun
	// later that does not show it means it is gone.
	at        time.Time
	deleted   bool // a delete (a tombstone kept until a read begun after it landed)
	unflushed bool // this node's write, not landed yet
}

// sharedMark is an End of this node.
type sharedMark struct {
	ts        int64
	at        time.Time
	unflushed bool
}

// newSharedViews makes an empty view of each shared family of t (whose
// families have their refresh interval filled in).
func newSharedViews(t *familyTable) *sharedViews {
	v := &sharedViews{views: map[string]*sharedView{}, stop: make(chan struct{})}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	for name, f := range t.byName {
		if f.Shared {
			v.views[name] = &sharedView{fam: f, sessions: map[string]map[string]*sharedEntry{}, ended: map[string]*sharedMark{}}
		}
	}
	return v
}

// sharedFamily returns session's family if it is shared, or an error naming
// what is wrong.
func (a *Adapter) sharedFamily(session string) (*sharedView, error) {
	f := a.fams.of(session)
	if f == nil || !f.Shared {
		return nil, fmt.Errorf("%w: session %q is not in a shared family (HOLDOVER_FAMILIES); shared sessions are named \"family:...\"", ErrInvalidInput, session)
	}
	return a.shared.views[f.Name], nil
}

// CommitShared records changes to a session of a shared family: this node's
// view shows them at once, and they are written within the family's flush
// delay, at that time's write timestamp. Any node may write any shared
// session; the last write of a key wins. Errors are Commit's.
func (a *Adapter) CommitShared(session string, changes ...Change) error {
	v, err := a.sharedFamily(session)
	if err != nil {
		return err
	}
	s := a.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	// Under the lock, so that the flush cannot land before the view knows
	// the write (it takes the lock to mark it landed).
	if err := a.sharedBuf.Commit(session, bufferChanges(changes)...); err != nil {
		return translate(err)
	}
	now := time.Now()
	keys := v.sessions[session]
	if keys == nil {
		keys = map[string]*sharedEntry{}
		v.sessions[session] = keys
	}
	for _, c := range changes {
		e := &sharedEntry{ts: now.UnixMicro(), unflushed: true, deleted: c.Delete}
		if !c.Delete {
			e.value = bytes.Clone(c.Value)
			if e.value == nil {
				e.value = []byte{}
			}
		}
		keys[c.Key] = e
	}
	return nil
}

// EndShared deletes every key of a shared session, on every node, unless a
// later write of a key wins over the End.
func (a *Adapter) EndShared(session string) error {
	v, err := a.sharedFamily(session)
	if err != nil {
		return err
	}
	s := a.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := a.sharedBuf.End(session); err != nil {
		return translate(err)
	}
	now := time.Now()
	v.ended[session] = &sharedMark{ts: now.UnixMicro(), unflushed: true}
	for _, e := range v.sessions[session] {
		*e = sharedEntry{ts: now.UnixMicro(), deleted: true, unflushed: true}
	}
	return nil
}

// Shared returns this node's view of a shared session: every key and its
// value, copied. A session nobody wrote is empty.
func (a *Adapter) Shared(session string) (map[string][]byte, error) {
	v, err := a.sharedFamily(session)
	if err != nil {
		return nil, err
	}
	s := a.shared
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]byte{}
	for k, e := range v.sessions[session] {
		if !e.deleted {
			out[k] = bytes.Clone(e.value)
		}
	}
	return out, nil
}

// SharedSessions lists the sessions of a shared family that hold a key in
// this node's view, sorted.
func (a *Adapter) SharedSessions(family string) ([]string, error) {
	s := a.shared
	if s == nil || s.views[family] == nil {
		return nil, fmt.Errorf("%w: %q is not a shared family (HOLDOVER_FAMILIES)", ErrInvalidInput, family)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for id, keys := range s.views[family].sessions {
		for _, e := range keys {
			if !e.deleted {
				out = append(out, id)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// flushShared writes a shared session's snapshot at the snapshot's time:
// no ownership, no lease, no fence. The buffer's Seq is strictly increasing
// per session, so each flush of this node outranks its last.
func (a *Adapter) flushShared(ctx context.Context, s *buffer.Snapshot) error {
	v, err := a.sharedFamily(s.Session)
	if err != nil {
		return buffer.Permanent(err)
	}
	ts := buffer.SeqTime(s.Seq).UnixMicro()
	w := store.SharedWrite{Family: v.fam.Name, Session: s.Session, TS: ts, Ended: s.Ended, Items: s.Items, TTL: a.ttlOfFamily(v.fam)}
	if err := a.store.WriteShared(ctx, &w); err != nil {
		return err
	}
	a.landed(v, s, ts)
	return nil
}

// landed marks the view's entries that s wrote as in Cassandra. Those
// committed again since s was taken (even with the same value), or ended
// since, wait for their own flush: marked now, they would no longer be
// shielded from an older write read meanwhile, and their own landing, at a
// later timestamp, would then be taken for another node's write.
func (a *Adapter) landed(v *sharedView, s *buffer.Snapshot, ts int64) {
	sv := a.shared
	sv.mu.Lock()
	defer sv.mu.Unlock()
	keys := v.sessions[s.Session]
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	// Under sv.mu, which every CommitShared and EndShared holds while it
	// commits: the buffer and the view agree.
	endedSince, changed := a.sharedBuf.SinceSnapshot(s.Session, names)
	if endedSince {
		return // every entry and the mark are the later End's
	}
	later := make(map[string]bool, len(names))
	for i, k := range names {
		later[k] = changed[i]
	}
	now := time.Now()
	if s.Ended {
		if m := v.ended[s.Session]; m != nil && m.unflushed {
			m.ts, m.at, m.unflushed = ts, now, false
		}
		for k, e := range keys {
			if e.unflushed && e.deleted && !later[k] {
				e.ts, e.at, e.unflushed = ts, now, false
			}
		}
	}
	for _, it := range s.Items {
		e := keys[it.Key]
		if e == nil || !e.unflushed || later[it.Key] || e.deleted != it.Delete || (!it.Delete && !bytes.Equal(e.value, it.Value)) {
			continue
		}
		e.ts, e.at, e.unflushed = ts+1, now, false
	}
}

// load reads every shared family once, for Open: the view starts as
// Cassandra holds it, and nothing is reported.
func (a *Adapter) loadShared(ctx context.Context) error {
	for _, v := range a.shared.views {
		if _, err := a.refreshShared(ctx, v); err != nil {
			return fmt.Errorf("holdover: load shared family %q: %w", v.fam.Name, translate(err))
		}
	}
	return nil
}

// startSharedRefresh re-reads each shared family on its interval and tells
// Hooks.OnSharedChange what changed.
func (a *Adapter) startSharedRefresh() {
	for _, v := range a.shared.views {
		a.shared.done.Add(1)
		go func() {
			defer a.shared.done.Done()
			t := time.NewTicker(v.fam.Refresh)
			defer t.Stop()
			for {
				select {
				case <-a.shared.stop:
					return
				case <-t.C:
				}
				select {
				case <-a.shared.stop: // a tick was ready too
					return
				default:
				}
				ctx, cancel := context.WithTimeout(a.shared.ctx, max(v.fam.Refresh, a.cfg.Timeout))
				changes, err := a.refreshShared(ctx, v)
				cancel()
				if err != nil {
					if a.shared.ctx.Err() != nil {
						return // closing
					}
					a.log.Warn("holdover: shared family not refreshed", "family", v.fam.Name, "err", err)
					continue
				}
				if len(changes) > 0 && a.hooks.OnSharedChange != nil {
					a.hooks.OnSharedChange(v.fam.Name, changes)
				}
			}
		}()
	}
}

// refreshShared reads family v and merges it into the view; it returns what
// changed.
func (a *Adapter) refreshShared(ctx context.Context, v *sharedView) ([]SharedChange, error) {
	began := time.Now()
	items, err := a.store.ReadShared(ctx, v.fam.Name)
	if err != nil {
		return nil, err
	}
	a.shared.mu.Lock()
	defer a.shared.mu.Unlock()
	return v.merge(items, began), nil
}

// merge applies a read begun at began to the view and returns the changes.
// Cassandra's answer wins, by write timestamp as Cassandra resolved it,
// except over this node's writes not landed yet and its deletes and Ends
// that a read begun before they landed may not reflect.
func (v *sharedView) merge(items []store.SharedItem, began time.Time) []SharedChange {
	var changes []SharedChange
	seen := map[string]map[string]bool{}
	for _, it := range items {
		if m := v.ended[it.Session]; m != nil && (m.unflushed || it.WriteTime <= m.ts) {
			continue // written before this node's End: deleted with it
		}
		if seen[it.Session] == nil {
			seen[it.Session] = map[string]bool{}
		}
		seen[it.Session][it.Key] = true
		keys := v.sessions[it.Session]
		if keys == nil {
			keys = map[string]*sharedEntry{}
			v.sessions[it.Session] = keys
		}
		e := keys[it.Key]
		switch {
		case e != nil && e.unflushed:
			continue // ours wins or loses when it lands
		case e != nil && e.deleted && it.WriteTime <= e.ts:
			continue // our delete landed after this value
		case e != nil && !e.deleted && it.WriteTime == e.ts && bytes.Equal(e.value, it.Value):
			e.at = began // confirmed
			continue
		case e != nil && !e.deleted && it.WriteTime < e.ts:
			continue // ours landed after the read began
		}
		value := it.Value
		if value == nil {
			value = []byte{}
		}
		keys[it.Key] = &sharedEntry{value: value, ts: it.WriteTime, at: began}
		changes = append(changes, SharedChange{Session: it.Session, Key: it.Key, Value: bytes.Clone(value)})
	}
	for id, keys := range v.sessions {
		for k, e := range keys {
			if e.unflushed || seen[id][k] || !e.at.Before(began) {
				continue
			}
			// Known to be in Cassandra before the read began, not there now:
			// deleted by another node, or expired.
			delete(keys, k)
			if !e.deleted {
				changes = append(changes, SharedChange{Session: id, Key: k, Deleted: true})
			}
		}
		if len(keys) == 0 {
			delete(v.sessions, id)
		}
	}
	for id, m := range v.ended {
		if !m.unflushed && m.at.Before(began) {
			delete(v.ended, id)
		}
	}
	slices.SortFunc(changes, func(x, y SharedChange) int {
		if x.Session != y.Session {
			return cmp.Compare(x.Session, y.Session)
		}
		return cmp.Compare(x.Key, y.Key)
	})
	return changes
}

// closeShared stops the refreshes.
func (sv *sharedViews) close() {
	if sv == nil {
		return
	}
	select {
	case <-sv.stop:
	default:
		close(sv.stop)
	}
	sv.cancel()
	sv.done.Wait()
}

// The shared families' buffer: a cap of its own (shared state is small) and
// a few writes at once.
const (
	sharedMaxPendingBytes = 64 << 20
	sharedConcurrency     = 16
)

// closeShared stops the shared families' refreshes and closes their buffer
// without waiting for it, for an Open that failed.
func (a *Adapter) closeShared(ctx context.Context) {
	if a.sharedBuf != nil {
		_, _ = a.sharedBuf.Close(ctx)
	}
	a.shared.close()
}

// checkSharedSession is the shared buffer's CheckSession.
func (a *Adapter) checkSharedSession(session string) error {
	if err := a.limits.CheckSession(session); err != nil {
		return translate(err)
	}
	if _, err := a.sharedFamily(session); err != nil {
		return err
	}
	return nil
}

// errSharedSession refuses a shared family's session on the owned paths.
func errSharedSession(session string, f *Family) error {
	return fmt.Errorf("%w: session %q is in the shared family %q: write it with CommitShared and EndShared, read it with Shared", ErrInvalidInput, session, f.Name)
}
