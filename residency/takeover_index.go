package residency

import (
	"context"
	"sync"

	"github.com/holdover/holdover/internal/store"
)

// moveChunk is how many settled sessions' owner index entries a takeover
// moves at once while it runs, so that little is left to move once its
// last session is settled: store.MoveIndex writes them in batches of a
// hundred entries, inserts and deletes apart, eight batches at a time, so
// 400 entries make one round of it, small enough not to hold the claims
// back.
const moveChunk = 400

// indexMove moves the owner index entries of a takeover's sessions from the
// node taken over to this one as the sessions are settled: those adopted to
// this node's entries, those skipped out of the index. The index is a hint:
// a move that fails is logged, not returned.
type indexMove struct {
	m    *Manager
	ctx  context.Context
	from string

	mu      sync.Mutex
	moved   []store.Owned
	stale   []string
	busy    bool           // a chunk is on its way
	running sync.WaitGroup // the chunk on its way
}

// add records a settled session: adopted (moved) or skipped (stale), and
// starts moving a chunk once one has gathered and none is on its way.
func (x *indexMove) add(moved *store.Owned, stale string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if moved != nil {
		x.moved = append(x.moved, *moved)
	} else {
		x.stale = append(x.stale, stale)
	}
	if x.busy || len(x.moved)+len(x.stale) < moveChunk {
		return
	}
	x.busy = true
	ms, ss := x.moved, x.stale
	x.moved, x.stale = nil, nil
	x.running.Add(1)
	go func() {
		defer x.running.Done()
		x.move(ms, ss)
		x.mu.Lock()
		x.busy = false
		x.mu.Unlock()
	}()
}

// finish moves what is left once the chunk on its way has landed. Call it
// when no more sessions will be added.
func (x *indexMove) finish() {
	x.running.Wait()
	x.move(x.moved, x.stale)
	x.moved, x.stale = nil, nil
}

func (x *indexMove) move(moved []store.Owned, stale []string) {
	if len(moved)+len(stale) == 0 {
		return
	}
	if err := x.m.store.MoveIndex(x.ctx, x.from, x.m.cfg.NodeID, moved, stale, x.m.cfg.OwnershipTTL); err != nil {
		x.m.cfg.Logger.Warn("holdover: owner index not moved after a takeover", "node", x.from, "sessions", len(moved)+len(stale), "err", err)
	}
}
