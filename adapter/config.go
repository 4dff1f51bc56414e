package adapter

import (
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caarlos0/env/v11"
)

// envPrefix starts every environment variable the adapter reads.
const envPrefix = "HOLDOVER_"

// Replication strategies accepted in Config.ReplicationClass.
const (
	SimpleStrategy          = "SimpleStrategy"
	NetworkTopologyStrategy = "NetworkTopologyStrategy"
)

// maxCassandraTTL is the longest TTL Cassandra accepts (20 years).
const maxCassandraTTL = 630720000 * time.Second

// Config configures the adapter. It is one flat struct: every field is read
// from one environment variable by ConfigFromEnv, and its comment names that
// variable with its default, unit and allowed range. Start from
// DefaultConfig (the zero Config is not valid), change what you need, and
// call Validate; durations are written as Go durations ("250ms", "5s",
// "1h30m") and sizes as described on ByteSize.
type Config struct {
	// Hosts are the Cassandra contact points, each "host" or "host:port".
	// HOLDOVER_CASSANDRA_HOSTS, comma separated; default "127.0.0.1".
	// At least one; each non-empty and without whitespace.
	Hosts []string `env:"CASSANDRA_HOSTS"`

	// Port is the CQL native-protocol port for hosts given without one.
	// HOLDOVER_CASSANDRA_PORT; default 9042; range 1..65535.
	Port int `env:"CASSANDRA_PORT"`

	// LocalDC is the data center this node sits in. When set, requests use
	// token-aware routing that prefers replicas in it; when empty, all
	// hosts are used round-robin. HOLDOVER_LOCAL_DC; default "" (none).
	// With NetworkTopologyStrategy and a LOCAL_* consistency level it must
	// be one of the HOLDOVER_REPLICATION_DCS.
	LocalDC string `env:"LOCAL_DC"`

	// Keyspace is the keyspace of the adapter's tables. Cassandra folds
	// unquoted names to lower case. HOLDOVER_KEYSPACE; default "holdover";
	// a CQL identifier matching ^[A-Za-z][A-Za-z0-9_]{0,47}$ (see
	// ValidIdentifier).
	Keyspace string `env:"KEYSPACE"`

	// ReplicationClass is the keyspace's replication strategy, used only
	// when the adapter creates the keyspace. HOLDOVER_REPLICATION_CLASS;
	// default "SimpleStrategy"; one of SimpleStrategy, NetworkTopologyStrategy.
	ReplicationClass string `env:"REPLICATION_CLASS"`

	// ReplicationFactor is the number of replicas under SimpleStrategy.
	// HOLDOVER_REPLICATION_FACTOR; default 1; range 1..10.
	ReplicationFactor int `env:"REPLICATION_FACTOR"`

	// ReplicationDCs maps data-center name to replica count under
	// NetworkTopologyStrategy, where it is required; it must be empty under
	// SimpleStrategy. HOLDOVER_REPLICATION_DCS, as "dc1:3,dc2:3"; default
	// empty. Names match [A-Za-z0-9_.-]+; each count in 1..10.
	ReplicationDCs map[string]int `env:"REPLICATION_DCS"`

	// CreateSchema makes the adapter create its keyspace and tables at
	// startup if they are missing. Turn it off when operators manage DDL.
	// HOLDOVER_CREATE_SCHEMA; default true.
	CreateSchema bool `env:"CREATE_SCHEMA"`

	// Consistency is the consistency level of every read and write.
	// HOLDOVER_CONSISTENCY; default "LOCAL_QUORUM"; one of ONE, TWO, THREE,
	// QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE (upper case).
	Consistency string `env:"CONSISTENCY"`

	// SerialConsistency is the serial consistency level of the lightweight
	// transactions that claim sessions (LOCAL_SERIAL only while the keyspace
	// is in one data center). HOLDOVER_SERIAL_CONSISTENCY; default
	// "SERIAL"; one of SERIAL, LOCAL_SERIAL. LOCAL_SERIAL decides each data center
	// apart, so Open refuses it when the keyspace's replicas are in more than
	// one data center (two nodes could both adopt one session); with one data
	// center both levels ask the same replicas.
	SerialConsistency string `env:"SERIAL_CONSISTENCY"`

	// ConnectTimeout bounds establishing each connection to Cassandra.
	// HOLDOVER_CONNECT_TIMEOUT, a duration; default 5s; range 100ms..5m.
	ConnectTimeout time.Duration `env:"CONNECT_TIMEOUT"`

	// Timeout bounds each request to Cassandra.
	// HOLDOVER_TIMEOUT, a duration; default 5s; range 10ms..5m.
	Timeout time.Duration `env:"TIMEOUT"`

	// TLS turns on TLS to Cassandra even when no CA or client certificate
	// is given (the system roots then verify the server). TLS is also on
	// whenever TLSCAFile or TLSCertFile is set; see TLSEnabled.
	// HOLDOVER_TLS; default false.
	TLS bool `env:"TLS"`

	// TLSCAFile is a PEM file of CA certificates that verify the servers,
	// in place of the system roots. HOLDOVER_TLS_CA_FILE, a path; default
	// "" (none). When set it must be a readable file.
	TLSCAFile string `env:"TLS_CA_FILE"`

	// TLSCertFile is the PEM client certificate for mutual TLS.
	// HOLDOVER_TLS_CERT_FILE, a path; default "" (none). Set together with
	// TLSKeyFile; when set it must be a readable file.
	TLSCertFile string `env:"TLS_CERT_FILE"`

	// TLSKeyFile is the PEM private key of TLSCertFile.
	// HOLDOVER_TLS_KEY_FILE, a path; default "" (none). Set together with
	// TLSCertFile; when set it must be a readable file.
	TLSKeyFile string `env:"TLS_KEY_FILE"`

	// TLSServerName is the name the servers' certificates must carry, when
	// it differs from the host being dialled. HOLDOVER_TLS_SERVER_NAME;
	// default "" (the host). Only allowed when TLS is enabled.
	TLSServerName string `env:"TLS_SERVER_NAME"`

	// TLSInsecureSkipVerify disables verification of the servers'
	// certificates. For tests only. HOLDOVER_TLS_INSECURE_SKIP_VERIFY;
	// default false. Only allowed when TLS is enabled.
	TLSInsecureSkipVerify bool `env:"TLS_INSECURE_SKIP_VERIFY"`

	// Username authenticates to Cassandra (PasswordAuthenticator).
	// HOLDOVER_USERNAME; default "" (no authentication).
	Username string `env:"USERNAME"`

	// Password is the password of Username. It is secret: String, LogValue and every
	// error print "***" or nothing in its place, and encoding/json leaves it
	// out. HOLDOVER_PASSWORD; default ""; only allowed together with
	// HOLDOVER_USERNAME. Prefer PasswordFile: a variable's value can leak
	// through /proc/<pid>/environ, crash reports and child processes.
	Password string `env:"PASSWORD" secret:"true" json:"-"`

	// PasswordFile names a file holding the password, read again for every
	// new connection to Cassandra. Docker and Kubernetes deliver secrets so
	// (one trailing newline is ignored). As it is read again, a rotated
	// password reaches the connections opened after the file changed
	// without a restart (connections already open stay logged in). The file
	// must be a regular file of 1 to 4096 bytes that is neither readable nor
	// writable by every user (mode o-rwx, such as 0600, 0440 or 0640).
	// HOLDOVER_PASSWORD_FILE, a path; default "" (none). Only allowed
	// together with HOLDOVER_USERNAME, and not with HOLDOVER_PASSWORD.
	PasswordFile string `env:"PASSWORD_FILE"`

	// NodeID is this node's identity in ownership rows and leases, stable
	// across restarts and unique among live nodes.
	// HOLDOVER_NODE_ID; default the host name with characters outside the
	// allowed set replaced by '-' (or "node-<random>" if there is none);
	// 1..64 bytes of [A-Za-z0-9._:-].
	NodeID string `env:"NODE_ID"`

	// FlushDelay is the longest a committed change waits in the buffer
	// before its write starts, counted from the first unflushed change of
	// its session. It bounds what a crash can lose.
	// HOLDOVER_FLUSH_DELAY, a duration; default 100ms; range 1ms..1h.
	FlushDelay time.Duration `env:"FLUSH_DELAY"`

	// FlushConcurrency is the most session flushes in flight at once; each is
	// one request to Cassandra, and enough in flight keep it busy.
	// HOLDOVER_FLUSH_CONCURRENCY; default 128; range 1..1024.
	FlushConcurrency int `env:"FLUSH_CONCURRENCY"`

	// MaxConcurrentCreates bounds the ownership records of brand-new sessions
	// (a lightweight transaction each, started when their first changes are
	// accepted) in flight at once. While that many are in flight and the creations queued behind
	// them would, at the recent creation latency, take more than half of
	// what HOLDOVER_MAX_WINDOW leaves after the flush delay (for a session of
	// a family, what its family's window leaves after its delay), Commit and
	// End refuse a session this node does not own yet with ErrOverloaded: a
	// burst of new sessions is turned away (retryable) before it holds up the
	// flushes of the sessions already running, and those keep being accepted.
	// HOLDOVER_MAX_CONCURRENT_CREATES; default 0, meaning half of
	// HOLDOVER_FLUSH_CONCURRENCY (at least 1); range 0, or
	// 1..HOLDOVER_FLUSH_CONCURRENCY.
	MaxConcurrentCreates int `env:"MAX_CONCURRENT_CREATES"`

	// FlushGroupMax is the most sessions one request to Cassandra carries.
	// When several sessions are ready to flush at once, small snapshots whose
	// partitions have the same first replica share
	// one unlogged batch: each session is still one partition update, applied
	// atomically and in isolation, and Cassandra handles one request instead of
	// one per session. 1 turns grouping off. Cassandra warns about unlogged
	// batches over 10 partitions (unlogged_batch_across_partitions_warn_threshold).
	// HOLDOVER_FLUSH_GROUP_MAX; default 8; range 1..64.
	FlushGroupMax int `env:"FLUSH_GROUP_MAX"`

	// FlushGroupBytes bounds a group's keys and values (with a per-item
	// overhead): a larger snapshot is written alone. Cassandra warns about
	// multi-partition batches over batch_size_warn_threshold (5 KiB) and
	// refuses them over batch_size_fail_threshold (50 KiB; a refused group is
	// then written session by session).
	// HOLDOVER_FLUSH_GROUP_BYTES; default 4KiB; range 256B..48KiB.
	FlushGroupBytes ByteSize `env:"FLUSH_GROUP_BYTES"`

	// MaxPendingBytes caps the bytes (keys plus values) waiting in the
	// buffer; a commit that would exceed it fails with ErrBufferFull instead.
	// HOLDOVER_MAX_PENDING_BYTES, a byte size; default 256MiB;
	// range 1MiB..64GiB.
	MaxPendingBytes ByteSize `env:"MAX_PENDING_BYTES"`

	// MaxSessionItems is the number of dirty items at which a session is
	// flushed early, without waiting for FlushDelay.
	// HOLDOVER_MAX_SESSION_ITEMS, items; default 1024; range 1..1000000.
	MaxSessionItems int `env:"MAX_SESSION_ITEMS"`

	// MaxBatchBytes caps one Cassandra batch; a session whose dirty items
	// exceed it is written in several batches, and so not atomically.
	// HOLDOVER_MAX_BATCH_BYTES, a byte size; default 4MiB; range 64KiB..15MiB.
	MaxBatchBytes ByteSize `env:"MAX_BATCH_BYTES"`

	// MaxValueBytes is the largest item value Commit accepts.
	// HOLDOVER_MAX_VALUE_BYTES, a byte size; default 1MiB; range 1B..15MiB
	// and at most HOLDOVER_MAX_BATCH_BYTES.
	MaxValueBytes ByteSize `env:"MAX_VALUE_BYTES"`

	// MaxKeyBytes is the longest item key Commit accepts.
	// HOLDOVER_MAX_KEY_BYTES, bytes; default 256; range 1..4096.
	MaxKeyBytes int `env:"MAX_KEY_BYTES"`

	// MaxSessionIDBytes is the longest session ID the adapter accepts.
	// HOLDOVER_MAX_SESSION_ID_BYTES, bytes; default 128; range 1..1024.
	MaxSessionIDBytes int `env:"MAX_SESSION_ID_BYTES"`

	// MaxWindow bounds the durability window: while the oldest unwritten
	// change plus the recent flush latency exceeds it (flushes cannot keep up:
	// a backlog, Cassandra slow or down), Commit and End refuse with
	// ErrOverloaded instead of acknowledging changes that would likely stay
	// unwritten longer; they accept again once that falls under
	// HOLDOVER_FLUSH_DELAY + 3/4 of (HOLDOVER_MAX_WINDOW − HOLDOVER_FLUSH_DELAY).
	// 0 means 10 × HOLDOVER_FLUSH_DELAY, at least 1s (see MaxWindowBound).
	// HOLDOVER_MAX_WINDOW, a duration; default 0; range 0, or above
	// HOLDOVER_FLUSH_DELAY, at most 24h.
	MaxWindow time.Duration `env:"MAX_WINDOW"`

	// RetryMin is the first backoff after a transient Cassandra error; it
	// doubles (with jitter) on each further failure up to RetryMax.
	// HOLDOVER_RETRY_MIN, a duration; default 50ms; range 1ms..1m.
	RetryMin time.Duration `env:"RETRY_MIN"`

	// RetryMax caps the backoff between retries.
	// HOLDOVER_RETRY_MAX, a duration; default 5s; range HOLDOVER_RETRY_MIN..10m.
	RetryMax time.Duration `env:"RETRY_MAX"`

	// LeaseTTL is how long a node's liveness lease lasts without renewal.
	// Peers may adopt a silent node's sessions LeaseTTL after its last
	// renewal reached Cassandra, and no later: it bounds failover time. A
	// node that could not renew within LeaseTTL - MaxClockSkew stops
	// flushing (self-fencing).
	// HOLDOVER_LEASE_TTL, a duration; default 10s; range 1s..10m.
	LeaseTTL time.Duration `env:"LEASE_TTL"`

	// LeaseRenew is the period of lease renewals. 0 means LeaseTTL/3 (see
	// LeaseRenewEvery). HOLDOVER_LEASE_RENEW, a duration; default 0;
	// range 0..HOLDOVER_LEASE_TTL/2.
	LeaseRenew time.Duration `env:"LEASE_RENEW"`

	// MaxClockSkew bounds how far apart the clocks of the nodes and of
	// Cassandra may be. A node stops acting as owner HOLDOVER_LEASE_TTL -
	// HOLDOVER_MAX_CLOCK_SKEW after its last renewal started (on its
	// monotonic clock); peers see its lease live until HOLDOVER_LEASE_TTL
	// after Cassandra stamped that renewal (on theirs), so no peer adopts
	// while the owner still acts, and none waits longer than the TTL. The
	// skew is taken from the owner's side: it shortens how long a renewal may
	// lag before the node fences, not the failover. HOLDOVER_MAX_CLOCK_SKEW,
	// a duration; default 100ms (clocks kept by NTP); range
	// 1ms..HOLDOVER_LEASE_TTL/4.
	MaxClockSkew time.Duration `env:"MAX_CLOCK_SKEW"`

	// StateTTL is the Cassandra TTL of persisted state: state of sessions
	// that no node adopts expires after it, while resident sessions are
	// refreshed before it runs out. HOLDOVER_STATE_TTL, a duration in whole
	// seconds; default 168h (7 days); range 1s..175200h (20 years,
	// Cassandra's largest TTL).
	StateTTL time.Duration `env:"STATE_TTL"`

	// RebaseDeletes is how many item deletes a session's partition takes
	// before the node writes the session whole, above a partition tombstone
	// that shadows their row tombstones: Cassandra fails every read of a
	// partition holding more tombstones than its tombstone_failure_threshold
	// (100,000 by default), and such a session could not be adopted. Keep it
	// under a third of that threshold; a small value rewrites sessions often.
	// HOLDOVER_REBASE_DELETES, deletes; default 10000; range 1..1000000.
	RebaseDeletes int `env:"REBASE_DELETES"`

	// EndedTTL is how long the ownership row of an ended session is kept,
	// marked ended, so that a session started afresh with the same ID ranks
	// above the End's tombstone in the state table. Keep it at least the
	// state table's gc_grace_seconds (how long Cassandra keeps that
	// tombstone). HOLDOVER_ENDED_TTL, a duration in whole seconds; default
	// 240h (10 days, Cassandra's default gc_grace_seconds); range
	// 1s..175200h (20 years, Cassandra's largest TTL).
	EndedTTL time.Duration `env:"ENDED_TTL"`

	// NegativeCacheTTL is how long a session ID confirmed absent is
	// answered ErrNotFound without a query; 0 disables the cache.
	// HOLDOVER_NEGATIVE_CACHE_TTL, a duration; default 2s; range 0..1h.
	NegativeCacheTTL time.Duration `env:"NEGATIVE_CACHE_TTL"`

	// NegativeCacheSize is the most absent session IDs remembered; 0
	// disables the cache. HOLDOVER_NEGATIVE_CACHE_SIZE, entries; default
	// 100000; range 0..100000000.
	NegativeCacheSize int `env:"NEGATIVE_CACHE_SIZE"`

	// AdoptRate limits bulk takeover of a dead node's sessions.
	// HOLDOVER_ADOPT_RATE; default 500; range more than 0, at most 1000000
	// sessions per second.
	AdoptRate float64 `env:"ADOPT_RATE"`

	// Families gives classes of sessions their own flush delay, state TTL,
	// largest session and window bound, or makes them shared by every node; a session
	// belongs to the family its ID starts with, up to the first ':' (see
	// Family). HOLDOVER_FAMILIES, as
	// "reg:delay=5s,ttl=1h;call:delay=50ms;settings:shared"; default ""
	// (every session follows the settings above); at most 32 families,
	// each checked as Family says.
	Families Families `env:"FAMILIES"`
}

// defaultNodeID is the host name made into a valid node ID, or, when the
// host name is unavailable, "node-" and a random suffix chosen once per
// process (so not stable across restarts: set HOLDOVER_NODE_ID then).
var defaultNodeID = sync.OnceValue(func() string {
	if h, err := os.Hostname(); err == nil {
		if id := sanitizeNodeID(h); id != "" {
			return id
		}
	}
	return "node-" + strings.ToLower(rand.Text())
})

// sanitizeNodeID replaces the bytes a node ID may not hold with '-' and
// truncates the result to maxNodeIDBytes.
func sanitizeNodeID(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !isNodeIDByte(c) {
			b[i] = '-'
		}
	}
	if len(b) > maxNodeIDBytes {
		b = b[:maxNodeIDBytes]
	}
	return string(b)
}

func isNodeIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == ':' || c == '-'
}

// ConfigFromEnv returns DefaultConfig overlaid with the HOLDOVER_ environment
// variables, validated. An empty variable counts as unset. On failure it
// returns the zero Config and a *ConfigError listing every problem found,
// both values that do not parse and values out of range, so that one run
// shows all there is to fix.
func ConfigFromEnv() (Config, error) {
	return configFromEnviron(env.ToMap(os.Environ()))
}

// configFromEnviron is ConfigFromEnv reading environ instead of the process
// environment.
func configFromEnviron(environ map[string]string) (Config, error) {
	c := DefaultConfig()
	var probs []FieldProblem
	err := env.ParseWithOptions(&c, env.Options{Prefix: envPrefix, Environment: environ})
	if err != nil {
		probs = parseProblems(err, environ)
	}
	// A field that failed to parse kept its (valid) default, so Validate
	// has nothing to say about it; drop any remark all the same.
	parsed := len(probs)
	parseFailed := func(v string) bool {
		return slices.ContainsFunc(probs[:parsed], func(p FieldProblem) bool { return p.Var == v })
	}
	// The map keeps the last count of a data center listed twice: a typo
	// that would replicate to fewer data centers than written.
	if dc := repeatedDC(environ[envPrefix+"REPLICATION_DCS"]); dc != "" && !parseFailed(envPrefix+"REPLICATION_DCS") {
		probs = append(probs, FieldProblem{Var: envPrefix + "REPLICATION_DCS", Problem: fmt.Sprintf("lists data center %q twice", dc)})
	}
	var verr *ConfigError
	if errors.As(c.Validate(), &verr) {
		for _, p := range verr.Problems {
			if !parseFailed(p.Var) {
				probs = append(probs, p)
			}
		}
	}
	if len(probs) > 0 {
		sortProblems(probs)
		return Config{}, &ConfigError{Problems: probs}
	}
	return c, nil
}

// repeatedDC returns the first data center name listed twice in v, a
// HOLDOVER_REPLICATION_DCS value (name:count pairs separated by commas).
func repeatedDC(v string) string {
	seen := map[string]bool{}
	for _, pair := range strings.Split(v, ",") {
		name, _, _ := strings.Cut(pair, ":")
		if seen[name] {
			return name
		}
		seen[name] = true
	}
	return ""
}

// parseProblems turns the errors of env.ParseWithOptions into problems
// naming the variable and the expected syntax, never a secret's value.
func parseProblems(err error, environ map[string]string) []FieldProblem {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return []FieldProblem{{Var: envPrefix + "*", Problem: err.Error()}}
	}
	var probs []FieldProblem
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			probs = append(probs, FieldProblem{Var: envPrefix + "*", Problem: e.Error()})
			continue
		}
		i := slices.IndexFunc(configFields(), func(f *knob) bool { return f.name == pe.Name })
		if i < 0 {
			probs = append(probs, FieldProblem{Var: envPrefix + "*", Problem: e.Error()})
			continue
		}
		f := configFields()[i]
		if pe.Type == reflect.TypeFor[Families]() {
			// Families words each bad entry itself, naming the family.
			for _, line := range strings.Split(pe.Err.Error(), "\n") {
				probs = append(probs, FieldProblem{Var: f.envVar, Problem: line})
			}
			continue
		}
		// The range is worded with the other knobs at their defaults.
		problem := "must be " + syntaxOf(pe.Type)
		if r := f.allowed(DefaultConfig()); r != "" {
			problem = "must be " + r + ", written as " + syntaxOf(pe.Type)
		}
		if !f.secret {
			problem += fmt.Sprintf(", got %q", environ[f.envVar])
		}
		probs = append(probs, FieldProblem{Var: f.envVar, Problem: problem})
	}
	return probs
}

// syntaxOf describes how a value of type t is written.
func syntaxOf(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[time.Duration]():
		return `a duration such as "250ms", "5s" or "1h30m"`
	case reflect.TypeFor[ByteSize]():
		return `a byte count such as "1048576" or a whole number with unit B, KiB, MiB, GiB or TiB such as "4MiB"`
	case reflect.TypeFor[Families]():
		return `entries such as "reg:delay=5s,ttl=1h;settings:shared"`
	case reflect.TypeFor[map[string]int]():
		return `comma-separated name:count pairs such as "dc1:3,dc2:3"`
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	}
	return "a valid " + t.String()
}

// sortProblems orders problems as the fields are declared in Config.
func sortProblems(probs []FieldProblem) {
	order := func(v string) int {
		i := slices.IndexFunc(configFields(), func(f *knob) bool { return f.envVar == v })
		if i < 0 {
			return math.MaxInt
		}
		return i
	}
	slices.SortStableFunc(probs, func(a, b FieldProblem) int { return cmp.Compare(order(a.Var), order(b.Var)) })
}

// TLSEnabled reports whether connections to Cassandra use TLS: when TLS is
// set or a CA file or client certificate is given.
func (c Config) TLSEnabled() bool {
	return c.TLS || c.TLSCAFile != "" || c.TLSCertFile != ""
}

// ConcurrentCreates is the effective MaxConcurrentCreates: half of
// FlushConcurrency (at least 1) when it is 0.
func (c Config) ConcurrentCreates() int {
	if c.MaxConcurrentCreates > 0 {
		return c.MaxConcurrentCreates
	}
	return max(1, c.FlushConcurrency/2)
}

// MaxWindowBound is the effective bound on the durability window: MaxWindow,
// or 10 × FlushDelay (at least 1s) when MaxWindow is 0.
func (c Config) MaxWindowBound() time.Duration {
	if c.MaxWindow > 0 {
		return c.MaxWindow
	}
	return max(10*c.FlushDelay, time.Second)
}

// LeaseRenewEvery is the effective lease renewal period: LeaseRenew, or
// LeaseTTL/3 when LeaseRenew is 0.
func (c Config) LeaseRenewEvery() time.Duration {
	if c.LeaseRenew > 0 {
		return c.LeaseRenew
	}
	return c.LeaseTTL / 3
}

// ReplicationCQL returns the replication map for CREATE KEYSPACE, such as
// {'class': 'SimpleStrategy', 'replication_factor': 1} or
// {'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3} (data centers in
// name order). It is built only from replication fields that pass Validate's
// checks; if any does not, it returns "" rather than unchecked text.
func (c Config) ReplicationCQL() string {
	var k checker
	c.checkReplication(&k)
	if len(k.probs) > 0 {
		return ""
	}
	if c.ReplicationClass == SimpleStrategy {
		return fmt.Sprintf("{'class': '%s', 'replication_factor': %d}", SimpleStrategy, c.ReplicationFactor)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "{'class': '%s'", NetworkTopologyStrategy)
	for _, dc := range slices.Sorted(maps.Keys(c.ReplicationDCs)) {
		// dc matched [A-Za-z0-9_.-]+; doubling quotes is belt and braces.
		fmt.Fprintf(&b, ", '%s': %d", strings.ReplaceAll(dc, "'", "''"), c.ReplicationDCs[dc])
	}
	b.WriteString("}")
	return b.String()
}
