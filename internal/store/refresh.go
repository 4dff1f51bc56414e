package store

import (
	"context"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// RefreshState renews the TTL of a session's items that have less than
// minRemaining of it left, to the session's state TTL (Options.TTLFor, or
// StateTTL), so a resident session outliving the state TTL keeps
// the items it has not changed lately. Each item is rewritten with its own
// original write timestamp: a newer write or delete of the same key (or a
// fencing tombstone) still wins, so a refresh can never resurrect an older
// value. Items with an empty value are renewed like the others: the write time
// and TTL are read from the format column, which every item has. It returns
// how many items it renewed.
func (st *Store) RefreshState(ctx context.Context, session string, minRemaining time.Duration) (int, error) {
	if err := st.opts.Limits.CheckSession(session); err != nil {
		return 0, err
	}
	iter := st.s.Query(st.stmts.selectExpiry, session).PageSize(readPageSize).Idempotent(true).IterContext(ctx)
	var (
		key       string
		value     []byte
		format    int8
		written   int64
		remaining *int
		entries   []gocql.BatchEntry
	)
	limit := int(minRemaining / time.Second)
	ttl := st.ttlOf(session)
	for iter.Scan(&key, &value, &format, &written, &remaining) {
		if remaining == nil || *remaining >= limit {
			continue
		}
		entries = append(entries, gocql.BatchEntry{
			Stmt: st.stmts.refreshItem, Args: []any{session, key, storedValue(value), format, written, ttl}, Idempotent: true,
		})
		value = nil
	}
	if err := iter.Close(); err != nil {
		return 0, wrap("read for refresh", session, err)
	}
	// Renewals need no atomicity: write them in batches of bounded size and
	// count (fenceChunkItems: a batch of many more rows is one mutation a
	// busy node may not apply within its write timeout, every time).
	done := 0
	for len(entries) > 0 {
		n, size := 0, 0
		for n < len(entries) && n < fenceChunkItems && (n == 0 || size < refreshBatchBytes) {
			size += len(entries[n].Args[2].([]byte)) + len(entries[n].Args[1].(string))
			n++
		}
		b := st.s.Batch(gocql.UnloggedBatch)
		b.Entries = entries[:n]
		if err := st.exec(ctx, "refresh", session, b); err != nil {
			return done, err
		}
		done += n
		entries = entries[n:]
	}
	return done, nil
}

// refreshBatchBytes bounds one batch of TTL renewals.
const refreshBatchBytes = 1 << 20

// RefreshOwner renews the TTL of session's ownership row, provided node still
// owns it at epoch (a lightweight transaction). It returns false when the
// session moved on.
func (st *Store) RefreshOwner(ctx context.Context, session, node string, epoch uint64, ttl time.Duration) (bool, error) {
	applied, err := st.s.Query(st.stmts.refreshOwner, ttlSeconds(ttl), node, int64(epoch), session, node, int64(epoch)).
		MapScanCASContext(ctx, map[string]any{})
	if err != nil {
		return false, wrap("refresh owner", session, err)
	}
	return applied, nil
}
