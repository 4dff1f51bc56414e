package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// batchSizes records the statements of each batch a session sends.
type batchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batchSizes) ObserveBatch(_ context.Context, o gocql.ObservedBatch) {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(o.Statements))
	b.mu.Unlock()
}

// openObserved opens a store on a keyspace of the test's own whose batches
// seen records.
func openObserved(ctx context.Context, t *testing.T) (*Store, *batchSizes) {
	t.Helper()
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	setup, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	setup.Close()
	seen := &batchSizes{}
	st, _ := openFaulty(t, ks, 10*time.Second, func(c *gocql.ClusterConfig) { c.BatchObserver = seen })
	return st, seen
}

// A fence goes in batches of at most fenceChunkItems items, its tombstone
// with the last. It went in batches of up to 65,535 statements, one
// mutation that a busy node could not apply within its write timeout, so
// the adoption of such a session failed every time it was tried.
func TestAFenceOfManyItemsGoesInBoundedBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, seen := openObserved(ctx, t)
	items := make([]Item, 20000)
	for i := range items {
		items[i] = Item{Key: fmt.Sprintf("k%05d", i), Value: []byte{}}
	}
	if err := st.Fence(ctx, "big", 2, items); err != nil {
		t.Fatal(err)
	}
	seen.mu.Lock()
	sizes := append([]int(nil), seen.sizes...)
	seen.mu.Unlock()
	total := 0
	for _, n := range sizes {
		if n > fenceChunkItems+1 {
			t.Fatalf("a fence batch of %d statements (batches %v), want at most %d items and the tombstone", n, sizes, fenceChunkItems)
		}
		total += n
	}
	if len(sizes) < 3 || total < len(items)+1 {
		t.Fatalf("batches %v for %d items and a tombstone", sizes, len(items))
	}
	got, err := st.ReadState(ctx, "big")
	if err != nil || len(got) != len(items) {
		t.Fatalf("after the fence %d items (%v), want %d", len(got), err, len(items))
	}
}

// A refresh of a session's TTLs goes in batches of at most fenceChunkItems
// items, as a fence does. Its batches were bounded by bytes alone, so a
// session of many small items was renewed in batches of up to 65,535
// statements: one mutation a busy node could not apply within its write
// timeout, so its refresh could fail every time, and the items of a resident
// session expired.
func TestARefreshOfManyItemsGoesInBoundedBatches(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, seen := openObserved(ctx, t)
	items := make([]Item, 20000)
	for i := range items {
		items[i] = Item{Key: fmt.Sprintf("k%05d", i), Value: []byte{1}}
	}
	if err := st.Fence(ctx, "big", 2, items); err != nil {
		t.Fatal(err)
	}
	seen.mu.Lock()
	seen.sizes = nil
	seen.mu.Unlock()
	n, err := st.RefreshState(ctx, "big", 8*24*time.Hour) // every item has less than that left
	if err != nil || n != len(items) {
		t.Fatalf("refreshed %d items (%v), want %d", n, err, len(items))
	}
	seen.mu.Lock()
	sizes := append([]int(nil), seen.sizes...)
	seen.mu.Unlock()
	for _, s := range sizes {
		if s > fenceChunkItems {
			t.Fatalf("a refresh batch of %d statements (batches %v), want at most %d", s, sizes, fenceChunkItems)
		}
	}
	if len(sizes) < 3 {
		t.Fatalf("batches %v for %d items", sizes, len(items))
	}
}
