package inspect

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/store"
)

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

// DescribeCluster connects as Open does, but without using the configured
// keyspace, so it also works before any node has created it, and says
// whether one has. It returns an *adapter.ConfigError when cfg is invalid,
// and otherwise the connection error, naming the hosts.
func DescribeCluster(ctx context.Context, cfg adapter.Config) (Cluster, error) {
	o, err := options(cfg)
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
