package residency

import (
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// negativeCache remembers session IDs confirmed absent, for a short TTL, so a
// burst of events for an unknown session costs one Cassandra read.
//
// Close may race adoptions in flight: every use holds mu for reading and
// finds the cache gone once close has run (a closed ristretto cache races its
// writers, and its Wait never returns).
type negativeCache struct {
	mu  sync.RWMutex
	c   *ristretto.Cache[string, struct{}]
	ttl time.Duration
}

func newNegativeCache(size int, ttl time.Duration) (*negativeCache, error) {
	if ttl <= 0 || size <= 0 {
		return &negativeCache{}, nil
	}
	c, err := ristretto.NewCache(&ristretto.Config[string, struct{}]{
		NumCounters: int64(size) * 10,
		MaxCost:     int64(size),
		BufferItems: 64,
		// Each entry costs 1: without this, ristretto adds its own item's
		// size (tens of bytes) to the cost, and the cache held a fiftieth
		// of its size in entries (none at all under about 60).
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, err
	}
	return &negativeCache{c: c, ttl: ttl}, nil
}

func (n *negativeCache) absent(session string) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.c == nil {
		return false
	}
	_, ok := n.c.Get(session)
	return ok
}

func (n *negativeCache) remember(session string) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.c == nil {
		return
	}
	n.c.SetWithTTL(session, struct{}{}, 1, n.ttl)
	n.c.Wait() // make it visible to the next lookup; this is the rare miss path
}

func (n *negativeCache) forget(session string) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.c != nil {
		n.c.Del(session)
	}
}

func (n *negativeCache) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.c != nil {
		n.c.Close()
		n.c = nil
	}
}
