package adapter

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/holdover/holdover/internal/store"
)

// FieldProblem is one invalid setting.
type FieldProblem struct {
	// Var is the environment variable, e.g. "HOLDOVER_FLUSH_DELAY".
	Var string
	// Problem says what is wrong and what is allowed, e.g.
	// "must be between 1ms and 1h, got 0s". It never holds a secret.
	Problem string
}

func (p FieldProblem) String() string { return p.Var + ": " + p.Problem }

// ConfigError reports every problem of a configuration at once.
type ConfigError struct {
	Problems []FieldProblem
}

// Error lists the problems one per line.
func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("invalid holdover configuration:")
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// checker collects problems; its methods each check one rule.
type checker struct{ probs []FieldProblem }

func (k *checker) add(v, format string, args ...any) {
	k.probs = append(k.probs, FieldProblem{Var: v, Problem: fmt.Sprintf(format, args...)})
}

func (k *checker) intIn(v string, n, lo, hi int) {
	if n < lo || n > hi {
		k.add(v, "must be between %d and %d, got %d", lo, hi, n)
	}
}

func (k *checker) durationIn(v string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		k.add(v, "must be between %s and %s, got %s", fmtDuration(lo), fmtDuration(hi), fmtDuration(d))
	}
}

// cassandraTTL checks a TTL Cassandra will store: whole seconds, 1s..20 years.
func (k *checker) cassandraTTL(v string, d time.Duration) {
	switch {
	case d < time.Second || d > maxCassandraTTL:
		k.add(v, "must be between 1s and %s (20 years, Cassandra's largest TTL), got %s", fmtDuration(maxCassandraTTL), fmtDuration(d))
	case d%time.Second != 0:
		k.add(v, "must be a whole number of seconds (Cassandra TTLs are in seconds), got %s", fmtDuration(d))
	}
}

func (k *checker) sizeIn(v string, b, lo, hi ByteSize) {
	if b < lo || b > hi {
		k.add(v, "must be between %s and %s, got %s", lo, hi, b)
	}
}

func (k *checker) oneOf(v, s string, allowed ...string) {
	if !slices.Contains(allowed, s) {
		k.add(v, "must be one of %s, got %q", strings.Join(allowed, ", "), s)
	}
}

// readable checks that path names a regular file this process can open. It
// opens without blocking and refuses devices, so that a FIFO is not waited on
// and /dev/zero is not read without end when the file is loaded.
func (k *checker) readable(v, path string) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err == nil {
		var st fs.FileInfo
		st, err = f.Stat()
		f.Close()
		if err == nil && !st.Mode().IsRegular() {
			err = errors.New("is " + fileKind(st.Mode()))
		}
	}
	if err != nil {
		k.unreadable(v, path, err)
	}
}

// unreadable reports that path, the value of v, could not be read.
func (k *checker) unreadable(v, path string, err error) {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is printed once, quoted
	}
	k.add(v, "must name a readable file, %q: %v", path, err)
}

var dcNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// identifierPattern states store.ValidIdentifier's rule in error messages.
// The rule itself lives in the store, which checks names again before
// putting them into CQL.
const identifierPattern = store.IdentifierPattern

// ValidIdentifier reports whether s can be used unquoted as a CQL keyspace
// or table name: it matches ^[A-Za-z][A-Za-z0-9_]{0,47}$. Such a name can
// carry no quotes, spaces or semicolons into a statement. It is the rule
// the store enforces (store.ValidIdentifier).
func ValidIdentifier(s string) bool { return store.ValidIdentifier(s) }

// The consistency levels HOLDOVER_CONSISTENCY and
// HOLDOVER_SERIAL_CONSISTENCY accept, spelt as CQL and gocql spell them.
var (
	consistencyLevels       = []string{"ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "LOCAL_ONE"}
	serialConsistencyLevels = []string{"SERIAL", "LOCAL_SERIAL"}
)

// Validate checks every field and returns a *ConfigError listing all the
// problems found, or nil. Each problem names the environment variable and
// the allowed range. Validate checks that TLS files can be read, so its
// result may change with the file system.
func (c Config) Validate() error {
	var k checker

	if len(c.Hosts) == 0 {
		k.add("HOLDOVER_CASSANDRA_HOSTS", "must list at least one host")
	}
	for i, h := range c.Hosts {
		switch {
		case h == "":
			k.add("HOLDOVER_CASSANDRA_HOSTS", "host %d of %d is empty (a stray comma?)", i+1, len(c.Hosts))
		case strings.ContainsFunc(h, unicode.IsSpace):
			k.add("HOLDOVER_CASSANDRA_HOSTS", "host %q must not contain whitespace", h)
		}
	}
	k.intIn("HOLDOVER_CASSANDRA_PORT", c.Port, 1, 65535)

	if !ValidIdentifier(c.Keyspace) {
		k.add("HOLDOVER_KEYSPACE", "must match %s (a CQL identifier of at most 48 characters), got %q", identifierPattern, c.Keyspace)
	}
	c.checkReplication(&k)

	k.oneOf("HOLDOVER_CONSISTENCY", c.Consistency, consistencyLevels...)
	k.oneOf("HOLDOVER_SERIAL_CONSISTENCY", c.SerialConsistency, serialConsistencyLevels...)
	if c.ReplicationClass == NetworkTopologyStrategy && len(c.ReplicationDCs) > 0 && c.LocalDC != "" &&
		(strings.HasPrefix(c.Consistency, "LOCAL_") || strings.HasPrefix(c.SerialConsistency, "LOCAL_")) {
		if _, ok := c.ReplicationDCs[c.LocalDC]; !ok {
			k.add("HOLDOVER_LOCAL_DC", "must be one of the data centers in HOLDOVER_REPLICATION_DCS (%s) for LOCAL_* consistency levels, got %q",
				strings.Join(slices.Sorted(maps.Keys(c.ReplicationDCs)), ", "), c.LocalDC)
		}
	}

	k.durationIn("HOLDOVER_CONNECT_TIMEOUT", c.ConnectTimeout, 100*time.Millisecond, 5*time.Minute)
	k.durationIn("HOLDOVER_TIMEOUT", c.Timeout, 10*time.Millisecond, 5*time.Minute)

	c.checkTLS(&k)
	if c.Password != "" && c.Username == "" {
		k.add("HOLDOVER_PASSWORD", "is set but HOLDOVER_USERNAME is empty; set both or neither")
	}
	c.checkSecrets(&k)

	if !validNodeID(c.NodeID) {
		k.add("HOLDOVER_NODE_ID", "must be 1 to 64 bytes of [A-Za-z0-9._:-], got %q", c.NodeID)
	}

	k.durationIn("HOLDOVER_FLUSH_DELAY", c.FlushDelay, time.Millisecond, time.Hour)
	k.intIn("HOLDOVER_FLUSH_CONCURRENCY", c.FlushConcurrency, 1, 1024)
	if c.MaxConcurrentCreates < 0 || (c.FlushConcurrency >= 1 && c.MaxConcurrentCreates > c.FlushConcurrency) {
		k.add("HOLDOVER_MAX_CONCURRENT_CREATES", "must be 0 (meaning half of HOLDOVER_FLUSH_CONCURRENCY) or between 1 and HOLDOVER_FLUSH_CONCURRENCY (%d), got %d", c.FlushConcurrency, c.MaxConcurrentCreates)
	}
	k.intIn("HOLDOVER_FLUSH_GROUP_MAX", c.FlushGroupMax, 1, 64)
	k.sizeIn("HOLDOVER_FLUSH_GROUP_BYTES", c.FlushGroupBytes, 256, 48*KiB)
	k.sizeIn("HOLDOVER_MAX_PENDING_BYTES", c.MaxPendingBytes, MiB, 64*GiB)
	k.intIn("HOLDOVER_MAX_SESSION_ITEMS", c.MaxSessionItems, 1, 1000000)
	k.sizeIn("HOLDOVER_MAX_BATCH_BYTES", c.MaxBatchBytes, 64*KiB, 15*MiB)
	k.sizeIn("HOLDOVER_MAX_VALUE_BYTES", c.MaxValueBytes, 1, 15*MiB)
	if c.MaxValueBytes > c.MaxBatchBytes {
		k.add("HOLDOVER_MAX_VALUE_BYTES", "must be at most HOLDOVER_MAX_BATCH_BYTES (%s), got %s", c.MaxBatchBytes, c.MaxValueBytes)
	}
	k.intIn("HOLDOVER_MAX_KEY_BYTES", c.MaxKeyBytes, 1, 4096)
	k.intIn("HOLDOVER_MAX_SESSION_ID_BYTES", c.MaxSessionIDBytes, 1, 1024)

	// Compared with the flush delay only when that is valid: one problem each.
	delayOK := c.FlushDelay >= time.Millisecond && c.FlushDelay <= time.Hour
	if c.MaxWindow != 0 && (c.MaxWindow < 0 || (delayOK && c.MaxWindow <= c.FlushDelay) || c.MaxWindow > 24*time.Hour) {
		k.add("HOLDOVER_MAX_WINDOW", "must be 0 (meaning 10 × HOLDOVER_FLUSH_DELAY, at least 1s) or above HOLDOVER_FLUSH_DELAY (%s) and at most 24h, got %s", fmtDuration(c.FlushDelay), fmtDuration(c.MaxWindow))
	}
	k.durationIn("HOLDOVER_RETRY_MIN", c.RetryMin, time.Millisecond, time.Minute)
	if c.RetryMax < c.RetryMin || c.RetryMax > 10*time.Minute {
		k.add("HOLDOVER_RETRY_MAX", "must be between HOLDOVER_RETRY_MIN (%s) and 10m, got %s", fmtDuration(c.RetryMin), fmtDuration(c.RetryMax))
	}

	k.durationIn("HOLDOVER_LEASE_TTL", c.LeaseTTL, time.Second, 10*time.Minute)
	if c.LeaseRenew < 0 || c.LeaseRenew > c.LeaseTTL/2 {
		k.add("HOLDOVER_LEASE_RENEW", "must be 0 (meaning HOLDOVER_LEASE_TTL/3) or more than 0 and at most HOLDOVER_LEASE_TTL/2 (%s), got %s",
			fmtDuration(c.LeaseTTL/2), fmtDuration(c.LeaseRenew))
	}

	k.durationIn("HOLDOVER_MAX_CLOCK_SKEW", c.MaxClockSkew, time.Millisecond, max(c.LeaseTTL, time.Millisecond))
	k.cassandraTTL("HOLDOVER_STATE_TTL", c.StateTTL)
	k.cassandraTTL("HOLDOVER_ENDED_TTL", c.EndedTTL)
	k.durationIn("HOLDOVER_NEGATIVE_CACHE_TTL", c.NegativeCacheTTL, 0, time.Hour)
	k.intIn("HOLDOVER_NEGATIVE_CACHE_SIZE", c.NegativeCacheSize, 0, 100000000)
	if !(c.AdoptRate > 0 && c.AdoptRate <= 1e6) { // also rejects NaN
		k.add("HOLDOVER_ADOPT_RATE", "must be more than 0 and at most 1000000 sessions per second, got %v", c.AdoptRate)
	}

	if len(k.probs) > 0 {
		return &ConfigError{Problems: k.probs}
	}
	return nil
}

// checkReplication checks the fields ReplicationCQL is built from.
func (c Config) checkReplication(k *checker) {
	k.oneOf("HOLDOVER_REPLICATION_CLASS", c.ReplicationClass, SimpleStrategy, NetworkTopologyStrategy)
	if c.ReplicationClass != NetworkTopologyStrategy {
		k.intIn("HOLDOVER_REPLICATION_FACTOR", c.ReplicationFactor, 1, 10)
	}
	if c.ReplicationClass == SimpleStrategy && len(c.ReplicationDCs) > 0 {
		k.add("HOLDOVER_REPLICATION_DCS", "must be empty unless HOLDOVER_REPLICATION_CLASS is %s", NetworkTopologyStrategy)
	}
	if c.ReplicationClass != NetworkTopologyStrategy {
		return
	}
	if len(c.ReplicationDCs) == 0 {
		k.add("HOLDOVER_REPLICATION_DCS", `is required with %s, as name:count pairs such as "dc1:3,dc2:3"`, NetworkTopologyStrategy)
	}
	for _, dc := range slices.Sorted(maps.Keys(c.ReplicationDCs)) {
		if !dcNameRE.MatchString(dc) {
			k.add("HOLDOVER_REPLICATION_DCS", "data center names must match [A-Za-z0-9_.-]+, got %q", dc)
		}
		if n := c.ReplicationDCs[dc]; n < 1 || n > 10 {
			k.add("HOLDOVER_REPLICATION_DCS", "replica count of %q must be between 1 and 10, got %d", dc, n)
		}
	}
}

// checkTLS checks the TLS fields.
func (c Config) checkTLS(k *checker) {
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		if c.TLSCertFile == "" {
			k.add("HOLDOVER_TLS_CERT_FILE", "must be set when HOLDOVER_TLS_KEY_FILE is set")
		} else {
			k.add("HOLDOVER_TLS_KEY_FILE", "must be set when HOLDOVER_TLS_CERT_FILE is set")
		}
	}
	for _, f := range []struct{ v, path string }{
		{"HOLDOVER_TLS_CA_FILE", c.TLSCAFile},
		{"HOLDOVER_TLS_CERT_FILE", c.TLSCertFile},
		{"HOLDOVER_TLS_KEY_FILE", c.TLSKeyFile},
	} {
		if f.path != "" {
			k.readable(f.v, f.path)
		}
	}
	if !c.TLSEnabled() {
		const hint = "has no effect unless TLS is enabled (HOLDOVER_TLS=true, HOLDOVER_TLS_CA_FILE or HOLDOVER_TLS_CERT_FILE)"
		if c.TLSServerName != "" {
			k.add("HOLDOVER_TLS_SERVER_NAME", hint)
		}
		if c.TLSInsecureSkipVerify {
			k.add("HOLDOVER_TLS_INSECURE_SKIP_VERIFY", hint)
		}
	}
}

// validNodeID reports whether s is 1 to 64 bytes of [A-Za-z0-9._:-].
func validNodeID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := range len(s) {
		if !isNodeIDByte(s[i]) {
			return false
		}
	}
	return true
}
