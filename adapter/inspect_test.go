package adapter

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

func openInspector(t *testing.T, cfg Config) *Inspector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	in, err := OpenInspector(ctx, cfg)
	if err != nil {
		t.Fatalf("open inspector: %v", err)
	}
	t.Cleanup(in.Close)
	return in
}

func TestInspectorReadsWhatNodesPersisted(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	ctx := context.Background()
	a := openNode(t, testConfig(t, "a", ks))
	b := openNode(t, testConfig(t, "b", ks))
	if err := a.Commit("s1", put("z", "last"), put("a", "first"), Change{Key: "empty"}); err != nil {
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
	if o := s.Owner; o == nil || o.Node != "a" || o.Epoch != 1 || o.Released || time.Since(o.ClaimedAt) > time.Minute {
		t.Errorf("s1 owner = %+v, want a at epoch 1, claimed just now, not released", o)
	}
	keys := make([]string, 0, len(s.Items))
	for _, it := range s.Items {
		keys = append(keys, it.Key+"="+string(it.Value))
	}
	if s.ID != "s1" || !slices.Equal(keys, []string{"a=first", "empty=", "z=last"}) {
		t.Errorf("s1 = %q with items %q, want them in key order", s.ID, keys)
	}
	if _, err := in.Session(ctx, "never"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Session(never) error = %v, want ErrNotFound", err)
	}
	var le *LimitError
	if _, err := in.Session(ctx, ""); !errors.As(err, &le) || !errors.Is(err, ErrInvalidInput) {
		t.Errorf("Session(\"\") error = %v, want a *LimitError", err)
	}

	t.Run("leases", func(t *testing.T) {
		l, found, err := in.Lease(ctx, "a")
		if err != nil || !found || l.Node != "a" || l.TTL != 3*time.Second || l.Remaining <= 0 || l.Remaining > l.TTL+time.Second || time.Since(l.RenewedAt) > l.TTL {
			t.Errorf("Lease(a) = %+v, %v, %v; want a live 3s lease", l, found, err)
		}
		if _, found, err := in.Lease(ctx, "nobody"); found || err != nil {
			t.Errorf("Lease(nobody): found %v, err %v; want not found", found, err)
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
		if err != nil || len(got) != 0 || more {
			t.Errorf("OwnedBy(nobody) = %#v, %v, %v; want an empty list", got, more, err)
		}
	})

	// A graceful shutdown releases the sessions; a peer then adopts one.
	if _, err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if o, found, err := in.Ownership(ctx, "s1"); err != nil || !found || !o.Released || o.Node != "a" {
		t.Errorf("Ownership(s1) after a closed = %+v, %v, %v; want released by a", o, found, err)
	}
	if _, err := b.Adopt(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if o, found, err := in.Ownership(ctx, "s1"); err != nil || !found || o.Released || o.Node != "b" || o.Epoch != 2 {
		t.Errorf("Ownership(s1) after b adopted = %+v, %v, %v; want b at epoch 2", o, found, err)
	}

	// Items whose ownership row is gone are still shown, without an owner.
	if err := cassandratest.Session(t, ks).Query(`DELETE FROM owners WHERE session = 's2'`).Exec(); err != nil {
		t.Fatal(err)
	}
	if _, found, err := in.Ownership(ctx, "s2"); found || err != nil {
		t.Errorf("Ownership(s2) after its row was deleted: found %v, err %v", found, err)
	}
	s, err = in.Session(ctx, "s2")
	if err != nil || s.Owner != nil || len(s.Items) != 1 {
		t.Errorf("Session(s2) without an ownership row = %+v, %v; want its item and no owner", s, err)
	}
}

func TestInspectorMissingKeyspace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig(t, "inspector", "holdover_inspector_absent")
	cfg.CreateSchema = true // must be ignored
	_, err := OpenInspector(ctx, cfg)
	if !errors.Is(err, ErrNoKeyspace) || !strings.Contains(err.Error(), `keyspace "holdover_inspector_absent" does not exist on 127.0.0.1`) {
		t.Errorf("OpenInspector on a missing keyspace: %v; want ErrNoKeyspace naming it and the hosts", err)
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

func TestInspectorUnreachableAndInvalid(t *testing.T) {
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
	if _, err := OpenInspector(ctx, cfg); err == nil || errors.Is(err, ErrNoKeyspace) || !strings.Contains(err.Error(), at) {
		t.Errorf("OpenInspector with Cassandra unreachable: %v; want a connection error containing %q", err, at)
	}
	if _, err := DescribeCluster(ctx, cfg); err == nil || !strings.Contains(err.Error(), at) {
		t.Errorf("DescribeCluster with Cassandra unreachable: %v; want an error containing %q", err, at)
	}

	cfg.Consistency = "ANY"
	for name, open := range map[string]func() error{
		"OpenInspector":   func() error { _, err := OpenInspector(ctx, cfg); return err },
		"DescribeCluster": func() error { _, err := DescribeCluster(ctx, cfg); return err },
	} {
		probs := problemsOf(t, open())
		if len(probs) != 1 || probs[0].Var != "HOLDOVER_CONSISTENCY" {
			t.Errorf("%s with an invalid configuration: problems %v, want HOLDOVER_CONSISTENCY", name, probs)
		}
	}
}
