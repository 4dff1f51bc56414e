package buffer

import (
	"context"
	"fmt"
	"sync/atomic"
)

// waiter counts the sessions a Flush call still waits for.
type waiter struct {
	n    atomic.Int64
	done chan struct{}
}

func (w *waiter) done1() {
	if w.n.Add(-1) == 0 {
		close(w.done)
	}
}

// Flush returns nil once every change committed before the call is durable: written
// by the FlushFunc, or dropped after a permanent error (and reported to OnDrop), or
// discarded. It starts the flush of every dirty session at once rather than after
// Delay; sessions in backoff keep their retry time. On a paused buffer it waits until
// Resume. It returns ctx's error if ctx ends first (the flushes continue), and
// ErrClosed if Close finished with some of that state unwritten.
func (b *Buffer) Flush(ctx context.Context) error {
	w := b.expedite()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		select {
		case <-w.done: // durable as ctx ended
			return nil
		default:
			return ctx.Err()
		}
	case <-b.closedCh:
		select {
		case <-w.done:
			return nil
		default:
			return fmt.Errorf("%w with unwritten state", ErrClosed)
		}
	}
}

// expedite makes every session with unflushed state due now and returns a waiter
// released when each has landed the state it had at the call.
func (b *Buffer) expedite() *waiter {
	w := &waiter{done: make(chan struct{})}
	w.n.Store(1)
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		for _, s := range sh.sessions {
			need := s.gen
			if s.dirty() {
				need++
			}
			if s.landed >= need {
				continue
			}
			w.n.Add(1)
			s.waits = append(s.waits, flushWait{w: w, need: need})
			sh.hurry(s)
		}
		sh.mu.Unlock()
	}
	b.kickNow()
	w.done1()
	return w
}
