package adapter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/store"
)

// Inspector reads what holdover persisted without owning anything: it takes
// no lease, claims, releases or writes nothing, and never creates the schema,
// whatever HOLDOVER_CREATE_SCHEMA says. Its reads use HOLDOVER_CONSISTENCY,
// so they see what a node's Adopt would see; they may lag a node's unflushed
// commits by the flush window. It is safe for concurrent use.
type Inspector struct {
	st   *store.Store
	skew time.Duration // the peers' margin on leases (HOLDOVER_MAX_CLOCK_SKEW)
}

// OpenInspector connects to cfg.Keyspace with the hosts, TLS, credentials,
// consistency and timeouts a node with cfg would use. cfg must pass Validate
// (ConfigFromEnv ensures it); its node-only fields are not used.
//
// It returns a *ConfigError when cfg is invalid or a TLS file cannot be
// loaded, an error wrapping ErrNoKeyspace when Cassandra answers but the
// keyspace does not exist, and otherwise the connection error, naming the
// hosts. It never creates the keyspace.
func OpenInspector(ctx context.Context, cfg Config) (*Inspector, error) {
	o, err := cfg.inspectorOptions()
	if err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, o)
	if err == nil {
		return &Inspector{st: st, skew: cfg.MaxClockSkew}, nil
	}
	if c, derr := describeCluster(ctx, o); derr == nil && !c.KeyspaceExists {
		return nil, &noKeyspaceError{keyspace: o.Keyspace, at: cassandraAt(o)}
	}
	return nil, fmt.Errorf("holdover: connect to cassandra at %s, keyspace %q: %w", cassandraAt(o), o.Keyspace, err)
}

// Close closes the connection. The Inspector must not be used afterwards.
func (i *Inspector) Close() { i.st.Close() }

// Ownership is a session's ownership row.
type Ownership struct {
	// Node owns the session (its HOLDOVER_NODE_ID).
	Node string
	// Epoch is 1 when the session was created and grows by one at each
	// adoption.
	Epoch uint64
	// Released is true when Node shut down gracefully and handed the session
	// over: any node may adopt it at once, without waiting for Node's lease.
	Released bool
	// ClaimedAt is when Node created or adopted the session (or ended it).
	ClaimedAt time.Time
	// Ended is true for a session that ended: the row is kept, one epoch
	// above its last owner's, for HOLDOVER_ENDED_TTL so that a session started
	// afresh with the same ID ranks above the End. Nobody owns it.
	Ended bool
}

// SessionInfo is what is persisted of one session.
type SessionInfo struct {
	ID string
	// Owner is the ownership row, or nil when the session has none while
	// items remain (it ended or expired; Adopt reports it not found).
	Owner *Ownership
	// Items are the persisted items in key order.
	Items []Item
}

// Session reads the session's ownership row and items. It returns ErrNotFound
// when the session has neither, and a *LimitError when id is empty or over
// HOLDOVER_MAX_SESSION_ID_BYTES.
func (i *Inspector) Session(ctx context.Context, id string) (SessionInfo, error) {
	own, found, err := i.Ownership(ctx, id)
	if err != nil {
		return SessionInfo{}, err
	}
	items, err := i.st.ReadState(ctx, id)
	if err != nil {
		return SessionInfo{}, translate(err)
	}
	if !found && len(items) == 0 {
		return SessionInfo{}, ErrNotFound
	}
	s := SessionInfo{ID: id, Items: itemsOf(items)}
	if found {
		s.Owner = &own
	}
	return s, nil
}

// Ownership reads the session's ownership row alone; found is false when it
// has none (it never existed, ended, or expired).
func (i *Inspector) Ownership(ctx context.Context, id string) (own Ownership, found bool, err error) {
	o, found, err := i.st.ReadOwner(ctx, id)
	return Ownership(o), found, translate(err)
}

// Lease is a node's liveness lease. A node holds one while it runs and renews
// it; a node whose lease has expired is dead, and its sessions adoptable.
type Lease struct {
	// Node is the node's HOLDOVER_NODE_ID.
	Node string
	// RenewedAt is when the node last renewed the lease (Cassandra's clock).
	RenewedAt time.Time
	// TTL is the lease's time to live (the node's HOLDOVER_LEASE_TTL).
	TTL time.Duration
	// Remaining is what is left of the lease as peers judge it: until
	// RenewedAt + TTL + HOLDOVER_MAX_CLOCK_SKEW, on this machine's clock.
	Remaining time.Duration
	// Incarnation names the process holding the lease (a random ID chosen at
	// each Open), so a restart of the node shows as a new incarnation.
	Incarnation string
	// Since is when the node's current unbroken lease began, on its clock:
	// when this incarnation started, or when it renewed again after a lapse.
	Since time.Time
}

// Lease reads node's lease; found is false when the node is not live (its
// lease expired, or it never ran).
func (i *Inspector) Lease(ctx context.Context, node string) (l Lease, found bool, err error) {
	sl, found, err := i.st.ReadLease(ctx, node)
	if err != nil || !found {
		return Lease{}, false, err
	}
	return i.lease(sl, time.Now())
}

// lease converts a stored lease, found false when peers take it as expired
// (its row outlives it a little).
func (i *Inspector) lease(sl store.Lease, now time.Time) (Lease, bool, error) {
	if !sl.LiveAt(now, i.skew) {
		return Lease{}, false, nil
	}
	sl.Remaining = sl.RenewedAt.Add(sl.TTL + i.skew).Sub(now)
	return Lease(sl), true, nil
}

// Leases lists every live lease, in node order.
func (i *Inspector) Leases(ctx context.Context) ([]Lease, error) {
	sls, err := i.st.Leases(ctx)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	leases := make([]Lease, 0, len(sls))
	for _, sl := range sls {
		if l, live, _ := i.lease(sl, now); live {
			leases = append(leases, l)
		}
	}
	slices.SortFunc(leases, func(a, b Lease) int { return cmp.Compare(a.Node, b.Node) })
	return leases, nil
}

// Owned is one entry of the owner index: the session and the epoch at which
// the node took it.
type Owned struct {
	Session string
	Epoch   uint64
}

// OwnedBy lists the sessions the owner index holds under node, in session ID
// order, at most limit of them (0: all); more is true when limit stopped the
// listing before the end. The index is a hint: an entry may be stale (the
// session ended or was adopted since), so check it with Ownership.
func (i *Inspector) OwnedBy(ctx context.Context, node string, limit int) (owned []Owned, more bool, err error) {
	owned = []Owned{}
	err = i.st.OwnedBy(ctx, node, func(o store.Owned) bool {
		if limit > 0 && len(owned) == limit {
			more = true
			return false
		}
		owned = append(owned, Owned(o))
		return true
	})
	if err != nil {
		return nil, false, err
	}
	return owned, more, nil
}

// Cluster describes the Cassandra cluster a configuration points at.
type Cluster struct {
	// ReleaseVersion is the Cassandra release of the node that answered, such
	// as "5.0.2".
	ReleaseVersion string
	ClusterName    string
	// DataCenter is the data center of the node that answered.
	DataCenter string
	// KeyspaceExists reports whether the configured keyspace exists.
	KeyspaceExists bool
}

// DescribeCluster connects as OpenInspector does, but without using the
// configured keyspace, so it also works before any node has created it, and
// says whether one has. It returns a *ConfigError when cfg is invalid, and
// otherwise the connection error, naming the hosts.
func DescribeCluster(ctx context.Context, cfg Config) (Cluster, error) {
	o, err := cfg.inspectorOptions()
	if err != nil {
		return Cluster{}, err
	}
	return describeCluster(ctx, o)
}

func describeCluster(ctx context.Context, o store.Options) (Cluster, error) {
	keyspace := o.Keyspace
	o.Keyspace = "system" // always exists
	sys, err := store.Open(ctx, o)
	if err != nil {
		return Cluster{}, fmt.Errorf("holdover: connect to cassandra at %s: %w", cassandraAt(o), err)
	}
	defer sys.Close()
	var c Cluster
	err = sys.Session().Query(`SELECT release_version, cluster_name, data_center FROM system.local`).
		ScanContext(ctx, &c.ReleaseVersion, &c.ClusterName, &c.DataCenter)
	if err != nil {
		return Cluster{}, fmt.Errorf("holdover: read system.local: %w", err)
	}
	// Cassandra folds unquoted names, as the schema's are, to lower case.
	var name string
	err = sys.Session().Query(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`,
		strings.ToLower(keyspace)).ScanContext(ctx, &name)
	switch {
	case err == nil:
		c.KeyspaceExists = true
	case !errors.Is(err, gocql.ErrNotFound):
		return Cluster{}, fmt.Errorf("holdover: look up keyspace %q: %w", keyspace, err)
	}
	return c, nil
}

// inspectorOptions are the store options of an Inspector: a node's, but never
// creating the schema, and with one connection per host, enough for a reader.
func (c Config) inspectorOptions() (store.Options, error) {
	o, err := c.storeOptions()
	o.CreateSchema = false
	o.NumConns = 1
	return o, err
}

// cassandraAt names the contact points for error messages.
func cassandraAt(o store.Options) string {
	return fmt.Sprintf("%s (port %d)", strings.Join(o.Hosts, ","), o.Port)
}

// noKeyspaceError is ErrNoKeyspace naming the keyspace and where it is missing.
type noKeyspaceError struct{ keyspace, at string }

func (e *noKeyspaceError) Error() string {
	return fmt.Sprintf("holdover: keyspace %q does not exist on %s (HOLDOVER_KEYSPACE): no node has run with it yet, or HOLDOVER_CREATE_SCHEMA=false and it was never created",
		e.keyspace, e.at)
}

// Unwrap makes errors.Is(err, ErrNoKeyspace) true.
func (e *noKeyspaceError) Unwrap() error { return ErrNoKeyspace }
