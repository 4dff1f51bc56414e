// Command cqlping asks a Cassandra node for its release version over CQL.
//
//	cqlping -host 127.0.0.1 -port 9042 -timeout 2s
//
// It prints the version and exits 0 when the node answers
// SELECT release_version FROM system.local, and exits 1 with the driver's
// error otherwise. cassandra.sh uses it to wait for a node to serve clients.
//
// For the secured node it speaks TLS and logs in:
//
//	cqlping -host 127.0.0.21 -ca ca.pem -cert client.pem -key client-key.pem -user cassandra
//
// with the password in the environment variable CQLPING_PASSWORD (never on
// the command line, where ps would show it).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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
	ca := flag.String("ca", "", "PEM CA file: speak TLS and verify the node with it")
	cert := flag.String("cert", "", "PEM client certificate (with -key)")
	key := flag.String("key", "", "PEM client key")
	user := flag.String("user", "", "log in as this role; the password comes from $CQLPING_PASSWORD")
	flag.Parse()

	cluster := gocql.NewCluster(*host)
	if *ca != "" {
		conf, err := tlsConfig(*ca, *cert, *key)
		if err != nil {
			fmt.Fprintln(os.Stderr, "cqlping:", err)
			os.Exit(2)
		}
		cluster.SslOpts = &gocql.SslOptions{Config: conf, EnableHostVerification: true}
	}
	if *user != "" {
		cluster.Authenticator = gocql.PasswordAuthenticator{Username: *user, Password: os.Getenv("CQLPING_PASSWORD")}
	}
	version, err := releaseVersion(cluster, *port, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cqlping:", err)
		os.Exit(1)
	}
	fmt.Println(version)
}

func tlsConfig(ca, cert, key string) (*tls.Config, error) {
	pem, err := os.ReadFile(ca)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New(ca + ": no PEM certificate")
	}
	conf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf, nil
}

func releaseVersion(cluster *gocql.ClusterConfig, port int, timeout time.Duration) (string, error) {
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
