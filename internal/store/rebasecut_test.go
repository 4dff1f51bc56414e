package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// cancelAfterFirstWrite cancels a context once the first write it observes
// (a batch, or a single statement, which the store sends as a plain query)
// has succeeded: the rebase's next chunk then fails, as a rebase cut short
// by a timeout or a lost node would.
type cancelAfterFirstWrite struct {
	armed  atomic.Bool
	cancel context.CancelFunc
	seen   atomic.Int32
}

func (o *cancelAfterFirstWrite) ObserveBatch(_ context.Context, b gocql.ObservedBatch) {
	o.wrote(b.Err)
}

func (o *cancelAfterFirstWrite) ObserveQuery(_ context.Context, q gocql.ObservedQuery) {
	if !strings.HasPrefix(strings.TrimSpace(q.Statement), "SELECT") {
		o.wrote(q.Err)
	}
}

func (o *cancelAfterFirstWrite) wrote(err error) {
	if o.armed.Load() && err == nil && o.seen.Add(1) == 1 {
		o.cancel()
	}
}

// rebase.go promises that a session written whole sends the persisted items
// first and the write's own changes last, "in the chunk of the tombstone when
// they fit in one: a rebase that fails half-way has rewritten persisted items
// at their values and deleted nothing". Here the write's changes are three
// (a delete and two puts, one commit), which fit in any chunk. The chunks
// used to be cut from the front, which put one of the puts in the first
// chunk, without the tombstone: when the second chunk failed, the session
// showed a state it never had (new1 written, new2 not, k00000 not deleted).
func TestARebaseCutShortWritesNoneOfTheChangesOrAll(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ks := cassandratest.Keyspace(t)
	bg := context.Background()
	st, err := Open(bg, Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true, RebaseDeletes: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	obs := &cancelAfterFirstWrite{}
	c := st.opts.cluster()
	c.Keyspace = ks
	c.Timeout = 30 * time.Second
	c.BatchObserver = obs
	c.QueryObserver = obs
	s, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st.s = s

	// Persist 8,192 items (fenceChunkItems) at epoch 1, with no deletes.
	const n = fenceChunkItems
	items := make([]Item, 0, n)
	for i := range n {
		items = append(items, Item{Key: fmt.Sprintf("k%05d", i), Value: []byte("v")})
	}
	if err := st.writeAbove(bg, "seed", "s", EpochBase(1), EpochBase(1)+1, items, 0); err != nil {
		t.Fatal(err)
	}

	// One commit: delete k00000, put new1 and new2. It is due for a rebase.
	w := &Write{Session: "s", Epoch: 1, Seq: 100, Items: []Item{
		{Key: "k00000", Delete: true},
		{Key: "new1", Value: []byte("1")},
		{Key: "new2", Value: []byte("2")},
	}}
	if !st.rebaseDue(w) {
		t.Fatal("write not due for a rebase")
	}
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	obs.cancel = cancel
	obs.armed.Store(true)
	werr := st.WriteSession(ctx, w)
	obs.armed.Store(false)
	t.Logf("rebase cut short: %v", werr)
	if werr == nil {
		t.Fatal("the rebase was not cut short")
	}

	got, err := st.ReadState(bg, "s")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, it := range got {
		have[it.Key] = true
	}
	// Allowed: the state before the commit (k00000, no new1/new2) or after
	// it (no k00000, new1 and new2).
	before := have["k00000"] && !have["new1"] && !have["new2"]
	after := !have["k00000"] && have["new1"] && have["new2"]
	if !before && !after {
		t.Fatalf("a rebase cut short left a state the session never had: k00000=%v new1=%v new2=%v (%d items)",
			have["k00000"], have["new1"], have["new2"], len(got))
	}
}

// chunkStarts cuts from the end: the last batch is as full as the bounds
// allow, and the first takes what is left.
func TestChunkStartsCutsFromTheEnd(t *testing.T) {
	keys := func(n int, value []byte) []Item {
		items := make([]Item, n)
		for i := range items {
			items[i] = Item{Key: "k", Value: value}
		}
		return items
	}
	big := make([]byte, fenceChunkBytes/2) // two to a batch by bytes (with their keys, one)
	for _, c := range []struct {
		name  string
		items []Item
		want  []int
	}{
		{"none", nil, []int{0}},
		{"one", keys(1, nil), []int{0}},
		{"a batch", keys(fenceChunkItems, nil), []int{0}},
		{"a batch and two", keys(fenceChunkItems+2, nil), []int{0, 2}},
		{"two batches and one", keys(2*fenceChunkItems+1, nil), []int{0, 1, 1 + fenceChunkItems}},
		{"by bytes", keys(3, big), []int{0, 1, 2}},
	} {
		if got := chunkStarts(c.items, 0); !slices.Equal(got, c.want) {
			t.Errorf("%s: starts %v, want %v", c.name, got, c.want)
		}
	}
}

// A rebase's changes (the last keep items) go in the batch of the tombstone
// whatever their size: the buffer sized the write for one batch
// (HOLDOVER_MAX_BATCH_BYTES, up to 15 MiB), and cut in two at
// fenceChunkBytes (4 MiB), a rebase that failed between the two left some of
// one commit's changes written and not the others (I2). Found by review.
func TestChunkStartsKeepsARebasesChangesInTheLastBatch(t *testing.T) {
	mib := make([]byte, 1<<20)
	items := make([]Item, 0, 16)
	for range 10 {
		items = append(items, Item{Key: "persisted", Value: []byte("v")})
	}
	for range 6 { // 6 MiB of changes, over fenceChunkBytes
		items = append(items, Item{Key: "change", Value: mib})
	}
	if got, want := chunkStarts(items, 6), []int{0, 10}; !slices.Equal(got, want) {
		t.Errorf("starts %v, want %v: the six changes together, last", got, want)
	}
	if got := chunkStarts(items, 0); slices.Contains(got, 10) && len(got) == 2 {
		t.Errorf("without keep, starts %v: the changes over fenceChunkBytes should be cut", got)
	}
	many := make([]Item, fenceChunkItems+100)
	if got, want := chunkStarts(many, fenceChunkItems+50), []int{0, 50}; !slices.Equal(got, want) {
		t.Errorf("keep over fenceChunkItems: starts %v, want %v", got, want)
	}
}

// applyChanges puts the write's puts last and counts them: the rebase keeps
// that many items in the tombstone's batch (writeAbove's keep).
func TestApplyChangesPutsTheChangesLast(t *testing.T) {
	persisted := []Item{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("1")}, {Key: "c", Value: []byte("1")}}
	changes := []Item{{Key: "b", Delete: true}, {Key: "a", Value: []byte("2")}, {Key: "d", Value: []byte("2")}, {Key: "d", Delete: true}, {Key: "e", Value: []byte("2")}}
	items, puts := applyChanges(persisted, changes)
	var got []string
	for _, it := range items {
		got = append(got, it.Key+"="+string(it.Value))
	}
	if want := []string{"c=1", "a=2", "e=2"}; !slices.Equal(got, want) || puts != 2 {
		t.Fatalf("applyChanges: %v, %d puts; want %v, 2 puts", got, puts, want)
	}
}
