package store

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Options configures a Store. The adapter fills it from its validated Config;
// Open checks what it relies on (identifiers, limits) again.
type Options struct {
	Hosts   []string
	Port    int
	LocalDC string // when set, token-aware routing prefers replicas in this DC

	Keyspace     string
	Replication  string // CQL replication map used when CreateSchema creates the keyspace
	CreateSchema bool
	// SharedTable makes CreateSchema create the shared families' table
	// (Tables.Shared) too: set it on a node with a shared family.
	SharedTable bool
	Tables      Tables

	Consistency gocql.Consistency // reads and writes; default LOCAL_QUORUM
	// SerialConsistency is the level of ownership claims (lightweight
	// transactions) and serial reads: SERIAL (the default) or LOCAL_SERIAL.
	// Open refuses LOCAL_SERIAL when the keyspace's replicas are in more
	// than one data center, where it would let two nodes own one session
	// (see dc.go).
	SerialConsistency gocql.Consistency
	// SerialConsistencyVar names SerialConsistency in errors, as the user
	// sets it (the adapter: HOLDOVER_SERIAL_CONSISTENCY); default
	// "SerialConsistency".
	SerialConsistencyVar string

	ConnectTimeout time.Duration
	Timeout        time.Duration
	NumConns       int // connections per host; default 2

	TLS      *tls.Config // nil: plain connections
	Username string
	Password string
	// PasswordFunc, when set, is called for the password at each new
	// connection instead of using Password, so that a rotated secret
	// reaches the connections opened after it changed (see auth.go).
	PasswordFunc func() (string, error)

	StateTTL time.Duration // TTL of state items; default 7 days
	// TTLFor, when set, gives the TTL of one session's state items: a
	// non-zero duration replaces StateTTL for that session's writes
	// (WriteSession, WriteSessions, Fence) and for the renewals of
	// RefreshState; zero keeps StateTTL. It is called once per session per
	// write, so it must be cheap and safe for concurrent use. Its durations
	// must be whole seconds from 1s to 630720000s (Cassandra's maximum TTL):
	// the caller validates them; the store rounds a fraction of a second up.
	// Default nil: every session has StateTTL, at no extra cost.
	TTLFor func(session string) time.Duration
	Limits Limits
	// RebaseDeletes is how many item deletes the store writes to one
	// session's partition before it writes the session whole, above a
	// partition tombstone that shadows their row tombstones (see rebase.go):
	// Cassandra fails every read of a partition holding more tombstones than
	// its tombstone_failure_threshold (100,000 by default), and such a
	// session could not be adopted. Default DefaultRebaseDeletes (10,000);
	// keep it well under the cluster's threshold. -1 never writes a session
	// whole.
	RebaseDeletes int

	Logger *slog.Logger // default slog.Default()
}

// Tables names the store's tables; each must be a CQL identifier. An empty
// name takes its DefaultTables name, so a Tables of an earlier release, which
// had no Shared, keeps working.
type Tables struct {
	State, Owners, OwnerIndex, Leases string
	// Shared holds the shared families (see WriteShared).
	Shared string
}

// DefaultTables are the table names used for the empty fields of
// Options.Tables.
var DefaultTables = Tables{State: "state", Owners: "owners", OwnerIndex: "owner_index", Leases: "leases", Shared: "shared"}

// Limits bounds what the store accepts; each is a size in bytes.
type Limits struct {
	MaxSessionIDBytes int
	MaxKeyBytes       int
	MaxValueBytes     int
}

// DefaultLimits are used for every zero field of Options.Limits.
var DefaultLimits = Limits{MaxSessionIDBytes: 128, MaxKeyBytes: 256, MaxValueBytes: 1 << 20}

// Store reads and writes sessions, ownership, leases and shared families in
// Cassandra.
// It is safe for concurrent use.
type Store struct {
	s *gocql.Session
	// lease is a session of its own (one connection per host) for the
	// node's lease renewals and checks: they never queue behind bulk flush
	// traffic on the main session's connections.
	lease  *gocql.Session
	opts   Options
	ttl    int // seconds: StateTTL (see ttlOf)
	stmts  statements
	logger *slog.Logger
	// hedge re-sends a latency-critical idempotent request (a lease renewal,
	// the reads of an adoption) to the next replica when the first has not
	// answered in time: a replica that died without closing its connections
	// would otherwise hold the request until the timeout, long enough to cost
	// a node its lease.
	hedge gocql.SpeculativeExecutionPolicy
	// policy is the driver's host selection policy, consulted to group writes
	// by replica (WriteSessions).
	policy gocql.HostSelectionPolicy
	// deletes counts the deletes written to each session since it was last
	// written whole (rebase.go).
	deletes deleteCounts
	// tornReads counts the reads of several pages that ReadState found
	// changed under it and read again.
	tornReads atomic.Uint64
}

// Open connects to Cassandra, creates the keyspace and tables when
// CreateSchema is set, and returns a ready Store.
func Open(ctx context.Context, o Options) (*Store, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if o.CreateSchema {
		if err := createSchema(ctx, o); err != nil {
			return nil, err
		}
	}
	cluster := o.cluster()
	cluster.Keyspace = o.Keyspace
	sess, err := cluster.CreateSession()
	if err != nil {
		return nil, wrap("connect", "", o.connectHint(err))
	}
	if err := checkSerialConsistency(ctx, sess, o); err != nil {
		sess.Close()
		return nil, err
	}
	lc := o.cluster()
	lc.Keyspace = o.Keyspace
	lc.NumConns = 1
	leaseSess, err := lc.CreateSession()
	if err != nil {
		sess.Close()
		return nil, wrap("connect", "", o.connectHint(err))
	}
	st := &Store{s: sess, lease: leaseSess, opts: o, ttl: int(o.StateTTL / time.Second), logger: o.Logger, policy: cluster.PoolConfig.HostSelectionPolicy,
		hedge: &gocql.SimpleSpeculativeExecution{NumAttempts: 1, TimeoutDelay: max(o.Timeout/20, 100*time.Millisecond)}}
	st.stmts = newStatements(o.Keyspace, o.Tables)
	return st, nil
}

// Close closes the Cassandra sessions.
func (st *Store) Close() {
	st.s.Close()
	st.lease.Close()
}

// Session is the underlying driver session, for tools and benchmarks.
func (st *Store) Session() *gocql.Session { return st.s }

// hedged is the speculative policy for latency-critical idempotent requests
// when the cluster has another host to try. With a single host the driver's
// extra attempt would find no host and could answer "no hosts available"
// before the real one returns, so a lone node gets no hedging.
func (st *Store) hedged() gocql.SpeculativeExecutionPolicy {
	if len(st.s.GetHosts()) > 1 {
		return st.hedge
	}
	return noHedge
}

var noHedge = &gocql.NonSpeculativeExecution{}

// Keyspace is the keyspace the store uses.
func (st *Store) Keyspace() string { return st.opts.Keyspace }

func (o Options) withDefaults() (Options, error) {
	var errs []error
	if len(o.Hosts) == 0 {
		o.Hosts = []string{"127.0.0.1"}
	}
	if o.Port == 0 {
		o.Port = 9042
	}
	o.Tables = o.Tables.withDefaults()
	if !ValidIdentifier(o.Keyspace) {
		errs = append(errs, fmt.Errorf("keyspace %q is not a CQL identifier: it must match %s", o.Keyspace, IdentifierPattern))
	}
	for _, t := range []string{o.Tables.State, o.Tables.Owners, o.Tables.OwnerIndex, o.Tables.Leases, o.Tables.Shared} {
		if !ValidIdentifier(t) {
			errs = append(errs, fmt.Errorf("table %q is not a CQL identifier: it must match %s", t, IdentifierPattern))
		}
	}
	if o.CreateSchema && strings.TrimSpace(o.Replication) == "" {
		o.Replication = "{'class': 'SimpleStrategy', 'replication_factor': 1}"
	}
	if o.Consistency == 0 {
		o.Consistency = gocql.LocalQuorum
	}
	if o.SerialConsistency == 0 {
		o.SerialConsistency = gocql.Serial
	}
	if o.SerialConsistencyVar == "" {
		o.SerialConsistencyVar = "SerialConsistency"
	}
	if err := o.checkSerialLevel(); err != nil {
		errs = append(errs, err)
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.NumConns == 0 {
		o.NumConns = 2
	}
	if o.StateTTL == 0 {
		o.StateTTL = 7 * 24 * time.Hour
	}
	if o.StateTTL < time.Second || o.StateTTL > 630720000*time.Second {
		errs = append(errs, fmt.Errorf("state TTL %s must be between 1s and 630720000s (20 years)", o.StateTTL))
	}
	if o.Limits.MaxSessionIDBytes == 0 {
		o.Limits.MaxSessionIDBytes = DefaultLimits.MaxSessionIDBytes
	}
	if o.Limits.MaxKeyBytes == 0 {
		o.Limits.MaxKeyBytes = DefaultLimits.MaxKeyBytes
	}
	if o.Limits.MaxValueBytes == 0 {
		o.Limits.MaxValueBytes = DefaultLimits.MaxValueBytes
	}
	if o.RebaseDeletes == 0 {
		o.RebaseDeletes = DefaultRebaseDeletes
	}
	if err := o.checkRebase(); err != nil {
		errs = append(errs, err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if len(errs) > 0 {
		return o, permanent(errors.Join(errs...))
	}
	return o, nil
}

// withDefaults gives each empty name of t its DefaultTables name.
func (t Tables) withDefaults() Tables {
	d := DefaultTables
	return Tables{
		State:      cmp.Or(t.State, d.State),
		Owners:     cmp.Or(t.Owners, d.Owners),
		OwnerIndex: cmp.Or(t.OwnerIndex, d.OwnerIndex),
		Leases:     cmp.Or(t.Leases, d.Leases),
		Shared:     cmp.Or(t.Shared, d.Shared),
	}
}

// cluster builds the driver configuration: token-aware routing (DC-aware when
// LocalDC is set), protocol v5, the configured consistency and timeouts, TLS
// and password authentication.
func (o Options) cluster() *gocql.ClusterConfig {
	c := gocql.NewCluster(o.Hosts...)
	c.Port = o.Port
	c.ProtoVersion = 5
	c.Consistency = o.Consistency
	c.SerialConsistency = o.SerialConsistency
	c.ConnectTimeout = o.ConnectTimeout
	c.Timeout = o.Timeout
	c.WriteTimeout = o.Timeout
	c.NumConns = o.NumConns
	c.DefaultIdempotence = false
	c.Logger = gocql.NewLogger(gocql.LogLevelNone)
	fallback := gocql.RoundRobinHostPolicy()
	if o.LocalDC != "" {
		fallback = gocql.DCAwareRoundRobinPolicy(o.LocalDC)
	}
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(fallback)
	c.RetryPolicy = &gocql.SimpleRetryPolicy{NumRetries: 1}
	if o.TLS != nil {
		c.SslOpts = &gocql.SslOptions{Config: o.TLS, EnableHostVerification: !o.TLS.InsecureSkipVerify}
	}
	if o.Username != "" {
		c.Authenticator = gocql.PasswordAuthenticator{Username: o.Username, Password: o.Password}
		if o.PasswordFunc != nil {
			c.Authenticator = rereadAuthenticator{username: o.Username, password: o.PasswordFunc}
		}
	}
	return c
}

// CheckSession reports a session ID outside the limits or, since it is CQL
// text, not valid UTF-8.
func (l Limits) CheckSession(session string) error {
	if n := len(session); n == 0 || n > l.MaxSessionIDBytes {
		return &LimitError{Field: "session ID", Limit: l.MaxSessionIDBytes, Got: n}
	}
	if !utf8.ValidString(session) {
		return &LimitError{Field: "session ID", Limit: l.MaxSessionIDBytes, Got: len(session), Reason: reasonUTF8}
	}
	return nil
}

// CheckItem reports a key or value outside the limits, or a key that is not
// valid UTF-8 (keys are CQL text; values are blobs of any bytes).
func (l Limits) CheckItem(key string, value []byte) error {
	if n := len(key); n == 0 || n > l.MaxKeyBytes {
		return &LimitError{Field: "key", Limit: l.MaxKeyBytes, Got: n}
	}
	if !utf8.ValidString(key) {
		return &LimitError{Field: "key", Limit: l.MaxKeyBytes, Got: len(key), Reason: reasonUTF8}
	}
	if n := len(value); n > l.MaxValueBytes {
		return &LimitError{Field: "value", Limit: l.MaxValueBytes, Got: n}
	}
	return nil
}

// reasonUTF8 is the LimitError.Reason of a session ID or key that Cassandra
// would refuse as text.
const reasonUTF8 = "must be valid UTF-8"
