// Command cqlping asks a Cassandra node for its release version over CQL.
//
//	cqlping -host 127.0.0.1 -port 9042 -timeout 2s
//
// It prints the version and exits 0 when the node answers
// SELECT release_version FROM system.local, and exits 1 with the driver's
// error otherwise. cassandra.sh uses it to wait for a node to serve clients.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

func main() {
	host := flag.String("host", "127.0.0.1", "node address")
	port := flag.Int("port", 9042, "CQL native transport port")
	timeout := flag.Duration("timeout", 3*time.Second, "connect and query timeout")
	flag.Parse()

	version, err := releaseVersion(*host, *port, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqlping:", err)
		os.Exit(1)
	}
	fmt.Println(version)
}

func releaseVersion(host string, port int, timeout time.Duration) (string, error) {
	cluster := gocql.NewCluster(host)
	cluster.Port = port
	cluster.Timeout = timeout
	cluster.ConnectTimeout = timeout
	cluster.DisableInitialHostLookup = true
	cluster.NumConns = 1
	cluster.Logger = gocql.NewLogger(gocql.LogLevelNone)
	session, err := cluster.CreateSession()
	if err != nil {
		return "", err
	}
	defer session.Close()
	var version string
	err = session.Query("SELECT release_version FROM system.local").Consistency(gocql.One).Scan(&version)
	return version, err
}
