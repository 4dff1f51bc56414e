//go:build drills

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// ring is one Cassandra cluster in containers, on its own data network.
type ring struct {
	e     *engine
	data  *network // Cassandra and the holdover nodes
	front *network // the holdover nodes and this process; never Cassandra
	nodes []*container
}

// cassandraHost is Cassandra node i's host number on the data network.
func cassandraHost(i int) int { return 10 + i }

// startRing starts n Cassandra containers one after the other (each answers
// CQL before the next starts, as a ring must be grown) and waits until each
// sees the others. It fails, never skips, when Cassandra cannot start.
func startRing(ctx context.Context, e *engine, cfg config, name string, n int, logf func(string, ...any)) (*ring, error) {
	data, err := e.createNetwork(name + "-data")
	if err != nil {
		return nil, err
	}
	front, err := e.createNetwork(name + "-front")
	if err != nil {
		return nil, err
	}
	r := &ring{e: e, data: data, front: front}
	seed := data.ip(cassandraHost(1))
	heap := cfg.cassandraHeap
	if n > 1 {
		heap = cfg.ringHeap
	}
	for i := 1; i <= n; i++ {
		ip := data.ip(cassandraHost(i))
		env := []string{
			"CASSANDRA_CLUSTER_NAME=holdover-e2e",
			"CASSANDRA_SEEDS=" + seed,
			"CASSANDRA_LISTEN_ADDRESS=" + ip,
			"CASSANDRA_BROADCAST_ADDRESS=" + ip,
			"CASSANDRA_RPC_ADDRESS=0.0.0.0",
			"CASSANDRA_BROADCAST_RPC_ADDRESS=" + ip,
			"CASSANDRA_NUM_TOKENS=16",
			"MAX_HEAP_SIZE=" + heap,
			"HEAP_NEWSIZE=" + cfg.cassandraNewSize,
			// A test ring needs no gossip settling nor the 30 s ring delay.
			"JVM_EXTRA_OPTS=-Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=1000",
		}
		t0 := time.Now()
		c, err := e.runContainer(fmt.Sprintf("%s-cassandra%d", name, i), cfg.cassandraImage, env, attachment{data, cassandraHost(i)})
		if err != nil {
			return r, err
		}
		r.nodes = append(r.nodes, c)
		if err := waitCQL(ctx, c, ip, cfg.cassandraStart); err != nil {
			return r, err
		}
		logf("cassandra %s answers CQL at %s after %.1f s", c.name, ip, time.Since(t0).Seconds())
	}
	if n > 1 {
		if err := r.waitPeers(ctx, cfg.cassandraStart); err != nil {
			return r, err
		}
		if err := r.warm(ctx, 2*time.Minute, logf); err != nil {
			return r, err
		}
	}
	return r, nil
}

// hosts are the CQL addresses of the ring's nodes.
func (r *ring) hosts() []string {
	var h []string
	for _, c := range r.nodes {
		h = append(h, c.ip(r.data))
	}
	return h
}

// waitCQL polls ip:9042 until it answers a query, the container exits, or
// timeout passes.
func waitCQL(ctx context.Context, c *container, ip string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if err := c.alive(); err != nil {
			return fmt.Errorf("cassandra could not start: %w", err)
		}
		if _, err := releaseVersion(ip); err == nil {
			return nil
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cassandra %s did not answer CQL at %s:9042 within %v (%v); last log lines:\n%s", c.name, ip, timeout, last, c.tail(30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// single opens a session to one Cassandra node only.
func single(ip string, timeout time.Duration) (*gocql.Session, error) {
	cl := gocql.NewCluster(ip)
	cl.Timeout = timeout
	cl.ConnectTimeout = timeout
	cl.DisableInitialHostLookup = true
	cl.NumConns = 1
	cl.Logger = gocql.NewLogger(gocql.LogLevelNone)
	return cl.CreateSession()
}

func releaseVersion(ip string) (string, error) {
	s, err := single(ip, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer s.Close()
	var v string
	err = s.Query("SELECT release_version FROM system.local").Scan(&v)
	return v, err
}

// waitPeers waits until every node knows every other node and the ring
// agrees on the schema.
func (r *ring) waitPeers(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, c := range r.nodes {
		for {
			n, err := peers(c.ip(r.data))
			if err == nil && n == len(r.nodes)-1 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cassandra %s sees %d peers, want %d (%v)", c.name, n, len(r.nodes)-1, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
	return nil
}

func peers(ip string) (int, error) {
	s, err := single(ip, 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	var n int
	err = s.Query("SELECT count(*) FROM system.peers").Scan(&n)
	return n, err
}

// reader reads what the product wrote, for the drills' checks.
type reader struct {
	s  *gocql.Session
	ks string
}

// openReader opens a session to the ring reading keyspace ks at QUORUM.
func openReader(r *ring, ks string) (*reader, error) {
	cl := gocql.NewCluster(r.hosts()...)
	cl.Timeout = 10 * time.Second
	cl.ConnectTimeout = 5 * time.Second
	cl.Consistency = gocql.Quorum
	cl.Logger = gocql.NewLogger(gocql.LogLevelNone)
	s, err := cl.CreateSession()
	if err != nil {
		return nil, fmt.Errorf("cassandra: open reader: %w", err)
	}
	return &reader{s: s, ks: ks}, nil
}

func (rd *reader) close() { rd.s.Close() }

// items returns a session's persisted items, key → value.
func (rd *reader) items(ctx context.Context, session string) (map[string]string, error) {
	it := rd.s.Query(fmt.Sprintf("SELECT key, value FROM %s.state WHERE session = ?", rd.ks), session).
		Idempotent(true).IterContext(ctx)
	out := map[string]string{}
	var k string
	var v []byte
	for it.Scan(&k, &v) {
		out[k] = string(v)
		v = nil
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("read state of %s: %w", session, err)
	}
	return out, nil
}

// owner is a session's row in the owners table.
type owner struct {
	Node     string
	Epoch    int64
	Released bool
	Found    bool
}

// owner returns a session's ownership row, read at SERIAL so an in-progress
// claim is settled first.
func (rd *reader) owner(ctx context.Context, session string) (owner, error) {
	var o owner
	err := rd.s.Query(fmt.Sprintf("SELECT owner, epoch, released FROM %s.owners WHERE session = ?", rd.ks), session).
		Consistency(gocql.Serial).ScanContext(ctx, &o.Node, &o.Epoch, &o.Released)
	if err == gocql.ErrNotFound {
		return owner{}, nil
	}
	if err != nil {
		return owner{}, fmt.Errorf("read owner of %s: %w", session, err)
	}
	o.Found = true
	return o, nil
}

// decoded is a session's persisted state in the reference node's layout
// (internal/testbench/node: meta/version, attr/<name>, hist/<8 digits>).
type decoded struct {
	Version uint64
	Attrs   map[string]string
	History []string
}

func decode(items map[string]string) (decoded, error) {
	d := decoded{Attrs: map[string]string{}}
	v, ok := items["meta/version"]
	if !ok {
		return d, fmt.Errorf("no meta/version item")
	}
	if _, err := fmt.Sscan(v, &d.Version); err != nil {
		return d, fmt.Errorf("meta/version is %q", v)
	}
	for i := 0; ; i++ {
		e, ok := items[fmt.Sprintf("hist/%08d", i)]
		if !ok {
			break
		}
		d.History = append(d.History, e)
	}
	hist := 0
	for k, v := range items {
		switch {
		case strings.HasPrefix(k, "attr/"):
			d.Attrs[strings.TrimPrefix(k, "attr/")] = v
		case strings.HasPrefix(k, "hist/"):
			hist++
		}
	}
	if hist != len(d.History) {
		return d, fmt.Errorf("history has a gap: %d entries in a row of %d", len(d.History), hist)
	}
	return d, nil
}

// warm runs lightweight transactions and writes against a fresh multi-node
// ring until they answer promptly: a ring just started on a small machine
// answers its first Paxos rounds in seconds, which drills that measure a
// node loss must not mistake for the loss. It stops when 200 operations in a
// row had a p99 under 250 ms, or after limit.
func (r *ring) warm(ctx context.Context, limit time.Duration, logf func(string, ...any)) error {
	cl := gocql.NewCluster(r.hosts()...)
	cl.Timeout = 10 * time.Second
	cl.ConnectTimeout = 5 * time.Second
	cl.Consistency = gocql.Quorum
	cl.SerialConsistency = gocql.Serial
	cl.Logger = gocql.NewLogger(gocql.LogLevelNone)
	s, err := cl.CreateSession()
	if err != nil {
		return fmt.Errorf("cassandra: warm-up session: %w", err)
	}
	defer s.Close()
	ddl := []string{
		fmt.Sprintf(`CREATE KEYSPACE IF NOT EXISTS warmup WITH replication = {'class': 'SimpleStrategy', 'replication_factor': %d}`, len(r.nodes)),
		`CREATE TABLE IF NOT EXISTS warmup.t (k text PRIMARY KEY, v int)`,
	}
	for _, q := range ddl {
		if err := s.Query(q).ExecContext(ctx); err != nil {
			return fmt.Errorf("cassandra: warm-up schema: %w", err)
		}
	}
	if err := s.AwaitSchemaAgreement(ctx); err != nil {
		return fmt.Errorf("cassandra: warm-up schema agreement: %w", err)
	}
	t0 := time.Now()
	const window, conc = 200, 8
	var lat []time.Duration
	for i := 0; time.Since(t0) < limit; i += conc {
		res := make(chan time.Duration, conc)
		for j := range conc {
			go func(k string) {
				began := time.Now()
				_, err := s.Query(`INSERT INTO warmup.t (k, v) VALUES (?, 1) IF NOT EXISTS`, k).ScanCASContext(ctx)
				if err == nil {
					err = s.Query(`UPDATE warmup.t SET v = 2 WHERE k = ?`, k).ExecContext(ctx)
				}
				d := time.Since(began)
				if err != nil {
					d = cl.Timeout // a failure counts as slow
				}
				res <- d
			}(fmt.Sprintf("k%d", i+j))
		}
		for range conc {
			lat = append(lat, <-res)
		}
		if len(lat) >= window {
			recent := append([]time.Duration(nil), lat[len(lat)-window:]...)
			slices.Sort(recent)
			if p99 := recent[window*99/100]; p99 < 250*time.Millisecond {
				logf("cassandra ring warm after %d operations in %.1f s (p99 of the last %d: %v)", len(lat), time.Since(t0).Seconds(), window, p99.Round(time.Millisecond))
				return nil
			}
		}
	}
	logf("cassandra ring still slow after %v of warm-up (%d operations); going on", limit, len(lat))
	return nil
}
