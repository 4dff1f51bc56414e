package residency

import (
	"context"
	"time"

	"github.com/holdover/holdover/internal/store"
)

const (
	// fenceGroup bounds the sessions of one fence request: Cassandra warns
	// about unlogged batches spanning more partitions
	// (unlogged_batch_across_partitions_warn_threshold, 10).
	fenceGroup = 10
	// fenceGroupBytes bounds the estimated size of one fence request
	// (store.Fencing.Bytes): Cassandra's batch_size_warn_threshold, 5 KiB,
	// above which it logs every batch. A larger fence goes alone.
	fenceGroupBytes = 5 << 10
	// fenceWait is how long a fence waits for others to fill its group.
	fenceWait = 5 * time.Millisecond
	// fencesInFlight is how many fence requests a takeover may have on their
	// way at once.
	fencesInFlight = 4
)

// fencer groups the fences of a takeover's claimed sessions (and of a burst
// of woken adoptions): a fence joins those waiting to be sent, and a group
// leaves when it is full (fenceGroup sessions, or fenceGroupBytes) or its
// oldest fence has waited fenceWait, with at most inFlight groups on their
// way (fencesInFlight for a takeover). A lone fence is thus delayed by
// fenceWait at most; under load every request carries fenceGroup sessions.
type fencer struct {
	ctx context.Context
	st  Store
	b   batcher[*fenceCall]
}

// fenceCall is one session's fence, waiting for its group to answer.
type fenceCall struct {
	f     store.Fencing
	bytes int
	err   error
	done  chan struct{}
}

func newFencer(ctx context.Context, st Store, inFlight int) *fencer {
	fc := &fencer{ctx: ctx, st: st}
	fc.b = batcher[*fenceCall]{wait: fenceWait, inFlight: inFlight, group: fenceGroupOf, send: fc.send}
	return fc
}

// fence writes f's fence, with others waiting at the same time, and returns
// once it has landed (nil) or failed (the error of f's session only), or
// with ctx's error when ctx ends first: the group's request, which serves
// other callers too, goes on, and the fence may still land.
func (fc *fencer) fence(ctx context.Context, f store.Fencing) error {
	c := &fenceCall{f: f, bytes: f.Bytes(), done: make(chan struct{})}
	fc.b.add(c)
	select {
	case <-c.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.err
}

// fenceGroupOf is the next group of fences: up to fenceGroup of them under
// fenceGroupBytes (a larger fence goes alone); full when it holds
// fenceGroup, or when the next would not fit.
func fenceGroupOf(queue []*fenceCall) (int, bool) {
	n, size := 1, queue[0].bytes
	for n < len(queue) && n < fenceGroup && size+queue[n].bytes <= fenceGroupBytes {
		size += queue[n].bytes
		n++
	}
	return n, n == fenceGroup || n < len(queue)
}

// send writes one group's fences and answers each of its callers.
func (fc *fencer) send(group []*fenceCall) {
	fs := make([]store.Fencing, len(group))
	for i, c := range group {
		fs[i] = c.f
	}
	errs := make([]error, len(group))
	fc.st.FenceSessions(fc.ctx, fs, errs)
	for i, c := range group {
		c.err = errs[i]
		close(c.done)
	}
}
