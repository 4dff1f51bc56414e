package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Owner is a session's ownership row.
type Owner struct {
	Node      string
	Epoch     uint64
	Released  bool
	ClaimedAt time.Time
	// Ended marks the row of a session that ended: it remembers the epoch the
	// session ended at (one above its last owner's), so a session started
	// afresh with the same ID ranks above the End's tombstone. Nobody owns
	// an ended session (Node is empty); it cannot be adopted.
	Ended bool
}

// ReadOwner returns the session's ownership row; found is false when the
// session has none (it never existed, ended, or expired).
func (st *Store) ReadOwner(ctx context.Context, session string) (o Owner, found bool, err error) {
	return st.readOwner(ctx, session, st.opts.Consistency)
}

// ReadOwnerSerial is ReadOwner at the serial consistency level: it also sees
// a claim whose lightweight transaction is still being decided.
func (st *Store) ReadOwnerSerial(ctx context.Context, session string) (Owner, bool, error) {
	return st.readOwner(ctx, session, st.opts.SerialConsistency)
}

func (st *Store) readOwner(ctx context.Context, session string, cl gocql.Consistency) (o Owner, found bool, err error) {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return Owner{}, false, err
	}
	var epoch int64
	err = st.s.Query(st.stmts.selectOwner, session).Consistency(cl).Idempotent(true).SetSpeculativeExecutionPolicy(st.hedged()).
		ScanContext(ctx, &o.Node, &epoch, &o.Released, &o.ClaimedAt, &o.Ended)
	if errors.Is(err, gocql.ErrNotFound) {
		return Owner{}, false, nil
	}
	if err != nil {
		return Owner{}, false, wrap("read owner", session, err)
	}
	o.Epoch = uint64(epoch)
	return o, true, nil
}

// CreateOwner records node as the owner of a new session with a lightweight
// transaction: at epoch 1 (INSERT IF NOT EXISTS), or, when the ID belongs to
// a session that ended, one epoch above the ended row (a compare-and-set on
// it), so every write of the new session outranks the End's tombstone. When
// the session already has a live owner, created is false and cur is that
// owner; otherwise cur is the row as created.
//
// ended, when not 0, is the epoch of the ended row the caller expects (it
// ended the session itself): the compare-and-set on it is tried first, one
// lightweight transaction instead of two for a session started again on the
// node that ended it. A wrong guess costs one round and falls back.
func (st *Store) CreateOwner(ctx context.Context, session, node string, ended uint64, ttl time.Duration) (created bool, cur Owner, err error) {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return false, Owner{}, err
	}
	if ended != 0 {
		created, cur, err = st.recreate(ctx, session, Owner{Epoch: ended, Ended: true}, node, ttl)
		if err != nil || created || (cur.Epoch != 0 && !cur.Ended) {
			return created, cur, err
		}
		if cur.Ended { // ended at another epoch than expected
			if created, cur, err = st.recreate(ctx, session, cur, node, ttl); err != nil || created || (cur.Epoch != 0 && !cur.Ended) {
				return created, cur, err
			}
		}
	}
	// A re-creation races other creators and re-creators: a few rounds settle
	// it unless the ID is ended and started again faster than that.
	for range 4 {
		prev := map[string]any{}
		now := time.Now()
		q := st.s.Query(st.stmts.createOwner, session, node, now, ttlSeconds(ttl))
		applied, err := q.MapScanCASContext(ctx, prev)
		if err != nil {
			created, cur, err = st.settleCAS(ctx, "create owner", session, node, 1, now, Owner{}, err)
			if err != nil || created || !cur.Ended {
				return created, cur, err
			}
		} else if applied {
			return true, Owner{Node: node, Epoch: 1}, nil
		} else if cur = ownerFromCAS(prev); !cur.Ended {
			return false, cur, nil
		}
		created, cur, err = st.recreate(ctx, session, cur, node, ttl)
		if err != nil || created || (cur.Epoch != 0 && !cur.Ended) {
			return created, cur, err
		}
	}
	return false, Owner{}, wrap("create owner", session, errors.New("the session was ended and started again concurrently; retry"))
}

// errEpochLimit refuses a claim or a fresh start past MaxEpoch: a write's
// timestamp carries the epoch in its high bits, and no timestamp can carry
// more.
var errEpochLimit = fmt.Errorf("epoch limit reached: the session ID has been owned at %d epochs, the most a write timestamp carries "+
	"(an adoption or a recovery takes one, an End and a fresh start two); it can start afresh once its ended row expires "+
	"(HOLDOVER_ENDED_TTL after its End), or under another ID", uint64(MaxEpoch))

// recreate claims the ended row prev for node at the next epoch.
func (st *Store) recreate(ctx context.Context, session string, prev Owner, node string, ttl time.Duration) (bool, Owner, error) {
	next := prev.Epoch + 1
	if next > MaxEpoch {
		return false, prev, wrap("create owner", session, permanent(errEpochLimit))
	}
	now := time.Now()
	row := map[string]any{}
	applied, err := st.s.Query(st.stmts.claimEnded, ttlSeconds(ttl), node, int64(next), now, session, int64(prev.Epoch)).MapScanCASContext(ctx, row)
	if err != nil {
		return st.settleCAS(ctx, "create owner", session, node, next, now, prev, err)
	}
	if applied {
		return true, Owner{Node: node, Epoch: next, ClaimedAt: now}, nil
	}
	return false, ownerFromCAS(row), nil
}

// Claim makes node the owner of session at epoch prev.Epoch+1, provided the
// ownership row still holds prev's owner and epoch, and, when prev is
// released, is still released (a compare-and-set by lightweight transaction).
// Exactly one of concurrent claimants of the same epoch wins; the others get
// won == false and the row that beat them (or the same row, no longer
// released). cur is zero when the row no longer exists.
func (st *Store) Claim(ctx context.Context, session string, prev Owner, node string, ttl time.Duration) (won bool, cur Owner, err error) {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return false, Owner{}, err
	}
	if prev.Ended || prev.Node == "" {
		return false, prev, nil // an ended session is nobody's to claim
	}
	next := prev.Epoch + 1
	if next > MaxEpoch {
		return false, prev, wrap("claim", session, permanent(errEpochLimit))
	}
	now := time.Now()
	row := map[string]any{}
	// The condition names the owner too, so a losing claimant is told both
	// the epoch and the owner that beat it.
	stmt := st.stmts.claimOwner
	if prev.Released {
		stmt = st.stmts.claimRelease
	}
	q := st.s.Query(stmt, ttlSeconds(ttl), node, int64(next), now, session, prev.Node, int64(prev.Epoch))
	applied, err := q.MapScanCASContext(ctx, row)
	if err != nil {
		return st.settleCAS(ctx, "claim", session, node, next, now, prev, err)
	}
	if applied {
		return true, Owner{Node: node, Epoch: next, ClaimedAt: now}, nil
	}
	cur = ownerFromCAS(row)
	if cur.Epoch == 0 {
		// The row is gone: learn its state afresh.
		o, found, rerr := st.ReadOwnerSerial(ctx, session)
		if rerr != nil {
			return false, Owner{}, rerr
		}
		if !found {
			return false, Owner{}, nil
		}
		cur = o
	}
	return false, cur, nil
}

// settleCAS decides the outcome of a lightweight transaction whose reply was
// lost (a timeout or an unknown CAS write): it reads the row at serial
// consistency, which completes any in-progress Paxos round, and reports
// whether node now owns the session at epoch by this very write, the one
// that stamped claimed_at with stamp. A row naming node at epoch with
// another stamp is an earlier incarnation's of this node ID (released,
// say): this write did not apply, and the caller must claim that row as
// any other (and fence it), not take it as its own. A row still as the
// transaction expected it (was: its condition's owner, epoch, release and
// end; zero for a create, which expected none) means the transaction did not
// apply and nobody else's did: casErr is the answer, to retry, not a row that
// beat it (a claim told so named the row's owner, perhaps this very node
// recovering its own row, as the winner, and its flush dropped the session's
// acknowledged changes as adopted elsewhere).
func (st *Store) settleCAS(ctx context.Context, op, session, node string, epoch uint64, stamp time.Time, was Owner, casErr error) (bool, Owner, error) {
	if !isPermanent(casErr) && ctx.Err() == nil {
		o, found, err := st.ReadOwnerSerial(ctx, session)
		if err == nil {
			if found && o.Node == node && o.Epoch == epoch && o.ClaimedAt.Equal(stamp.Truncate(time.Millisecond)) {
				return true, o, nil
			}
			unchanged := was.Epoch != 0 && o.Node == was.Node && o.Epoch == was.Epoch && o.Released == was.Released && o.Ended == was.Ended
			if found && !unchanged {
				return false, o, nil
			}
		}
	}
	return false, Owner{}, wrap(op, session, casErr)
}

// Release marks the session released by node at epoch, so a peer may adopt it
// at once without waiting for node's lease to expire. It does nothing (and
// returns false) when node no longer owns the session at that epoch. The
// owner and epoch are written again with the flag, at ttl: written last by
// the claim or a refresh, they would otherwise expire before it, and the row
// would read as released by nobody, which no claim can name.
func (st *Store) Release(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	row := map[string]any{}
	applied, err := st.s.Query(st.stmts.releaseOwner, ttlSeconds(ttl), node, int64(epoch), session, node, int64(epoch)).MapScanCASContext(ctx, row)
	if err != nil {
		return false, wrap("release", session, err)
	}
	return applied, nil
}

// EndOwner records that the session ended, provided node still owns it at
// epoch: the row stays, marked ended one epoch above with no owner, for ttl, so that a
// session started afresh with the same ID (CreateOwner) ranks above the End's
// tombstone, and a stale claim naming epoch fails. ttl must cover the time
// Cassandra keeps that tombstone (the state table's gc_grace_seconds). It
// returns false when the row moved on or was gone.
func (st *Store) EndOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	row := map[string]any{}
	applied, err := st.s.Query(st.stmts.endOwner, ttlSeconds(ttl), int64(epoch+1), time.Now(), session, node, int64(epoch)).MapScanCASContext(ctx, row)
	if err != nil {
		return false, wrap("end owner", session, err)
	}
	return applied, nil
}

// DeleteOwner removes the session's ownership row if it is still at epoch.
// It returns false when the row moved on or was gone. Ending a session uses
// EndOwner, which keeps what a later session of the same ID must rank above.
func (st *Store) DeleteOwner(ctx context.Context, session string, epoch uint64) (bool, error) {
	row := map[string]any{}
	applied, err := st.s.Query(st.stmts.deleteOwner, session, int64(epoch)).MapScanCASContext(ctx, row)
	if err != nil {
		return false, wrap("delete owner", session, err)
	}
	return applied, nil
}

func ownerFromCAS(row map[string]any) Owner {
	var o Owner
	if v, ok := row["owner"].(string); ok {
		o.Node = v
	}
	if v, ok := row["epoch"].(int64); ok {
		o.Epoch = uint64(v)
	}
	if v, ok := row["released"].(bool); ok {
		o.Released = v
	}
	if v, ok := row["claimed_at"].(time.Time); ok {
		o.ClaimedAt = v
	}
	if v, ok := row["ended"].(bool); ok {
		o.Ended = v
	}
	// A failed condition returns only the columns it names: an ended row is
	// told by its empty owner.
	o.Ended = o.Ended || (o.Node == "" && o.Epoch > 0)
	return o
}

// ttlSeconds rounds a TTL up to whole seconds, at least one.
func ttlSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}
