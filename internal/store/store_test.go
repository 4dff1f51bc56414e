package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// open returns a Store on a fresh keyspace of its own, with its schema.
func open(t *testing.T, tweak ...func(*store.Options)) *store.Store {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	o := store.Options{
		Hosts:        hosts,
		Port:         port,
		Keyspace:     cassandratest.Keyspace(t),
		CreateSchema: true,
		Limits:       store.Limits{MaxSessionIDBytes: 128, MaxKeyBytes: 256, MaxValueBytes: 8 << 20},
	}
	for _, f := range tweak {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := store.Open(ctx, o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func write(t *testing.T, st *store.Store, w store.Write) {
	t.Helper()
	if err := st.WriteSession(ctx(t), &w); err != nil {
		t.Fatalf("write %s epoch %d seq %d: %v", w.Session, w.Epoch, w.Seq, err)
	}
}

func read(t *testing.T, st *store.Store, session string) map[string][]byte {
	t.Helper()
	items, err := st.ReadState(ctx(t), session)
	if err != nil {
		t.Fatalf("read %s: %v", session, err)
	}
	m := make(map[string][]byte, len(items))
	for _, it := range items {
		m[it.Key] = it.Value
	}
	return m
}

func TestRoundTripLargeSession(t *testing.T) {
	t.Parallel()
	st := open(t)
	const n = 2500 // more than two pages of reads
	want := map[string][]byte{}
	seq := uint64(1000)
	for start := 0; start < n; start += 500 {
		var items []store.Item
		for i := start; i < start+500; i++ {
			k := fmt.Sprintf("k%05d", i)
			v := []byte(fmt.Sprintf("value-%d-%s", i, strings.Repeat("x", i%50)))
			want[k] = v
			items = append(items, store.Item{Key: k, Value: v})
		}
		write(t, st, store.Write{Session: "big", Epoch: 1, Seq: seq, Items: items})
		seq += 2
	}
	huge := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB
	want["huge"] = huge
	write(t, st, store.Write{Session: "big", Epoch: 1, Seq: seq, Items: []store.Item{{Key: "huge", Value: huge}}})

	items, err := st.ReadState(ctx(t), "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(want) {
		t.Fatalf("read %d items, want %d", len(items), len(want))
	}
	for i, it := range items {
		if i > 0 && items[i-1].Key >= it.Key {
			t.Fatalf("items out of key order at %d: %q then %q", i, items[i-1].Key, it.Key)
		}
		if !bytes.Equal(it.Value, want[it.Key]) {
			t.Fatalf("item %q: got %d bytes, want %d", it.Key, len(it.Value), len(want[it.Key]))
		}
	}
}

func TestOlderTimestampsNeverWin(t *testing.T) {
	t.Parallel()
	st := open(t)
	write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 100, Items: []store.Item{{Key: "a", Value: []byte("new")}, {Key: "b", Value: []byte("keep")}}})
	// A retried or reordered older flush: a put and a delete at lower seqs.
	write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 50, Items: []store.Item{{Key: "a", Value: []byte("old")}, {Key: "b", Delete: true}}})
	got := read(t, st, "s")
	if string(got["a"]) != "new" || string(got["b"]) != "keep" {
		t.Fatalf("older writes won: a=%q b=%q, want a=new b=keep", got["a"], got["b"])
	}
	// A huge seq at an older epoch loses to any write of a newer epoch.
	write(t, st, store.Write{Session: "s", Epoch: 2, Seq: 10, Items: []store.Item{{Key: "a", Value: []byte("epoch2")}}})
	write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 1<<store.SeqBits - 2, Items: []store.Item{{Key: "a", Value: []byte("stale")}}})
	if got := read(t, st, "s"); string(got["a"]) != "epoch2" {
		t.Fatalf("stale epoch won: a=%q", got["a"])
	}
	// A newer delete removes; an end of session removes everything older.
	write(t, st, store.Write{Session: "s", Epoch: 2, Seq: 20, Items: []store.Item{{Key: "b", Delete: true}}})
	if got := read(t, st, "s"); got["b"] != nil {
		t.Fatalf("newer delete did not remove b: %q", got["b"])
	}
	write(t, st, store.Write{Session: "s", Epoch: 2, Seq: 30, Ended: true, Items: []store.Item{{Key: "after", Value: []byte("x")}}})
	got = read(t, st, "s")
	if len(got) != 1 || string(got["after"]) != "x" {
		t.Fatalf("after end got %v, want only after=x", got)
	}
}

func TestFenceShadowsOlderEpochs(t *testing.T) {
	t.Parallel()
	st := open(t)
	write(t, st, store.Write{Session: "f", Epoch: 1, Seq: 100, Items: []store.Item{{Key: "a", Value: []byte("1")}, {Key: "gone", Value: []byte("g")}}})
	if err := st.Fence(ctx(t), "f", 2, []store.Item{{Key: "a", Value: []byte("1")}}); err != nil {
		t.Fatal(err)
	}
	// The fenced owner's late flush, with its clock far ahead.
	write(t, st, store.Write{Session: "f", Epoch: 1, Seq: 1<<store.SeqBits - 2, Items: []store.Item{{Key: "a", Value: []byte("zombie")}, {Key: "z", Value: []byte("zombie")}}})
	got := read(t, st, "f")
	if len(got) != 1 || string(got["a"]) != "1" {
		t.Fatalf("after fence got %v, want only a=1", got)
	}
	// The new owner's writes go above the fence.
	write(t, st, store.Write{Session: "f", Epoch: 2, Seq: 10, Items: []store.Item{{Key: "a", Value: []byte("2")}}})
	if got := read(t, st, "f"); string(got["a"]) != "2" {
		t.Fatalf("new owner's write lost: a=%q", got["a"])
	}
}

func TestItemTTL(t *testing.T) {
	t.Parallel()
	st := open(t, func(o *store.Options) { o.StateTTL = 2 * time.Second })
	write(t, st, store.Write{Session: "ttl", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "a", Value: []byte("v")}}})
	if got := read(t, st, "ttl"); string(got["a"]) != "v" {
		t.Fatalf("item missing before its TTL: %v", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	time.Sleep(2 * time.Second)
	for {
		got := read(t, st, "ttl")
		if len(got) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("item still there 10 s after a 2 s TTL: %v", got)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestClaimExactlyOneWinner(t *testing.T) {
	t.Parallel()
	st := open(t)
	const rounds, claimants = 200, 50
	c, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	failed := 0 // claims that ended in an error (contention timeouts); they must not win
	for r := 0; r < rounds; r++ {
		session := fmt.Sprintf("race-%d", r)
		created, _, err := st.CreateOwner(c, session, "origin", 0, time.Hour)
		if err != nil || !created {
			t.Fatalf("create owner of %s: created=%v err=%v", session, created, err)
		}
		prev := store.Owner{Node: "origin", Epoch: 1}
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			winners []string
			seen    = map[string]bool{}
			errs    []error
		)
		startGate := make(chan struct{})
		for i := 0; i < claimants; i++ {
			wg.Add(1)
			go func(node string) {
				defer wg.Done()
				<-startGate
				won, cur, err := st.Claim(c, session, prev, node, time.Hour)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					errs = append(errs, err)
				case won:
					winners = append(winners, node)
				default:
					seen[cur.Node] = true
				}
			}(fmt.Sprintf("n%d", i))
		}
		close(startGate)
		wg.Wait()
		failed += len(errs)
		o, found, err := st.ReadOwnerSerial(c, session)
		if err != nil || !found || o.Epoch != 2 {
			t.Fatalf("round %d: row after claim %+v found=%v err=%v, want epoch 2", r, o, found, err)
		}
		// Exactly one winner: the one the row names. It may not know it won
		// only when its reply was lost (an error).
		if len(winners) > 1 || (len(winners) == 1 && winners[0] != o.Node) || (len(winners) == 0 && len(errs) == 0) {
			t.Fatalf("round %d: winners %v, the row names %s (errors %v)", r, winners, o.Node, errs)
		}
		// A loser is told the winner, or the row as it was before the race
		// when its own attempt timed out and the read that settled it ran
		// before the winner's claim was decided.
		for name := range seen {
			if name != o.Node && name != "origin" {
				t.Fatalf("round %d: a loser was told %q won, the winner was %q", r, name, o.Node)
			}
		}
	}
	t.Logf("%d rounds of %d claimants in %s (%d claims failed with an error)", rounds, claimants, time.Since(began).Round(time.Millisecond), failed)
}

func TestOwnershipLifecycle(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	if _, found, err := st.ReadOwner(c, "life"); err != nil || found {
		t.Fatalf("unknown session: found=%v err=%v", found, err)
	}
	created, _, err := st.CreateOwner(c, "life", "a", 0, time.Hour)
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	created, cur, err := st.CreateOwner(c, "life", "b", 0, time.Hour)
	if err != nil || created || cur.Node != "a" || cur.Epoch != 1 {
		t.Fatalf("second create: created=%v cur=%+v err=%v, want a@1", created, cur, err)
	}
	if ok, err := st.Release(c, "life", "b", 1, time.Hour); err != nil || ok {
		t.Fatalf("release by a non-owner: %v %v", ok, err)
	}
	if ok, err := st.Release(c, "life", "a", 1, time.Hour); err != nil || !ok {
		t.Fatalf("release by the owner: %v %v", ok, err)
	}
	o, _, err := st.ReadOwner(c, "life")
	if err != nil || !o.Released {
		t.Fatalf("after release: %+v %v", o, err)
	}
	// A refresh of the row's TTL by the owner never clears the flag: it would
	// undo a release made while the refresh ran (a graceful Close).
	if ok, err := st.RefreshOwner(c, "life", "a", 1, time.Hour); err != nil || !ok {
		t.Fatalf("refresh by the owner: %v %v", ok, err)
	}
	if o, _, err := st.ReadOwner(c, "life"); err != nil || !o.Released {
		t.Fatalf("after a refresh of a released row: %+v %v", o, err)
	}
	won, cur, err := st.Claim(c, "life", o, "b", time.Hour)
	if err != nil || !won || cur.Epoch != 2 {
		t.Fatalf("claim: won=%v cur=%+v err=%v", won, cur, err)
	}
	// A claimant that saw the row released loses once it moved on.
	if won, cur, err := st.Claim(c, "life", o, "c", time.Hour); err != nil || won || cur.Node != "b" || cur.Epoch != 2 {
		t.Fatalf("late claim of a released row: won=%v cur=%+v err=%v, want lost to b@2", won, cur, err)
	}
	if err := st.IndexOwner(c, "b", "life", 2, time.Hour); err != nil {
		t.Fatal(err)
	}
	var owned []store.Owned
	if err := st.OwnedBy(c, "b", func(o store.Owned) bool { owned = append(owned, o); return true }); err != nil {
		t.Fatal(err)
	}
	if len(owned) != 1 || owned[0].Session != "life" || owned[0].Epoch != 2 {
		t.Fatalf("owner index: %+v", owned)
	}
	if ok, err := st.DeleteOwner(c, "life", 1); err != nil || ok {
		t.Fatalf("delete at a stale epoch: %v %v", ok, err)
	}
	if ok, err := st.DeleteOwner(c, "life", 2); err != nil || !ok {
		t.Fatalf("delete: %v %v", ok, err)
	}
	if err := st.UnindexOwner(c, "b", "life", 2); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.ReadOwner(c, "life"); err != nil || found {
		t.Fatalf("after delete: found=%v err=%v", found, err)
	}
}

func TestLeases(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	const grace = 100 * time.Millisecond
	renewedA := time.Now()
	if err := st.RenewLease(c, "node-a", 1500*time.Millisecond, grace, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	if err := st.RenewLease(c, "node-b", time.Hour, grace, time.Now(), ""); err != nil {
		t.Fatal(err)
	}
	l, found, err := st.ReadLease(c, "node-b")
	if err != nil || !found || l.TTL != time.Hour || l.Remaining <= 0 || time.Since(l.RenewedAt) > time.Minute {
		t.Fatalf("lease b: %+v found=%v err=%v", l, found, err)
	}
	if !l.LiveAt(time.Now(), grace) || l.LiveAt(l.RenewedAt.Add(time.Hour+grace), grace) {
		t.Fatalf("lease b live verdicts wrong: %+v", l)
	}
	all, err := st.Leases(c)
	if err != nil || len(all) != 2 {
		t.Fatalf("leases: %+v %v", all, err)
	}
	// The row of a 1.5 s lease outlives RenewedAt + TTL + grace, whatever the
	// rounding of Cassandra's whole-second TTLs, and then goes.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, found, err := st.ReadLease(c, "node-a")
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a 1.5 s lease row still there after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if gone := time.Since(renewedA); gone < 1500*time.Millisecond+grace {
		t.Fatalf("the lease row vanished %v after the renewal, before its end plus grace", gone)
	}
	// Only the incarnation holding a lease can drop it: a replaced process
	// must not delete its successor's.
	if took, _, err := st.TakeLease(c, "node-c", "inc-1", store.Lease{}, false, time.Hour, grace, time.Now()); err != nil || !took {
		t.Fatalf("take lease: %v %v", took, err)
	}
	if err := st.DropLease(c, "node-c", "inc-0"); err != nil {
		t.Fatal(err)
	}
	if l, found, err := st.ReadLease(c, "node-c"); err != nil || !found || l.Incarnation != "inc-1" {
		t.Fatalf("a lease dropped by another incarnation: %+v found=%v err=%v", l, found, err)
	}
	if err := st.DropLease(c, "node-c", "inc-1"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := st.ReadLease(c, "node-c"); err != nil || found {
		t.Fatalf("a dropped lease: found=%v err=%v", found, err)
	}
}

// An ended session's row stays, marked ended one epoch up: a stale claim
// fails, and a new session of the same ID is created above it.
func TestEndedRowAndRecreate(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	if ok, _, err := st.CreateOwner(c, "phoenix", "a", 0, time.Hour); err != nil || !ok {
		t.Fatalf("create: %v %v", ok, err)
	}
	if ok, err := st.EndOwner(c, "phoenix", "a", 2, time.Hour); err != nil || ok {
		t.Fatalf("end at a wrong epoch: %v %v", ok, err)
	}
	if ok, err := st.EndOwner(c, "phoenix", "a", 1, time.Hour); err != nil || !ok {
		t.Fatalf("end: %v %v", ok, err)
	}
	o, found, err := st.ReadOwner(c, "phoenix")
	if err != nil || !found || !o.Ended || o.Epoch != 2 {
		t.Fatalf("ended row: %+v %v %v", o, found, err)
	}
	if won, cur, err := st.Claim(c, "phoenix", store.Owner{Node: "a", Epoch: 1}, "b", time.Hour); err != nil || won || !cur.Ended {
		t.Fatalf("stale claim of an ended session: won=%v cur=%+v err=%v", won, cur, err)
	}
	ok, cur, err := st.CreateOwner(c, "phoenix", "b", 0, time.Hour)
	if err != nil || !ok || cur.Epoch != 3 || cur.Node != "b" {
		t.Fatalf("re-create: %v %+v %v", ok, cur, err)
	}
	if ok, cur, err := st.CreateOwner(c, "phoenix", "c", 0, time.Hour); err != nil || ok || cur.Node != "b" || cur.Epoch != 3 {
		t.Fatalf("create of a live session: %v %+v %v", ok, cur, err)
	}
	o, _, _ = st.ReadOwner(c, "phoenix")
	if o.Ended || o.Node != "b" || o.Epoch != 3 {
		t.Fatalf("re-created row: %+v", o)
	}
}

// The ended-epoch hint of CreateOwner: right, it re-creates in one round;
// wrong (another epoch, no row, a live row), the outcome is the one without it.
func TestCreateOwnerEndedHint(t *testing.T) {
	t.Parallel()
	st := open(t)
	c := ctx(t)
	end := func(s, node string, epoch uint64) {
		t.Helper()
		if ok, err := st.EndOwner(c, s, node, epoch, time.Hour); err != nil || !ok {
			t.Fatalf("end %s: %v %v", s, ok, err)
		}
	}
	for _, tc := range []struct {
		name    string
		setup   func(s string)
		hint    uint64
		created bool
		node    string
		epoch   uint64
	}{
		{"right", func(s string) { st.CreateOwner(c, s, "a", 0, time.Hour); end(s, "a", 1) }, 2, true, "b", 3},
		{"another epoch", func(s string) {
			st.CreateOwner(c, s, "a", 0, time.Hour)
			end(s, "a", 1)
			st.CreateOwner(c, s, "a", 0, time.Hour)
			end(s, "a", 3)
		}, 2, true, "b", 5},
		{"no row", func(string) {}, 7, true, "b", 1},
		{"live row", func(s string) { st.CreateOwner(c, s, "a", 0, time.Hour) }, 2, false, "a", 1},
	} {
		s := "hint-" + strings.ReplaceAll(tc.name, " ", "-")
		tc.setup(s)
		created, cur, err := st.CreateOwner(c, s, "b", tc.hint, time.Hour)
		if err != nil || created != tc.created || cur.Node != tc.node || cur.Epoch != tc.epoch {
			t.Errorf("%s: created=%v cur=%+v err=%v, want created=%v %s@%d", tc.name, created, cur, err, tc.created, tc.node, tc.epoch)
		}
		if o, _, err := st.ReadOwner(c, s); err != nil || o.Node != tc.node || o.Epoch != tc.epoch || o.Ended {
			t.Errorf("%s: row %+v %v", tc.name, o, err)
		}
	}
}

func TestBadInputNamesFieldAndLimit(t *testing.T) {
	t.Parallel()
	hosts, port := cassandratest.Hosts(t)
	for _, ks := range []string{"", "1abc", "has-dash", "x; DROP KEYSPACE system_auth", strings.Repeat("k", 49)} {
		_, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true})
		if err == nil || !strings.Contains(err.Error(), "keyspace") || !strings.Contains(err.Error(), "[A-Za-z]") {
			t.Errorf("keyspace %q: got %v, want an error naming the keyspace and the identifier pattern", ks, err)
		}
	}
	st := open(t, func(o *store.Options) {
		o.Limits = store.Limits{MaxSessionIDBytes: 16, MaxKeyBytes: 8, MaxValueBytes: 32}
	})
	cases := []struct {
		name  string
		w     store.Write
		field string
		limit string
	}{
		{"empty session", store.Write{Session: "", Items: []store.Item{{Key: "k", Value: nil}}}, "session ID", "16"},
		{"long session", store.Write{Session: strings.Repeat("s", 17), Items: []store.Item{{Key: "k"}}}, "session ID", "16"},
		{"empty key", store.Write{Session: "s", Items: []store.Item{{Key: ""}}}, "key", "8"},
		{"long key", store.Write{Session: "s", Items: []store.Item{{Key: "123456789"}}}, "key", "8"},
		{"big value", store.Write{Session: "s", Items: []store.Item{{Key: "k", Value: make([]byte, 33)}}}, "value", "32"},
	}
	for _, tc := range cases {
		tc.w.Epoch, tc.w.Seq = 1, 10
		err := st.WriteSession(ctx(t), &tc.w)
		var le *store.LimitError
		if !errors.As(err, &le) || !errors.Is(err, store.ErrInvalidInput) {
			t.Errorf("%s: got %v, want a *LimitError", tc.name, err)
			continue
		}
		if le.Field != tc.field || !strings.Contains(err.Error(), tc.limit) || !le.Permanent() {
			t.Errorf("%s: %q should name %q and the limit %s", tc.name, err, tc.field, tc.limit)
		}
	}
	// Nothing of the refused writes reached Cassandra, and good writes still work.
	write(t, st, store.Write{Session: "s", Epoch: 1, Seq: 12, Items: []store.Item{{Key: "k", Value: []byte("ok")}}})
	if got := read(t, st, "s"); len(got) != 1 || string(got["k"]) != "ok" {
		t.Fatalf("after refusals got %v", got)
	}
}

func TestSchemaCreationOff(t *testing.T) {
	t.Parallel()
	st := open(t)
	hosts, port := cassandratest.Hosts(t)
	st2, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: st.Keyspace(), CreateSchema: false})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	write(t, st2, store.Write{Session: "s", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "k", Value: []byte("v")}}})
	if got := read(t, st, "s"); string(got["k"]) != "v" {
		t.Fatalf("got %v", got)
	}
	// Without the schema, a write fails with a permanent error.
	bare := cassandratest.Keyspace(t)
	st3, err := store.Open(context.Background(), store.Options{Hosts: hosts, Port: port, Keyspace: bare, CreateSchema: false})
	if err != nil {
		t.Fatal(err)
	}
	defer st3.Close()
	err = st3.WriteSession(ctx(t), &store.Write{Session: "s", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "k", Value: []byte("v")}}})
	var p interface{ Permanent() bool }
	if err == nil || !errors.As(err, &p) || !p.Permanent() {
		t.Fatalf("write without schema: got %v, want a permanent error", err)
	}
}

// A keyspace made by a release whose leases had no since column gains it at
// Open with CreateSchema, and leases then carry it.
func TestOpenAddsTheLeaseSinceColumnToAnOlderSchema(t *testing.T) {
	t.Parallel()
	var ks string
	old := open(t, func(o *store.Options) { ks = o.Keyspace })
	if err := old.Session().Query(fmt.Sprintf(`ALTER TABLE %s.leases DROP since`, ks)).ExecContext(ctx(t)); err != nil {
		t.Fatalf("make the schema an older release's: %v", err)
	}
	st := open(t, func(o *store.Options) { o.Keyspace = ks })
	since := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	if took, _, err := st.TakeLease(ctx(t), "n", "inc", store.Lease{}, false, time.Hour, 0, since); err != nil || !took {
		t.Fatalf("take lease on the upgraded schema: %v %v", took, err)
	}
	l, found, err := st.ReadLease(ctx(t), "n")
	if err != nil || !found || !l.Since.Equal(since) {
		t.Fatalf("lease read back: %+v %v %v, want since %v", l, found, err, since)
	}
}
