package store

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// writeBetweenPages runs fn once, synchronously, right after the first page
// of the first query it observes whose statement starts with prefix comes
// back: the next page is fetched after fn returns.
type writeBetweenPages struct {
	prefix string
	armed  atomic.Bool
	fired  atomic.Bool
	fn     func()
}

func (o *writeBetweenPages) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if !o.armed.Load() || q.Err != nil || !strings.HasPrefix(q.Statement, o.prefix) {
		return
	}
	if o.fired.CompareAndSwap(false, true) {
		o.fn()
	}
}

// pagedSession writes a session of n items, all "v1", at epoch 1, and
// returns a store that reads through an observer which lands the old
// owner's last snapshot (epoch 1: the first and the last key set to "v2"
// together, one single-partition batch) between the first two pages of the
// first read whose statement starts with prefix.
func pagedSession(t *testing.T, session string, n int, prefix string) (setup, adopter *Store, obs *writeBetweenPages) {
	t.Helper()
	ctx := context.Background()
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	setup, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(setup.Close)
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{Key: fmt.Sprintf("k%04d", i), Value: []byte("v1")}
	}
	if err := setup.WriteSession(ctx, &Write{Session: session, Epoch: 1, Seq: 10, Items: items}); err != nil {
		t.Fatal(err)
	}
	obs = &writeBetweenPages{prefix: prefix}
	adopter, _ = openFaulty(t, ks, 10*time.Second, func(c *gocql.ClusterConfig) { c.QueryObserver = obs })
	obs.fn = func() {
		w := &Write{Session: session, Epoch: 1, Seq: 12, Items: []Item{
			{Key: "k0000", Value: []byte("v2")}, {Key: fmt.Sprintf("k%04d", n-1), Value: []byte("v2")},
		}}
		if err := setup.WriteSession(ctx, w); err != nil {
			t.Errorf("old owner's write: %v", err)
		}
	}
	obs.armed.Store(true)
	return setup, adopter, obs
}

// oneSnapshot fails the test unless got, a read of a session pagedSession
// wrote, is a state the session had: its first and last keys equal.
func oneSnapshot(t *testing.T, obs *writeBetweenPages, got []Item, n int) {
	t.Helper()
	if !obs.fired.Load() {
		t.Fatal("no write between pages: the test did not run as meant")
	}
	if len(got) != n {
		t.Fatalf("read %d items, want %d", len(got), n)
	}
	if first, last := string(got[0].Value), string(got[n-1].Value); first != last {
		t.Errorf("read k0000=%s and k%04d=%s: a state the session never had (it went from v1,v1 to v2,v2 in one snapshot)", first, n-1, last)
	}
}

// A session's state is one partition, and a snapshot one single-partition
// batch that Cassandra applies atomically and in isolation, but a read of
// several pages is several reads: a snapshot that landed between two pages
// was seen in the later pages only. The adopter restored, and its fence
// persisted, a state the session never had (I2): here k0000=v1 beside
// k1499=v2, though the old owner's last snapshot changed both together.
// Found by review.
func TestAReadOfSeveralPagesIsOneSnapshot(t *testing.T) {
	const n = 1500 // two pages
	setup, adopter, obs := pagedSession(t, "paged", n, "SELECT key, value, format")
	ctx := context.Background()
	got, err := adopter.ReadState(ctx, "paged")
	if err != nil {
		t.Fatal(err)
	}
	oneSnapshot(t, obs, got, n)
	if adopter.tornReads.Load() != 1 {
		t.Errorf("torn reads counted: %d, want 1", adopter.tornReads.Load())
	}
	// The adoption's fence persists what was read.
	if err := adopter.Fence(ctx, "paged", 2, got); err != nil {
		t.Fatal(err)
	}
	after, err := setup.ReadState(ctx, "paged")
	if err != nil {
		t.Fatal(err)
	}
	oneSnapshot(t, obs, after, n)
}

// The grouped read of a takeover or a burst of adoptions (ReadStates, one
// request for several sessions) pages across sessions: a session whose rows
// come on two pages is read again alone.
func TestAGroupedReadOfASessionAcrossPagesIsOneSnapshot(t *testing.T) {
	const n = 1500
	_, adopter, obs := pagedSession(t, "paged-g", n, "SELECT session, key, value, format")
	ctx := context.Background()
	// Sessions on the same first replica (one node here) share a request.
	ids := []string{"paged-g", "absent-g"}
	items, errs := make([][]Item, len(ids)), make([]error, len(ids))
	adopter.ReadStates(ctx, ids, items, errs)
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	oneSnapshot(t, obs, items[0], n)
	if len(items[1]) != 0 {
		t.Errorf("absent session read %d items", len(items[1]))
	}
}

// A single-page session is read once: no check read.
func TestASinglePageReadIsNotCheckedAgain(t *testing.T) {
	_, adopter, _ := pagedSession(t, "small", 10, "none")
	got, err := adopter.ReadState(context.Background(), "small")
	if err != nil || len(got) != 10 || adopter.tornReads.Load() != 0 {
		t.Fatalf("small session: %d items, %v, torn %d", len(got), err, adopter.tornReads.Load())
	}
}
