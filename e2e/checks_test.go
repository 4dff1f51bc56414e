//go:build drills

package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// sessionIDs are the IDs the load generator gives its sessions.
func sessionIDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return ids
}

// forEach runs f on every session, 16 at a time.
func forEach(ids []string, f func(i int, id string)) {
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i, id)
		}()
	}
	wg.Wait()
}

// ownership is who holds each session once the load has stopped.
type ownership struct {
	// views holds, for each session resident on exactly one live node, that
	// node's view of it.
	views map[string]view
	// Duplicates counts sessions resident on more than one live node: two
	// nodes would both serve (and write) them.
	Duplicates int
	// OwnerMismatch counts sessions held by one node while the owners table
	// names another (or none).
	OwnerMismatch int
	// Unowned counts sessions the owners table knows that no live node holds.
	Unowned int
	// Errors counts sessions a node or Cassandra could not be asked about.
	Errors  int
	details []string
}

func (o *ownership) note(format string, args ...any) {
	if len(o.details) < 10 {
		o.details = append(o.details, fmt.Sprintf(format, args...))
	}
}

// checkOwnership asks every live node about every session (without
// adopting) and compares the answers with the owners table.
func checkOwnership(ctx context.Context, live []*holdoverNode, rd *reader, ids []string) ownership {
	o := ownership{views: map[string]view{}}
	var mu sync.Mutex
	forEach(ids, func(_ int, id string) {
		var holders []*holdoverNode
		var v view
		bad := false
		for _, n := range live {
			a := n.get(ctx, id, false)
			switch {
			case a.Status == 200 && a.Err == nil:
				holders = append(holders, n)
				v = a.View
			case a.Status == 404:
			default:
				bad = true
				mu.Lock()
				o.note("%s on %s: %v", id, n.short, a.Err)
				mu.Unlock()
			}
		}
		row, err := rd.owner(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case bad || err != nil:
			o.Errors++
			if err != nil {
				o.note("%s: %v", id, err)
			}
		case len(holders) > 1:
			o.Duplicates++
			names := []string{}
			for _, h := range holders {
				names = append(names, h.short)
			}
			o.note("DUPLICATE owner: %s is resident on %v (owners row: %s epoch %d)", id, names, row.Node, row.Epoch)
		case len(holders) == 1:
			o.views[id] = v
			if !row.Found || row.Node != holders[0].id {
				o.OwnerMismatch++
				o.note("%s is resident on %s but the owners row names %q (found=%v)", id, holders[0].short, row.Node, row.Found)
			}
		case row.Found:
			o.Unowned++
		}
	})
	return o
}

// persisted compares, for every session a single live node holds, the state
// in Cassandra with the node's view. It returns how many acknowledged
// changes Cassandra lacks (versions the view has above the persisted one)
// and how many sessions differ at all.
func persisted(ctx context.Context, rd *reader, views map[string]view) (missingChanges int64, mismatched int, details []string) {
	var mu sync.Mutex
	ids := slices.Sorted(maps.Keys(views))
	forEach(ids, func(_ int, id string) {
		v := views[id]
		items, err := rd.items(ctx, id)
		var d decoded
		if err == nil {
			d, err = decode(items)
		}
		diff := ""
		var missing int64
		switch {
		case err != nil:
			diff = err.Error()
			missing = int64(v.Version)
		case d.Version < v.Version:
			diff = fmt.Sprintf("persisted version %d, the node holds %d", d.Version, v.Version)
			missing = int64(v.Version - d.Version)
		case d.Version > v.Version:
			diff = fmt.Sprintf("persisted version %d is ahead of the node's %d", d.Version, v.Version)
		case !maps.Equal(d.Attrs, nonNil(v.Attrs)) || !slices.Equal(d.History, v.History):
			diff = fmt.Sprintf("state at version %d differs from the node's", v.Version)
			missing = 1
		}
		if diff == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		mismatched++
		missingChanges += missing
		if len(details) < 10 {
			details = append(details, id+": "+diff)
		}
	})
	return missingChanges, mismatched, details
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// snapshot reads the persisted items of every session.
func snapshot(ctx context.Context, rd *reader, ids []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(ids))
	var mu sync.Mutex
	var firstErr error
	forEach(ids, func(_ int, id string) {
		items, err := rd.items(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		out[id] = items
	})
	return out, firstErr
}

// changedSessions counts sessions whose persisted items differ between two
// snapshots taken while no load ran: each is a write that should not have
// happened (a stale owner's).
func changedSessions(before, after map[string]map[string]string) (n int, details []string) {
	for _, id := range slices.Sorted(maps.Keys(before)) {
		if !maps.Equal(before[id], after[id]) {
			n++
			if len(details) < 10 {
				details = append(details, fmt.Sprintf("%s: %d items before, %d after; %s", id, len(before[id]), len(after[id]), firstDiff(before[id], after[id])))
			}
		}
	}
	return n, details
}

func firstDiff(a, b map[string]string) string {
	keys := slices.Sorted(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		va, oka := a[k]
		vb, okb := b[k]
		if oka != okb || va != vb {
			return fmt.Sprintf("key %s: %q (present %v) -> %q (present %v)", k, va, oka, vb, okb)
		}
	}
	return "no difference"
}
