package store

import "fmt"

// statements holds the CQL text of every statement the store runs; the driver
// prepares each one on first use (all values are bound, never interpolated).
type statements struct {
	deleteSession string
	insertItem    string
	deleteItem    string
	selectItems   string
	selectItemsTo string // keys and write times of a session up to a key (ReadState's check)
	selectStates  string // selectItems of several sessions (ReadStates)
	selectExpiry  string
	refreshItem   string

	selectOwner  string
	createOwner  string
	claimOwner   string
	claimRelease string
	claimEnded   string
	endOwner     string
	releaseOwner string
	refreshOwner string
	deleteOwner  string

	indexOwner   string
	unindexOwner string
	selectOwned  string
	selectStamps string // write times of some of a node's entries (MoveIndex's stale)

	upsertLease  string
	takeLease    string
	retakeLease  string
	checkLease   string
	renewLeaseAs string
	deleteLease  string
	selectLease  string
	selectLeases string

	deleteShared     string
	insertShared     string
	deleteSharedItem string
	selectShared     string
}

func newStatements(ks string, t Tables) statements {
	state := ks + "." + t.State
	owners := ks + "." + t.Owners
	index := ks + "." + t.OwnerIndex
	leases := ks + "." + t.Leases
	shared := ks + "." + t.Shared
	return statements{
		deleteSession: fmt.Sprintf(`DELETE FROM %s USING TIMESTAMP ? WHERE session = ?`, state),
		insertItem:    fmt.Sprintf(`INSERT INTO %s (session, key, value, format) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`, state),
		deleteItem:    fmt.Sprintf(`DELETE FROM %s USING TIMESTAMP ? WHERE session = ? AND key = ?`, state),
		selectItems:   fmt.Sprintf(`SELECT key, value, format, WRITETIME(format) FROM %s WHERE session = ?`, state),
		selectItemsTo: fmt.Sprintf(`SELECT key, WRITETIME(format) FROM %s WHERE session = ? AND key <= ?`, state),
		selectStates:  fmt.Sprintf(`SELECT session, key, value, format FROM %s WHERE session IN ?`, state),
		selectExpiry:  fmt.Sprintf(`SELECT key, value, format, WRITETIME(format), TTL(format) FROM %s WHERE session = ?`, state),
		refreshItem:   fmt.Sprintf(`INSERT INTO %s (session, key, value, format) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`, state),

		selectOwner:  fmt.Sprintf(`SELECT owner, epoch, released, claimed_at, ended FROM %s WHERE session = ?`, owners),
		createOwner:  fmt.Sprintf(`INSERT INTO %s (session, owner, epoch, released, claimed_at) VALUES (?, ?, 1, false, ?) IF NOT EXISTS USING TTL ?`, owners),
		claimOwner:   fmt.Sprintf(`UPDATE %s USING TTL ? SET owner = ?, epoch = ?, released = false, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = ?`, owners),
		claimEnded:   fmt.Sprintf(`UPDATE %s USING TTL ? SET owner = ?, epoch = ?, released = false, ended = false, claimed_at = ? WHERE session = ? IF owner = '' AND epoch = ? AND ended = true`, owners),
		endOwner:     fmt.Sprintf(`UPDATE %s USING TTL ? SET owner = '', epoch = ?, released = false, ended = true, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = ?`, owners),
		claimRelease: fmt.Sprintf(`UPDATE %s USING TTL ? SET owner = ?, epoch = ?, released = false, claimed_at = ? WHERE session = ? IF owner = ? AND epoch = ? AND released = true`, owners),
		releaseOwner: fmt.Sprintf(`UPDATE %s USING TTL ? SET released = true, owner = ?, epoch = ? WHERE session = ? IF owner = ? AND epoch = ?`, owners),
		refreshOwner: fmt.Sprintf(`UPDATE %s USING TTL ? SET owner = ?, epoch = ? WHERE session = ? IF owner = ? AND epoch = ?`, owners),
		deleteOwner:  fmt.Sprintf(`DELETE FROM %s WHERE session = ? IF epoch = ?`, owners),

		indexOwner:   fmt.Sprintf(`INSERT INTO %s (owner, session, epoch) VALUES (?, ?, ?) USING TIMESTAMP ? AND TTL ?`, index),
		unindexOwner: fmt.Sprintf(`DELETE FROM %s USING TIMESTAMP ? WHERE owner = ? AND session = ?`, index),
		selectOwned:  fmt.Sprintf(`SELECT session, epoch FROM %s WHERE owner = ?`, index),
		selectStamps: fmt.Sprintf(`SELECT session, WRITETIME(epoch) FROM %s WHERE owner = ? AND session IN ?`, index),

		upsertLease:  fmt.Sprintf(`UPDATE %s USING TTL ? SET renewed_at = toTimestamp(now()), ttl_ms = ?, since = ? WHERE node = ?`, leases),
		takeLease:    fmt.Sprintf(`INSERT INTO %s (node, renewed_at, ttl_ms, incarnation, since) VALUES (?, toTimestamp(now()), ?, ?, ?) IF NOT EXISTS USING TTL ?`, leases),
		retakeLease:  fmt.Sprintf(`UPDATE %s USING TTL ? SET renewed_at = toTimestamp(now()), ttl_ms = ?, incarnation = ?, since = ? WHERE node = ? IF renewed_at = ?`, leases),
		checkLease:   fmt.Sprintf(`UPDATE %s USING TTL ? SET renewed_at = toTimestamp(now()), ttl_ms = ?, since = ? WHERE node = ? IF incarnation = ?`, leases),
		renewLeaseAs: fmt.Sprintf(`UPDATE %s USING TTL ? SET renewed_at = toTimestamp(now()), ttl_ms = ?, since = ?, incarnation = ? WHERE node = ?`, leases),
		deleteLease:  fmt.Sprintf(`DELETE FROM %s WHERE node = ? IF incarnation = ?`, leases),
		selectLease:  fmt.Sprintf(`SELECT renewed_at, ttl_ms, TTL(renewed_at), incarnation, since FROM %s WHERE node = ?`, leases),
		selectLeases: fmt.Sprintf(`SELECT node, renewed_at, ttl_ms, TTL(renewed_at), incarnation, since FROM %s`, leases),

		deleteShared:     fmt.Sprintf(`DELETE FROM %s USING TIMESTAMP ? WHERE family = ? AND session = ?`, shared),
		insertShared:     fmt.Sprintf(`INSERT INTO %s (family, session, key, value) VALUES (?, ?, ?, ?) USING TIMESTAMP ? AND TTL ?`, shared),
		deleteSharedItem: fmt.Sprintf(`DELETE FROM %s USING TIMESTAMP ? WHERE family = ? AND session = ? AND key = ?`, shared),
		selectShared:     fmt.Sprintf(`SELECT session, key, value, WRITETIME(value) FROM %s WHERE family = ?`, shared),
	}
}
