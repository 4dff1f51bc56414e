package store

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// faultyDialer dials real connections that misbehave on demand. While a
// stall is armed (until), replies are held until it ends: a request reaches
// Cassandra and applies (or not), but its reply comes late, as over a
// congested network. While dropping is set, writes are swallowed: a request
// never reaches Cassandra, and its caller times out not knowing that (a
// replica dying under a lightweight transaction leaves the coordinator's
// caller the same way).
type faultyDialer struct {
	until    atomic.Int64 // unix nanoseconds
	dropping atomic.Bool
	d        net.Dialer
}

func (fd *faultyDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := fd.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &faultyConn{Conn: c, fd: fd}, nil
}

type faultyConn struct {
	net.Conn
	fd *faultyDialer
}

func (c *faultyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if d := time.Until(time.Unix(0, c.fd.until.Load())); d > 0 {
		time.Sleep(d)
	}
	return n, err
}

func (c *faultyConn) Write(p []byte) (int, error) {
	if c.fd.dropping.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// openFaulty opens a Store, as Open does, on connections that can be
// stalled or made to drop requests.
// tweak, when given, adjusts the driver's configuration first.
func openFaulty(t *testing.T, keyspace string, timeout time.Duration, tweak ...func(*gocql.ClusterConfig)) (*Store, *faultyDialer) {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	o, err := Options{Hosts: hosts, Port: port, Keyspace: keyspace, Timeout: timeout}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	sd := &faultyDialer{}
	c := o.cluster()
	c.Keyspace = o.Keyspace
	c.Dialer = sd
	for _, f := range tweak {
		f(c)
	}
	sess, err := c.CreateSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// The driver's Close can wait for good on a control connection whose
		// replies were held (seen once in make test): bounded here.
		closed := make(chan struct{})
		go func() { sess.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
		}
	})
	st := &Store{s: sess, lease: sess, opts: o, ttl: int(o.StateTTL / time.Second), logger: o.Logger,
		policy: c.PoolConfig.HostSelectionPolicy, hedge: noHedge, stmts: newStatements(o.Keyspace, o.Tables)}
	return st, sd
}

// The ownership row names this node at epoch 1, left by an earlier
// incarnation that released it on Close (a peer may be claiming it now). A
// create whose reply is lost is settled by a serial read, which finds "this
// node at epoch 1": that is not this create's write (the INSERT IF NOT
// EXISTS did not apply), and the create must say so, as its answer would
// have, so that residency claims and fences the row like any adoption
// (docs/invariants.md, I3). Before, the settle took any row naming the node
// at the epoch as its own: the new incarnation wrote at the old epoch on a
// row still released, which a peer could claim without a fence.
func TestLostCreateReplyDoesNotTakeAnEarlierIncarnationsRow(t *testing.T) {
	hosts, port := cassandratest.Hosts(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ks := cassandratest.Keyspace(t)
	old, err := Open(ctx, Options{Hosts: hosts, Port: port, Keyspace: ks, CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// The earlier incarnation of node n1: created, wrote, released at Close.
	if created, _, err := old.CreateOwner(ctx, "s", "n1", 0, time.Hour); err != nil || !created {
		t.Fatalf("earlier incarnation's create: %v %v", created, err)
	}
	if ok, err := old.Release(ctx, "s", "n1", 1, time.Hour); err != nil || !ok {
		t.Fatalf("earlier incarnation's release: %v %v", ok, err)
	}

	st, sd := openFaulty(t, ks, time.Second)
	// Warm up: prepare the statements, so the stall holds the transaction's
	// reply itself.
	if _, _, err := st.CreateOwner(ctx, "warm", "n2", 0, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ReadOwnerSerial(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	// The new incarnation creates "s"; the reply of its lightweight
	// transaction is held past the timeout (1 s), the serial read's (sent
	// then) is held half a second.
	sd.until.Store(time.Now().Add(1500 * time.Millisecond).UnixNano())
	created, cur, err := st.CreateOwner(ctx, "s", "n1", 0, time.Hour)
	t.Logf("create with a lost reply (%v): created=%v cur=%+v err=%v", time.Since(began), created, cur, err)
	if err == nil && cur.Epoch == 0 {
		t.Fatalf("the settle read nothing: %+v", cur) // the test did not reach the path it checks
	}
	if created {
		t.Fatalf("CreateOwner reported the session created at epoch %d (released=%v), but the row was the earlier incarnation's: the INSERT IF NOT EXISTS never applied", cur.Epoch, cur.Released)
	}

	// A create that did apply, its reply lost the same way, is settled as
	// created: the row carries this create's own stamp.
	sd.until.Store(time.Now().Add(1500 * time.Millisecond).UnixNano())
	created, cur, err = st.CreateOwner(ctx, "fresh", "n1", 0, time.Hour)
	if !created || err != nil || cur.Node != "n1" || cur.Epoch != 1 {
		t.Fatalf("a create that applied, its reply lost: created=%v cur=%+v err=%v; want created at epoch 1", created, cur, err)
	}
}
