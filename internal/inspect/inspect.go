package inspect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/internal/storeconf"
)

// Inspector reads what holdover persisted without owning anything (see the
// package doc). It is safe for concurrent use.
type Inspector struct {
	st   *store.Store
	skew time.Duration // the peers' margin on leases (HOLDOVER_MAX_CLOCK_SKEW)
}

// Open connects to cfg.Keyspace with the hosts, TLS, credentials,
// consistency and timeouts a node with cfg would use, one connection per
// host. cfg must pass Validate (adapter.ConfigFromEnv ensures it); its
// node-only fields are not used.
//
// It returns an *adapter.ConfigError when cfg is invalid or a TLS file cannot
// be loaded, an error wrapping adapter.ErrNoKeyspace when Cassandra answers
// but the keyspace does not exist, and otherwise the connection error, naming
// the hosts. It never creates the keyspace.
func Open(ctx context.Context, cfg adapter.Config) (*Inspector, error) {
	o, err := options(cfg)
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
	return nil, fmt.Errorf("holdover: connect to cassandra at %s, keyspace %q: %w", cassandraAt(o), o.Keyspace, storeconf.Errors(err))
}

// Close closes the connection. The Inspector must not be used afterwards.
func (i *Inspector) Close() { i.st.Close() }

// options are the store options of an Inspector: a node's, but never
// creating the schema, and with one connection per host, enough for a reader.
func options(cfg adapter.Config) (store.Options, error) {
	o, err := storeconf.FromConfig(cfg)
	o.CreateSchema = false
	o.NumConns = 1
	return o, err
}

// cassandraAt names the contact points for error messages.
func cassandraAt(o store.Options) string {
	return fmt.Sprintf("%s (port %d)", strings.Join(o.Hosts, ","), o.Port)
}

// noKeyspaceError is adapter.ErrNoKeyspace naming the keyspace and where it
// is missing.
type noKeyspaceError struct{ keyspace, at string }

func (e *noKeyspaceError) Error() string {
	return fmt.Sprintf("holdover: keyspace %q does not exist on %s (HOLDOVER_KEYSPACE): no node has run with it yet, or HOLDOVER_CREATE_SCHEMA=false and it was never created",
		e.keyspace, e.at)
}

// Unwrap makes errors.Is(err, adapter.ErrNoKeyspace) true.
func (e *noKeyspaceError) Unwrap() error { return adapter.ErrNoKeyspace }
