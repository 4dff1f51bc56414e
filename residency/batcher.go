package residency

import (
	"sync"
	"time"
)

// batcher gathers calls that arrive close together into requests: a call
// joins the queue, and a group leaves when group says the calls at the head
// of the queue fill one, or when the oldest call has waited wait, with at
// most inFlight groups on their way. A lone call is thus delayed by wait at
// most; under load every request is full. The takeover's fences and the
// reads and fences of a burst of woken adoptions go through one each.
type batcher[C any] struct {
	wait     time.Duration
	inFlight int
	// group returns how many calls at the head of queue (not empty) make
	// the next group, and whether that group is full.
	group func(queue []C) (n int, full bool)
	// send makes one group's request and answers each of its calls.
	send func(group []C)

	mu      sync.Mutex
	queue   []C         // waiting to be sent, in arrival order
	at      []time.Time // when each joined the queue
	sending int         // groups on their way
	armed   bool        // a timer will dispatch when the oldest call has waited wait
}

// add queues c; its group answers it.
func (b *batcher[C]) add(c C) {
	b.mu.Lock()
	b.queue = append(b.queue, c)
	b.at = append(b.at, time.Now())
	b.dispatch()
	b.mu.Unlock()
}

// dispatch sends the calls waiting, in arrival order, in groups that are
// full or whose oldest call has waited wait, while fewer than inFlight
// groups are on their way; otherwise it makes sure a timer will look
// again. mu held.
func (b *batcher[C]) dispatch() {
	for b.sending < b.inFlight && len(b.queue) > 0 {
		n, full := b.group(b.queue)
		if left := b.wait - time.Since(b.at[0]); !full && left > 0 {
			if !b.armed {
				b.armed = true
				time.AfterFunc(left, func() {
					b.mu.Lock()
					b.armed = false
					b.dispatch()
					b.mu.Unlock()
				})
			}
			return
		}
		group := b.queue[:n:n]
		b.queue, b.at = b.queue[n:], b.at[n:]
		b.sending++
		go func() {
			b.send(group)
			b.mu.Lock()
			b.sending--
			b.dispatch()
			b.mu.Unlock()
		}()
	}
}
