package inspect

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// testConfig is a node's configuration against the test Cassandra, as the
// adapter's own tests build it.
func testConfig(t testing.TB, node, keyspace string) adapter.Config {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = hosts, port, keyspace, node
	cfg.FlushDelay = 20 * time.Millisecond
	cfg.LeaseTTL = 3 * time.Second
	cfg.MaxWindow = time.Minute // a loaded machine may hold a flush for a while
	return cfg
}

func openNode(t testing.TB, cfg adapter.Config) *adapter.Adapter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := adapter.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open node %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = a.Close(ctx)
	})
	return a
}

func flush(t *testing.T, a *adapter.Adapter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatalf("flush %s: %v", a.NodeID(), err)
	}
}

func put(k, v string) adapter.Change { return adapter.Change{Key: k, Value: []byte(v)} }

func openInspector(t *testing.T, cfg adapter.Config) *Inspector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open inspector: %v", err)
	}
	t.Cleanup(in.Close)
	return in
}

func TestReadsWhatNodesPersisted(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "a", ks))
	b := openNode(t, testConfig(t, "b", ks))
	if err := a.Commit("s1", put("z", "last"), put("a", "first"), adapter.Change{Key: "empty"}); err != nil {
		t.Fatal(err)
	}
	if err := a.Commit("s2", put("k", "v")); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	in := openInspector(t, testConfig(t, "inspector", ks))

	s, err := in.Session(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if o := s.Owner; o == nil || o.Node != "a" || o.Epoch != 1 || o.Released || o.Ended || time.Since(o.ClaimedAt) > time.Minute {
		t.Errorf("s1 owner = %+v, want a at epoch 1, claimed just now, not released", o)
	}
	keys := make([]string, 0, len(s.Items))
	for _, it := range s.Items {
		keys = append(keys, it.Key+"="+string(it.Value))
	}
	if s.ID != "s1" || !slices.Equal(keys, []string{"a=first", "empty=", "z=last"}) {
		t.Errorf("s1 = %q with items %q, want them in key order", s.ID, keys)
	}
	var le *adapter.LimitError
	if _, err := in.Session(ctx, ""); !errors.As(err, &le) || !errors.Is(err, adapter.ErrInvalidInput) || le.Field != "session ID" {
		t.Errorf("Session(\"\") error = %v, want an *adapter.LimitError on the session ID", err)
	}
	long := strings.Repeat("x", testConfig(t, "", ks).MaxSessionIDBytes+1)
	if _, err := in.Owner(ctx, long); !errors.As(err, &le) || le.Got != len(long) {
		t.Errorf("Owner(too long) error = %v, want an *adapter.LimitError giving its length", err)
	}

	t.Run("leases", func(t *testing.T) {
		l, err := in.Lease(ctx, "a")
		if err != nil || l.Node != "a" || l.TTL != 3*time.Second || l.Remaining <= 0 || l.Remaining > l.TTL+time.Second ||
			time.Since(l.RenewedAt) > l.TTL || l.Incarnation == "" || time.Since(l.Since) > time.Minute {
			t.Errorf("Lease(a) = %+v, %v; want a live 3s lease that began just now", l, err)
		}
		ls, err := in.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var nodes []string
		for _, l := range ls {
			nodes = append(nodes, l.Node)
		}
		if !slices.Equal(nodes, []string{"a", "b"}) { // the inspector took none
			t.Errorf("Leases() nodes = %q, want [a b] in order", nodes)
		}
	})

	t.Run("owned", func(t *testing.T) {
		for _, c := range []struct {
			limit int
			want  []Owned
			more  bool
		}{
			{0, []Owned{{"s1", 1}, {"s2", 1}}, false},
			{1, []Owned{{"s1", 1}}, true},
			{2, []Owned{{"s1", 1}, {"s2", 1}}, false},
		} {
			got, more, err := in.OwnedBy(ctx, "a", c.limit)
			if err != nil || !slices.Equal(got, c.want) || more != c.more {
				t.Errorf("OwnedBy(a, %d) = %v, %v, %v; want %v, %v", c.limit, got, more, err, c.want, c.more)
			}
		}
		got, more, err := in.OwnedBy(ctx, "nobody", 0)
		if err != nil || got == nil || len(got) != 0 || more {
			t.Errorf("OwnedBy(nobody) = %#v, %v, %v; want an empty list", got, more, err)
		}
	})

	// A graceful shutdown releases the sessions; a peer then adopts one.
	if _, err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if o, err := in.Owner(ctx, "s1"); err != nil || !o.Released || o.Node != "a" || o.Lease != nil {
		t.Errorf("Owner(s1) after a closed = %+v, %v; want released by a, without a lease", o, err)
	}
	if _, err := b.Adopt(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if o, err := in.Owner(ctx, "s1"); err != nil || o.Released || o.Node != "b" || o.Epoch != 2 || o.Lease == nil || o.Lease.Node != "b" {
		t.Errorf("Owner(s1) after b adopted = %+v, %v; want b at epoch 2 with its live lease", o, err)
	}

	// Items whose ownership row is gone are still shown, without an owner.
	if err := cassandratest.Session(t, ks).Query(`DELETE FROM owners WHERE session = 's2'`).Exec(); err != nil {
		t.Fatal(err)
	}
	if o, err := in.Owner(ctx, "s2"); !errors.Is(err, ErrNotFound) || o != nil {
		t.Errorf("Owner(s2) after its row was deleted = %+v, %v; want ErrNotFound", o, err)
	}
	s, err = in.Session(ctx, "s2")
	if err != nil || s.Owner != nil || s.Status != StatusNoOwner || len(s.Items) != 1 {
		t.Errorf("Session(s2) without an ownership row = %+v, %v; want its item, no owner, no-owner", s, err)
	}
}

// TestNotFound: every lookup says "nothing" one way, with an error matching
// ErrNotFound (and adapter.ErrNotFound, the same value), never a zero value
// and no error.
func TestNotFound(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	openNode(t, testConfig(t, "a", ks)) // creates the schema
	in := openInspector(t, testConfig(t, "inspector", ks))

	if ErrNotFound != adapter.ErrNotFound {
		t.Fatal("inspect.ErrNotFound is not adapter.ErrNotFound")
	}
	for name, lookup := range map[string]func() error{
		"Session(never)": func() error { _, err := in.Session(ctx, "never"); return err },
		"Owner(never)":   func() error { _, err := in.Owner(ctx, "never"); return err },
		"Lease(nobody)":  func() error { _, err := in.Lease(ctx, "nobody"); return err },
		"Lease(\"\")":    func() error { _, err := in.Lease(ctx, ""); return err },
	} {
		err := lookup()
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, adapter.ErrNotFound) {
			t.Errorf("%s error = %v, want ErrNotFound", name, err)
		}
	}
	// A listing is not a lookup: nothing is an empty list.
	if ls, err := in.Leases(ctx); err != nil || len(ls) != 1 {
		t.Errorf("Leases() = %v, %v; want a's lease alone", ls, err)
	}
}

// TestStatus: the package computes each status from the ownership row and
// the owner's lease.
func TestStatus(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "a", ks))
	for _, id := range []string{"resident", "released", "ended", "no-owner"} {
		if err := a.Commit(id, put("k", id)); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, a)
	if err := a.End("ended"); err != nil {
		t.Fatal(err)
	}
	flush(t, a)
	db := cassandratest.Session(t, ks)
	// An owner that never ran (or died long ago): its lease is not live.
	if err := db.Query(`INSERT INTO owners (session, owner, epoch, released, claimed_at) VALUES ('non-resident', 'gone', 3, false, toTimestamp(now()))`).Exec(); err != nil {
		t.Fatal(err)
	}
	if err := db.Query(`DELETE FROM owners WHERE session = 'no-owner'`).Exec(); err != nil {
		t.Fatal(err)
	}
	in := openInspector(t, testConfig(t, "inspector", ks))

	check := func(id string, want Status, ok func(s Session) bool) {
		t.Helper()
		s, err := in.Session(ctx, id)
		if err != nil || s.Status != want || !ok(s) {
			t.Errorf("Session(%s) = %+v (owner %+v), %v; want status %s", id, s, s.Owner, err, want)
		}
	}
	check("resident", StatusResident, func(s Session) bool {
		return s.Owner.Node == "a" && s.Owner.Lease != nil && s.Owner.Lease.Node == "a" && len(s.Items) == 1
	})
	check("ended", StatusEnded, func(s Session) bool {
		return s.Owner.Ended && s.Owner.Node == "" && s.Owner.Epoch == 2 && s.Owner.Lease == nil && len(s.Items) == 0
	})
	check("non-resident", StatusNonResident, func(s Session) bool {
		return s.Owner.Node == "gone" && s.Owner.Epoch == 3 && s.Owner.Lease == nil && len(s.Items) == 0
	})
	check("no-owner", StatusNoOwner, func(s Session) bool { return s.Owner == nil && len(s.Items) == 1 })

	// A graceful Close hands over what a still owns.
	if _, err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check("released", StatusReleased, func(s Session) bool {
		return s.Owner.Node == "a" && s.Owner.Released && s.Owner.Lease == nil && len(s.Items) == 1
	})
	// Owner is the same shape the Session holds.
	if s, err := in.Session(ctx, "released"); err == nil {
		if o, err := in.Owner(ctx, "released"); err != nil || *o != *s.Owner {
			t.Errorf("Owner(released) = %+v, %v; want the Session's %+v", o, err, s.Owner)
		}
	}
}

func TestMissingKeyspace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t, "inspector", "holdover_inspector_absent")
	cfg.CreateSchema = true // must be ignored
	_, err := Open(ctx, cfg)
	if !errors.Is(err, adapter.ErrNoKeyspace) || !strings.Contains(err.Error(), `keyspace "holdover_inspector_absent" does not exist on 127.0.0.1`) {
		t.Errorf("Open on a missing keyspace: %v; want ErrNoKeyspace naming it and the hosts", err)
	}
	c, err := DescribeCluster(ctx, cfg)
	if err != nil || c.KeyspaceExists || !strings.HasPrefix(c.ReleaseVersion, "5.") || c.ClusterName == "" || c.DataCenter == "" {
		t.Errorf("DescribeCluster = %+v, %v; want Cassandra 5 and the keyspace absent (never created)", c, err)
	}

	// Unquoted names are case-insensitive, as Cassandra folds them.
	cfg.Keyspace = strings.ToUpper(cassandratest.Keyspace(t))
	if c, err := DescribeCluster(ctx, cfg); err != nil || !c.KeyspaceExists {
		t.Errorf("DescribeCluster(%s) = %+v, %v; want the keyspace present", cfg.Keyspace, c, err)
	}
}

func TestUnreachableAndInvalid(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens there now

	cfg := testConfig(t, "inspector", "holdover")
	cfg.Hosts, cfg.Port, cfg.ConnectTimeout = []string{"127.0.0.1"}, port, time.Second
	at := "connect to cassandra at 127.0.0.1 (port " + strconv.Itoa(port) + ")"
	if _, err := Open(ctx, cfg); err == nil || errors.Is(err, adapter.ErrNoKeyspace) || !strings.Contains(err.Error(), at) {
		t.Errorf("Open with Cassandra unreachable: %v; want a connection error containing %q", err, at)
	}
	if _, err := DescribeCluster(ctx, cfg); err == nil || !strings.Contains(err.Error(), at) {
		t.Errorf("DescribeCluster with Cassandra unreachable: %v; want an error containing %q", err, at)
	}

	cfg.Consistency = "ANY"
	for name, open := range map[string]func() error{
		"Open":            func() error { _, err := Open(ctx, cfg); return err },
		"DescribeCluster": func() error { _, err := DescribeCluster(ctx, cfg); return err },
	} {
		var ce *adapter.ConfigError
		if err := open(); !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Var != "HOLDOVER_CONSISTENCY" {
			t.Errorf("%s with an invalid configuration: %v; want a *ConfigError on HOLDOVER_CONSISTENCY", name, err)
		}
	}
}
