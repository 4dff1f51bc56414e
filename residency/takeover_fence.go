package residency

import (
	"context"
	"sync"
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
	// fencesInFlight is how many fence requests may be on their way at once.
	fencesInFlight = 4
)

// fencer groups the fences of a takeover's claimed sessions: a fence joins
// those waiting to be sent, and a group leaves when it is full (fenceGroup
// sessions, or fenceGroupBytes) or its oldest fence has waited fenceWait,
// with at most fencesInFlight groups on their way. A lone fence is thus
// delayed by fenceWait at most; under load every request carries
// fenceGroup sessions.
type fencer struct {
	ctx context.Context
	st  Store

	mu      sync.Mutex
	queue   []*fenceCall // waiting to be sent, in arrival order
	sending int          // groups on their way
	armed   bool         // a timer will dispatch when the oldest fence waiting has waited fenceWait
}

// fenceCall is one session's fence, waiting for its group to answer.
type fenceCall struct {
	f     store.Fencing
	bytes int
	at    time.Time // when it joined the queue
	err   error
	done  chan struct{}
}

func newFencer(ctx context.Context, st Store) *fencer { return &fencer{ctx: ctx, st: st} }

// fence writes f's fence, with others waiting at the same time, and returns
// once it has landed (nil) or failed (the error of f's session only).
func (fc *fencer) fence(f store.Fencing) error {
	c := &fenceCall{f: f, bytes: f.Bytes(), at: time.Now(), done: make(chan struct{})}
	fc.mu.Lock()
	fc.queue = append(fc.queue, c)
	fc.dispatch()
	fc.mu.Unlock()
	<-c.done
	return c.err
}

// dispatch sends the fences waiting, in arrival order, in groups that are
// full or whose oldest fence has waited fenceWait, while fewer than
// fencesInFlight groups are on their way; otherwise it makes sure a timer
// will look again. mu held.
func (fc *fencer) dispatch() {
	for fc.sending < fencesInFlight && len(fc.queue) > 0 {
		n, size := 1, fc.queue[0].bytes
		for n < len(fc.queue) && n < fenceGroup && size+fc.queue[n].bytes <= fenceGroupBytes {
			size += fc.queue[n].bytes
			n++
		}
		full := n == fenceGroup || n < len(fc.queue)
		if wait := fenceWait - time.Since(fc.queue[0].at); !full && wait > 0 {
			if !fc.armed {
				fc.armed = true
				time.AfterFunc(wait, func() {
					fc.mu.Lock()
					fc.armed = false
					fc.dispatch()
					fc.mu.Unlock()
				})
			}
			return
		}
		group := fc.queue[:n:n]
		fc.queue = fc.queue[n:]
		fc.sending++
		go fc.send(group)
	}
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
	fc.mu.Lock()
	fc.sending--
	fc.dispatch()
	fc.mu.Unlock()
}
