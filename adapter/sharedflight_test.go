package adapter

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// sharedPair opens node a, which reaches Cassandra through a proxy that can
// hold its writes in flight, and node b, which reaches it directly, both
// with the shared family "settings" (a re-read every 150 ms, a flush delay
// of delay). a's OnSharedChange calls go to the log returned.
func sharedPair(t *testing.T, name string, delay time.Duration) (a, b *Adapter, proxy *stallProxy, log *sharedLog) {
	t.Helper()
	ks := cassandratest.Keyspace(t)
	hosts, port := cassandratest.Hosts(t)
	proxy = newStallProxy(t, hosts[0], port)
	fams := Families{{Name: "settings", Shared: true, Refresh: 150 * time.Millisecond, FlushDelay: delay}}
	ca := testConfig(t, name+"-a", ks)
	ca.Hosts, ca.Port = []string{"127.0.0.1"}, proxy.port()
	ca.Families = fams
	cb := testConfig(t, name+"-b", ks)
	cb.Families = fams
	log = &sharedLog{}
	a = openNode(t, ca, WithHooks(Hooks{OnSharedChange: log.hook}))
	b = openNode(t, cb)
	return a, b, proxy, log
}

// slowFlush starts a Flush of a whose writes reach Cassandra 600 ms late,
// and returns once the flight is under way; the channel gets its outcome.
func slowFlush(a *Adapter, proxy *stallProxy) <-chan error {
	proxy.delay.Store(int64(600 * time.Millisecond))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- a.Flush(ctx)
	}()
	time.Sleep(200 * time.Millisecond)
	return done
}

// landed waits for a flight slowFlush started, then lets writes through at
// once again.
func landed(t *testing.T, done <-chan error, proxy *stallProxy) {
	t.Helper()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	proxy.delay.Store(0)
}

// viewHolds fails the test if, for 1.5 s, a's view of session s shows for
// key k anything but want (absent when want is nil).
func viewHolds(t *testing.T, a *Adapter, s, k string, want []byte) {
	t.Helper()
	for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		m, err := a.Shared(s)
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := m[k]; ok != (want != nil) || string(v) != string(want) {
			t.Errorf("a's view of %s/%s shows %q (present %v), want %q (its own pending write)", s, k, v, ok, want)
			return
		}
	}
}

// A node commits a key's value while its previous flush of the same value
// is in flight. The first flush's landing marked the second (still pending)
// commit as landed; when the second write landed, the view kept the first
// write's timestamp, so the next re-read reported the node's own write to
// OnSharedChange as a change made by another node. Found by review.
func TestASharedRecommitDuringItsFlushIsNotReportedAsAPeersChange(t *testing.T) {
	a, _, proxy, log := sharedPair(t, "recommit", 2*time.Second)
	const s = "settings:inflight"
	if err := a.CommitShared(s, put("k", "B")); err != nil {
		t.Fatal(err)
	}
	done := slowFlush(a, proxy)                              // the snapshot {k=B}, written slowly
	if err := a.CommitShared(s, put("k", "B")); err != nil { // the same value again
		t.Fatal(err)
	}
	landed(t, done, proxy)
	flush(t, a)                         // the second write lands
	time.Sleep(1500 * time.Millisecond) // several re-reads
	for _, c := range log.all() {
		if c.Session == s {
			t.Errorf("own write reported to OnSharedChange as another node's change: %+v", c)
		}
	}
}

// Same cause, seen as a wrong value: after the in-flight flush landed, the
// node's second (pending) commit of k=B was taken as landed, so a re-read
// replaced it in the view with another node's write that B overwrites when
// it is written (its timestamp is taken later). A pending own write must
// shield its key, as it does when no flush of the key was in flight. Found
// by review.
func TestAPendingSharedRecommitStaysShielded(t *testing.T) {
	a, b, proxy, _ := sharedPair(t, "shield", 4*time.Second)
	const s = "settings:shield"
	if err := a.CommitShared(s, put("k", "B")); err != nil {
		t.Fatal(err)
	}
	done := slowFlush(a, proxy)
	if err := a.CommitShared(s, put("k", "B")); err != nil { // pending for 4 s after the first lands
		t.Fatal(err)
	}
	if err := b.CommitShared(s, put("k", "C")); err != nil { // before a's pending B is taken: B wins
		t.Fatal(err)
	}
	flush(t, b)
	landed(t, done, proxy)
	viewHolds(t, a, s, "k", []byte("B"))
	flush(t, a)
	waitShared(t, b, s, "k", "B", false, 3*time.Second) // B did win in Cassandra
}

// A node ends a shared session twice, the second End while the first one's
// write is in flight. The first End's landing marked the second (pending)
// End as landed, so a re-read before the second End was written showed
// another node's earlier write (which the pending End deletes) in this
// node's view and reported it to OnSharedChange. With a single pending End
// the view hides it, as it must. Found by review.
func TestASecondEndSharedKeepsShieldingItsSession(t *testing.T) {
	a, b, proxy, log := sharedPair(t, "end2", 4*time.Second)
	const s = "settings:end2"
	if err := a.CommitShared(s, put("k", "v0")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	if err := a.EndShared(s); err != nil {
		t.Fatal(err)
	}
	done := slowFlush(a, proxy)            // End #1, slowly
	if err := a.EndShared(s); err != nil { // End #2, pending for 4 s after End #1 lands
		t.Fatal(err)
	}
	// b writes k after End #1 was taken and before End #2 will be: End #2
	// deletes it when it lands (b's timestamp is below End #2's).
	if err := b.CommitShared(s, put("k", "from-b")); err != nil {
		t.Fatal(err)
	}
	flush(t, b)
	landed(t, done, proxy)
	viewHolds(t, a, s, "k", nil) // End #2 is acknowledged and pending
	for _, c := range log.all() {
		if c.Session == s && !c.Deleted {
			t.Errorf("OnSharedChange reported %+v, which this node's pending End deletes", c)
		}
	}
	flush(t, a)
	waitShared(t, b, s, "k", "", true, 3*time.Second) // End #2 did delete it
}

// Close promises to return by ctx's deadline whatever Cassandra does. With a
// shared family and Cassandra unresponsive, it waited for the family's
// refresh goroutine, whose read ran under its own timeout
// (max(refresh, HOLDOVER_TIMEOUT)) that Close did not cancel, and whose loop
// could pick a pending tick over the stop signal and start another read:
// 10 to 25 s for a 2 s deadline. Found by review.
func TestCloseWithASharedFamilyKeepsItsDeadline(t *testing.T) {
	a, _, proxy, _ := sharedPair(t, "shared-close-deadline", 10*time.Millisecond)
	// HOLDOVER_TIMEOUT stays at its default (5 s), over the deadline.
	if err := a.CommitShared("settings:w", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	proxy.stall()
	time.Sleep(300 * time.Millisecond) // a re-read is now waiting on Cassandra
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	began := time.Now()
	_, err := a.Close(ctx)
	if took := time.Since(began); took > 3*time.Second {
		t.Errorf("Close with a 2 s deadline returned after %v (%v)", took.Round(time.Millisecond), err)
	}
}
