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
// problems found, in field order, or nil. Each problem names the environment
// variable and the allowed range. Validate checks that TLS files can be read,
// so its result may change with the file system.
func (c Config) Validate() error {
	var k checker
	for _, f := range configFields() {
		k.knob(c, f)
	}
	if len(k.probs) > 0 {
		return &ConfigError{Problems: k.probs}
	}
	return nil
}

// The checks below are those of the knobs table that bounds cannot state;
// each reports under v, its knob's variable.

func (c Config) checkHosts(k *checker, v string) {
	if len(c.Hosts) == 0 {
		k.add(v, "must list at least one host")
	}
	for i, h := range c.Hosts {
		switch {
		case h == "":
			k.add(v, "host %d of %d is empty (a stray comma?)", i+1, len(c.Hosts))
		case strings.ContainsFunc(h, unicode.IsSpace):
			k.add(v, "host %q must not contain whitespace", h)
		}
	}
}

func (c Config) checkLocalDC(k *checker, v string) {
	if c.ReplicationClass == NetworkTopologyStrategy && len(c.ReplicationDCs) > 0 && c.LocalDC != "" &&
		(strings.HasPrefix(c.Consistency, "LOCAL_") || strings.HasPrefix(c.SerialConsistency, "LOCAL_")) {
		if _, ok := c.ReplicationDCs[c.LocalDC]; !ok {
			k.add(v, "must be one of the data centers in HOLDOVER_REPLICATION_DCS (%s) for LOCAL_* consistency levels, got %q",
				strings.Join(slices.Sorted(maps.Keys(c.ReplicationDCs)), ", "), c.LocalDC)
		}
	}
}

func (c Config) checkKeyspace(k *checker, v string) {
	if !ValidIdentifier(c.Keyspace) {
		k.add(v, "must match %s (a CQL identifier of at most 48 characters), got %q", identifierPattern, c.Keyspace)
	}
}

func (c Config) checkReplicationDCs(k *checker, v string) {
	if c.ReplicationClass == SimpleStrategy && len(c.ReplicationDCs) > 0 {
		k.add(v, "must be empty unless HOLDOVER_REPLICATION_CLASS is %s", NetworkTopologyStrategy)
	}
	if c.ReplicationClass != NetworkTopologyStrategy {
		return
	}
	if len(c.ReplicationDCs) == 0 {
		k.add(v, `is required with %s, as name:count pairs such as "dc1:3,dc2:3"`, NetworkTopologyStrategy)
	}
	for _, dc := range slices.Sorted(maps.Keys(c.ReplicationDCs)) {
		if !dcNameRE.MatchString(dc) {
			k.add(v, "data center names must match [A-Za-z0-9_.-]+, got %q", dc)
		}
		if n := c.ReplicationDCs[dc]; n < 1 || n > maxReplicas {
			k.add(v, "replica count of %q must be between 1 and %d, got %d", dc, maxReplicas, n)
		}
	}
}

// checkReplication checks the fields ReplicationCQL is built from.
func (c Config) checkReplication(k *checker) {
	for _, name := range []string{"ReplicationClass", "ReplicationFactor", "ReplicationDCs"} {
		k.knob(c, knobNamed(name))
	}
}

func (c Config) checkTLSCAFile(k *checker, v string) {
	if c.TLSCAFile != "" {
		k.readable(v, c.TLSCAFile)
	}
}

func (c Config) checkTLSCertFile(k *checker, v string) {
	if c.TLSCertFile == "" && c.TLSKeyFile != "" {
		k.add(v, "must be set when HOLDOVER_TLS_KEY_FILE is set")
	}
	if c.TLSCertFile != "" {
		k.readable(v, c.TLSCertFile)
	}
}

func (c Config) checkTLSKeyFile(k *checker, v string) {
	if c.TLSKeyFile == "" && c.TLSCertFile != "" {
		k.add(v, "must be set when HOLDOVER_TLS_CERT_FILE is set")
	}
	if c.TLSKeyFile != "" {
		k.readable(v, c.TLSKeyFile)
	}
}

func (c Config) checkTLSServerName(k *checker, v string) { c.needsTLS(k, v, c.TLSServerName != "") }

func (c Config) checkTLSInsecureSkipVerify(k *checker, v string) {
	c.needsTLS(k, v, c.TLSInsecureSkipVerify)
}

// needsTLS refuses a TLS setting that is set while TLS is off.
func (c Config) needsTLS(k *checker, v string, set bool) {
	if set && !c.TLSEnabled() {
		k.add(v, "has no effect unless TLS is enabled (HOLDOVER_TLS=true, HOLDOVER_TLS_CA_FILE or HOLDOVER_TLS_CERT_FILE)")
	}
}

func (c Config) checkPassword(k *checker, v string) {
	if c.Password != "" && c.Username == "" {
		k.add(v, "is set but HOLDOVER_USERNAME is empty; set both or neither")
	}
}

func checkNodeID(c Config, k *checker, v string) {
	if !validNodeID(c.NodeID) {
		k.add(v, "must be 1 to %d bytes of [A-Za-z0-9._:-], got %q", maxNodeIDBytes, c.NodeID)
	}
}

func (c Config) checkValueFitsBatch(k *checker, v string) {
	if c.MaxValueBytes > c.MaxBatchBytes {
		k.add(v, "must be at most HOLDOVER_MAX_BATCH_BYTES (%s), got %s", c.MaxBatchBytes, c.MaxValueBytes)
	}
}

// maxNodeIDBytes bounds HOLDOVER_NODE_ID.
const maxNodeIDBytes = 64

// validNodeID reports whether s is 1 to maxNodeIDBytes bytes of [A-Za-z0-9._:-].
func validNodeID(s string) bool {
	if len(s) < 1 || len(s) > maxNodeIDBytes {
		return false
	}
	for i := range len(s) {
		if !isNodeIDByte(s[i]) {
			return false
		}
	}
	return true
}
