package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/store"
)

// Env is where a benchmark runs: the Cassandra contact points and a keyspace
// of its own, created by Setup and dropped by Teardown.
type Env struct {
	Hosts    []string
	Port     int
	Keyspace string
	Log      io.Writer

	raw *gocql.Session
}

// Setup creates the keyspace, the adapter's tables and the anchor's table of
// the same shape.
func (e *Env) Setup(ctx context.Context) error {
	st, err := store.Open(ctx, store.Options{Hosts: e.Hosts, Port: e.Port, Keyspace: e.Keyspace, CreateSchema: true})
	if err != nil {
		return err
	}
	st.Close()
	c := e.cluster()
	c.Keyspace = e.Keyspace
	e.raw, err = c.CreateSession()
	if err != nil {
		return err
	}
	// The anchor writes the same rows to a table of the same shape.
	ddl := `CREATE TABLE IF NOT EXISTS raw_state (session text, key text, value blob, format tinyint, PRIMARY KEY ((session), key))`
	if err := e.raw.Query(ddl).ExecContext(ctx); err != nil {
		return err
	}
	return e.raw.AwaitSchemaAgreement(ctx)
}

// Teardown drops the keyspace.
func (e *Env) Teardown(ctx context.Context) error {
	if e.raw == nil {
		return nil
	}
	defer e.raw.Close()
	return e.raw.Query("DROP KEYSPACE IF EXISTS " + e.Keyspace).ExecContext(ctx)
}

// anchorSerial is the anchors' serial consistency: the adapter's default
// (HOLDOVER_SERIAL_CONSISTENCY, SERIAL), so that a claim issued directly is
// the claim the adapter sends. (It was LOCAL_SERIAL: the same on one
// datacenter, cheaper on several, where it would have flattered the floors;
// found by review.)
const anchorSerial = gocql.Serial

// cluster is the driver configuration of the anchors: what the store uses
// (protocol v5, token-aware routing, LOCAL_QUORUM), tuned for throughput.
func (e *Env) cluster() *gocql.ClusterConfig {
	c := gocql.NewCluster(e.Hosts...)
	c.Port = e.Port
	c.ProtoVersion = 5
	c.Consistency = gocql.LocalQuorum
	c.SerialConsistency = anchorSerial
	c.Timeout = 10 * time.Second
	c.ConnectTimeout = 10 * time.Second
	c.NumConns = 2
	c.PoolConfig.HostSelectionPolicy = gocql.TokenAwareHostPolicy(gocql.RoundRobinHostPolicy())
	c.Logger = gocql.NewLogger(gocql.LogLevelNone)
	return c
}

// config is an adapter configuration on the benchmark's keyspace.
func (e *Env) config(node string) adapter.Config {
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = e.Hosts, e.Port, e.Keyspace, node
	cfg.CreateSchema = false
	// The runs offer more than Cassandra takes on purpose (throughput) or
	// create thousands of sessions at once: a window bound would turn part of
	// that load away (ErrOverloaded) instead of measuring it. The overload
	// figures come from holdover-load overload, with the bound on.
	cfg.MaxWindow = time.Hour
	return cfg
}

// quiet keeps the adapter's logs out of the benchmark's output.
func quiet() adapter.Option { return adapter.WithLogger(slog.New(slog.DiscardHandler)) }

func (e *Env) logf(format string, args ...any) {
	if e.Log != nil {
		fmt.Fprintf(e.Log, "bench: "+format+"\n", args...)
	}
}

// ReleaseVersion is the Cassandra version the benchmark runs against.
func (e *Env) ReleaseVersion() string {
	var v string
	if err := e.raw.Query("SELECT release_version FROM system.local").Scan(&v); err != nil {
		return "unknown"
	}
	return v
}
