package store

import (
	"context"
	"fmt"
	"slices"
)

// ReadStates reads several sessions' states, each as ReadState does, and
// stores the items of sessions[i] in items[i] and the outcome in errs[i].
// Sessions whose partitions have the same first replica are read by one
// request (a SELECT naming them with IN), which that replica answers with
// one read per partition but the coordinator handles once; groups for
// different replicas run concurrently. A row that cannot be decoded fails
// its session only (ErrCorrupt); a failed request fails each session it
// read. items and errs must be as long as sessions.
func (st *Store) ReadStates(ctx context.Context, sessions []string, items [][]Item, errs []error) {
	valid := make([]int, 0, len(sessions))
	for i, s := range sessions {
		if err := st.opts.Limits.CheckSession(s); err != nil {
			errs[i] = err
			continue
		}
		valid = append(valid, i)
	}
	if len(valid) == 0 {
		return
	}
	groups := st.replicaGroups(valid, func(i int) string { return sessions[i] })
	eachGroup(groups, func(idx []int) { st.readGroup(ctx, sessions, idx, items, errs) })
}

// readGroup reads sessions[idx...] in one request.
func (st *Store) readGroup(ctx context.Context, sessions []string, idx []int, items [][]Item, errs []error) {
	if len(idx) == 1 {
		i := idx[0]
		items[i], errs[i] = st.ReadState(ctx, sessions[i])
		return
	}
	type state struct {
		items []Item
		bad   error
		given bool
		page  int  // the page its first row came on
		torn  bool // its rows came on several pages: read again alone
	}
	read := make(map[string]*state, len(idx))
	ids := make([]string, 0, len(idx))
	for _, i := range idx {
		if read[sessions[i]] == nil {
			read[sessions[i]] = &state{}
			ids = append(ids, sessions[i])
		}
	}
	iter := st.s.Query(st.stmts.selectStates, ids).PageSize(readPageSize).Idempotent(true).
		SetSpeculativeExecutionPolicy(st.hedged()).IterContext(ctx)
	var (
		session, key string
		value        []byte
		format       int8
		page         int
	)
	for {
		if iter.WillSwitchPage() {
			page++
		}
		if !iter.Scan(&session, &key, &value, &format) {
			break
		}
		s := read[session]
		if s == nil { // not asked for: cannot happen
			continue
		}
		if len(s.items) == 0 {
			s.page = page
		} else if s.page != page {
			// Each page is a read of its own: a snapshot that landed
			// between two would be seen in part (see ReadState).
			s.torn = true
		}
		if format != formatV1 && s.bad == nil {
			s.bad = fmt.Errorf("%w: session %q key %q has format %d, this version reads %d", ErrCorrupt, session, key, format, formatV1)
		}
		s.items = append(s.items, Item{Key: key, Value: value})
		value = nil
	}
	if err := iter.Close(); err != nil {
		for _, i := range idx {
			errs[i] = wrap("read", sessions[i], err)
		}
		return
	}
	for _, i := range idx {
		s := read[sessions[i]]
		switch {
		case s.torn && s.bad == nil:
			items[i], errs[i] = st.ReadState(ctx, sessions[i])
		case s.bad != nil:
			errs[i] = wrap("read", sessions[i], permanent(s.bad))
		case s.given: // a session named twice gets a slice of its own each time
			items[i] = slices.Clone(s.items)
		default:
			items[i], s.given = s.items, true
		}
	}
}
