package store_test

import (
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/store"
)

// stateTTLs returns the remaining TTL in seconds of each of session's items,
// read from the format column (every item has one); a key without a TTL maps
// to -1.
func stateTTLs(t *testing.T, st *store.Store, session string) map[string]int {
	t.Helper()
	s := cassandratest.Session(t, st.Keyspace())
	iter := s.Query(`SELECT key, TTL(format) FROM state WHERE session = ?`, session).Iter()
	var (
		key string
		ttl *int
	)
	got := map[string]int{}
	for iter.Scan(&key, &ttl) {
		got[key] = -1
		if ttl != nil {
			got[key] = *ttl
		}
		ttl = nil
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	return got
}

// TestTTLForPerSession: the sessions TTLFor gives a TTL are written with it,
// through every write path (WriteSession, WriteSessions, Fence), the others
// with StateTTL. After 6.5 s the 5 s sessions are gone and the others are
// there. A TTL under a second is rounded up, not down to 0, which Cassandra
// would take for no TTL at all: that session is gone too.
func TestTTLForPerSession(t *testing.T) {
	t.Parallel()
	// 5 s: long enough that a loaded machine reads the TTLs back before
	// they run out (at 2 s, make test once read short-fence's after it had).
	short := map[string]time.Duration{"short": 5 * time.Second, "short-batch": 5 * time.Second, "short-fence": 5 * time.Second, "sub-second": 500 * time.Millisecond}
	st := open(t, func(o *store.Options) {
		o.StateTTL = time.Hour
		o.TTLFor = func(session string) time.Duration { return short[session] }
	})
	items := []store.Item{{Key: "k", Value: []byte("v")}, {Key: "empty"}}
	start := time.Now()
	for _, s := range []string{"short", "long", "sub-second"} {
		write(t, st, store.Write{Session: s, Epoch: 1, Seq: 10, Items: items})
	}
	ws := []*store.Write{
		{Session: "short-batch", Epoch: 1, Seq: 10, Items: items},
		{Session: "long-batch", Epoch: 1, Seq: 10, Items: items},
	}
	errs := make([]error, len(ws))
	st.WriteSessions(ctx(t), ws, errs)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("WriteSessions %s: %v", ws[i].Session, err)
		}
	}
	for _, s := range []string{"short-fence", "long-fence"} {
		if err := st.Fence(ctx(t), s, 2, items); err != nil {
			t.Fatalf("fence %s: %v", s, err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("the writes took %s: too slow for this test's TTL timing", d)
	}

	for _, s := range []string{"short", "short-batch", "short-fence", "long", "long-batch", "long-fence"} {
		got := stateTTLs(t, st, s)
		if len(got) != len(items) {
			t.Fatalf("%s: TTLs %v, want one for each of %d items", s, got, len(items))
		}
		for k, ttl := range got {
			if _, isShort := short[s]; isShort && (ttl < 0 || ttl > 5) {
				t.Errorf("%s/%s: TTL %d s, want TTLFor's 5 s", s, k, ttl)
			} else if !isShort && ttl < 3500 {
				t.Errorf("%s/%s: TTL %d s, want StateTTL's 3600 s", s, k, ttl)
			}
		}
	}

	time.Sleep(time.Until(start.Add(6500 * time.Millisecond)))
	for _, s := range []string{"short", "short-batch", "short-fence", "sub-second"} {
		if got := read(t, st, s); len(got) != 0 {
			t.Errorf("%s: %d items 6.5 s after a TTL of %s: %v", s, len(got), short[s], got)
		}
	}
	for _, s := range []string{"long", "long-batch", "long-fence"} {
		if got := read(t, st, s); len(got) != len(items) || string(got["k"]) != "v" {
			t.Errorf("%s: items %v after 6.5 s, want both (StateTTL is 1 h)", s, got)
		}
	}
}

// TestRefreshStateRenewsWithTheSessionTTL: RefreshState renews an item to its
// session's TTL, TTLFor's when it gives one and StateTTL otherwise, at the
// item's original write timestamp.
func TestRefreshStateRenewsWithTheSessionTTL(t *testing.T) {
	t.Parallel()
	st := open(t, func(o *store.Options) {
		o.StateTTL = time.Hour
		o.TTLFor = func(session string) time.Duration {
			if session == "own-ttl" {
				return 100 * time.Second
			}
			return 0
		}
	})
	s := cassandratest.Session(t, st.Keyspace())
	ts, _ := store.Timestamp(1, 11)
	for _, session := range []string{"own-ttl", "default"} {
		// Items with 10 s left: under the 60 s RefreshState is asked to keep.
		if err := s.Query(`INSERT INTO state (session, key, value, format) VALUES (?, 'k', 0x76, 1) USING TIMESTAMP ? AND TTL 10`, session, ts).Exec(); err != nil {
			t.Fatal(err)
		}
		n, err := st.RefreshState(ctx(t), session, time.Minute)
		if err != nil || n != 1 {
			t.Fatalf("RefreshState(%s) = %d, %v; want 1 item renewed", session, n, err)
		}
	}
	if got := stateTTLs(t, st, "own-ttl")["k"]; got < 90 || got > 100 {
		t.Errorf("own-ttl: TTL %d s after the refresh, want TTLFor's 100 s", got)
	}
	if got := stateTTLs(t, st, "default")["k"]; got < 3500 {
		t.Errorf("default: TTL %d s after the refresh, want StateTTL's 3600 s", got)
	}
	var written int64
	if err := s.Query(`SELECT WRITETIME(format) FROM state WHERE session = 'own-ttl' AND key = 'k'`).Scan(&written); err != nil || written != ts {
		t.Errorf("own-ttl renewed at timestamp %d (%v), want the original %d", written, err, ts)
	}
}
