package cassandratest

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// SecureNode is a running Cassandra that requires client TLS with a client
// certificate, PasswordAuthenticator and CassandraAuthorizer.
type SecureNode struct {
	// Hosts are its contact points, Port its CQL port.
	Hosts []string
	Port  int
	// Certs is the directory of the PEM files certgen writes
	// (internal/devtools/cassandra/certgen): ca.pem, client.pem, client-key.pem,
	// expired-client.pem, expired-client-key.pem, other-ca.pem,
	// other-client.pem, other-client-key.pem.
	Certs string
	// AdminUser and AdminPassword are a superuser's credentials: the tests'
	// operator, who creates keyspaces, tables and roles.
	AdminUser, AdminPassword string
	// ServerName is a DNS name the node's certificate carries.
	ServerName string
}

var (
	secureOnce  sync.Once
	secureNode  SecureNode
	secureErr   error
	secureAdmin *gocql.Session
)

// Secure returns the secured node, starting the local one
// (`cassandra.sh start-secure`, on 127.0.0.21 beside the plain node; a
// running one is reused) unless HOLDOVER_CASSANDRA_SECURE_HOSTS names the
// contact points of an existing secured cluster. With that variable,
// HOLDOVER_CASSANDRA_SECURE_CERTS must name a directory of the same files
// (certificates its CA signed, and the wrong ones), and
// HOLDOVER_CASSANDRA_SECURE_ADMIN a superuser as user:password (default
// cassandra:cassandra); the port is HOLDOVER_CASSANDRA_PORT. When no such
// node can be reached the test fails, never skips. The local node is left
// running, as Hosts leaves its node; `make test-secure` stops what it
// started.
func Secure(t testing.TB) SecureNode {
	t.Helper()
	secureOnce.Do(startSecure)
	if secureErr != nil {
		t.Fatalf("the secured Cassandra node (TLS, PasswordAuthenticator, CassandraAuthorizer) is required for this test and could not start: %v", secureErr)
	}
	return secureNode
}

func startSecure() {
	port, err := envPort()
	if err != nil {
		secureErr = err
		return
	}
	n := SecureNode{Port: port, AdminUser: "cassandra", AdminPassword: "cassandra", ServerName: "cassandra-secure.holdover.test"}
	if h := os.Getenv("HOLDOVER_CASSANDRA_SECURE_HOSTS"); h != "" {
		n.Hosts = strings.Split(h, ",")
		n.Certs = os.Getenv("HOLDOVER_CASSANDRA_SECURE_CERTS")
		if n.Certs == "" {
			secureErr = errors.New("HOLDOVER_CASSANDRA_SECURE_HOSTS is set but HOLDOVER_CASSANDRA_SECURE_CERTS (the directory of the test certificates) is not")
			return
		}
		if a := os.Getenv("HOLDOVER_CASSANDRA_SECURE_ADMIN"); a != "" {
			var ok bool
			if n.AdminUser, n.AdminPassword, ok = strings.Cut(a, ":"); !ok {
				secureErr = errors.New("HOLDOVER_CASSANDRA_SECURE_ADMIN must be user:password")
				return
			}
		}
	} else {
		if err := runScript("start-secure"); err != nil {
			secureErr = err
			return
		}
		n.Hosts = []string{"127.0.0.21"}
		n.Certs = filepath.Join(cacheDir(), "secure", "certs")
	}
	c, err := n.Cluster(n.AdminUser, n.AdminPassword)
	if err != nil {
		secureErr = err
		return
	}
	c.Timeout = 60 * time.Second // schema changes are slow on a small node
	s, err := c.CreateSession()
	if err != nil {
		secureErr = fmt.Errorf("connect to %v:%d over TLS as %s: %v", n.Hosts, n.Port, n.AdminUser, err)
		return
	}
	secureNode, secureAdmin = n, s
}

// cacheDir is where cassandra.sh keeps its nodes: $CASSANDRA_CACHE, or
// .cache/cassandra at the root of the repository.
func cacheDir() string {
	if d := os.Getenv("CASSANDRA_CACHE"); d != "" {
		return d
	}
	return RepoPath(".cache", "cassandra")
}

// File is the path of one of the files in Certs.
func (n SecureNode) File(name string) string { return filepath.Join(n.Certs, name) }

// Cluster is a driver configuration for the node that verifies it with
// ca.pem, presents client.pem and logs in as user.
func (n SecureNode) Cluster(user, password string) (*gocql.ClusterConfig, error) {
	pem, err := os.ReadFile(n.File("ca.pem"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", n.File("ca.pem"))
	}
	pair, err := tls.LoadX509KeyPair(n.File("client.pem"), n.File("client-key.pem"))
	if err != nil {
		return nil, err
	}
	c := cluster(n.Hosts, n.Port)
	c.SslOpts = &gocql.SslOptions{
		Config:                 &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		EnableHostVerification: true,
	}
	c.Authenticator = gocql.PasswordAuthenticator{Username: user, Password: password}
	return c, nil
}

// Admin is the operator's session (a superuser), shared by the tests.
func (n SecureNode) Admin(t testing.TB) *gocql.Session {
	t.Helper()
	Secure(t)
	return secureAdmin
}

// Exec runs each statement as the operator, failing the test on an error.
func (n SecureNode) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if err := n.Admin(t).Query(s).Exec(); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// Keyspace creates an empty keyspace on the node for this test alone and
// drops it when the test ends.
func (n SecureNode) Keyspace(t testing.TB) string {
	t.Helper()
	name := randomName("t_")
	n.Exec(t, fmt.Sprintf("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", name))
	t.Cleanup(func() {
		if err := n.Admin(t).Query("DROP KEYSPACE IF EXISTS " + name).Exec(); err != nil {
			t.Errorf("drop keyspace %s: %v", name, err)
		}
	})
	return name
}

// Role creates a login role with the given password and no permissions, for
// this test alone (dropped when it ends), and returns its name.
func (n SecureNode) Role(t testing.TB, password string) string {
	t.Helper()
	name := randomName("r_")
	n.Exec(t, fmt.Sprintf("CREATE ROLE %s WITH LOGIN = true AND PASSWORD = '%s'", name, strings.ReplaceAll(password, "'", "''")))
	t.Cleanup(func() {
		if err := n.Admin(t).Query("DROP ROLE IF EXISTS " + name).Exec(); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	return name
}

// Permissions lists the permissions granted to role, directly or through
// the roles it holds, as "PERMISSION on resource" (such as "SELECT on
// <keyspace t_1>"), in the order Cassandra lists them.
func (n SecureNode) Permissions(t testing.TB, role string) []string {
	t.Helper()
	iter := n.Admin(t).Query("LIST ALL PERMISSIONS OF " + role).Iter()
	var out []string
	for {
		row := map[string]any{}
		if !iter.MapScan(row) {
			break
		}
		out = append(out, fmt.Sprintf("%v on %v", row["permission"], row["resource"]))
	}
	if err := iter.Close(); err != nil {
		t.Fatalf("LIST ALL PERMISSIONS OF %s: %v", role, err)
	}
	return out
}

func randomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// READMEGrants returns the GRANT statements of the README's least-privilege
// block (the fenced block after the line <!-- holdover:grants -->), each
// with the keyspace holdover and the role holdover_app replaced by the
// given ones. It fails the test unless every line of the block is such a
// statement or the CREATE ROLE that precedes them, so that the statements
// the README shows are exactly those the tests run.
func READMEGrants(t testing.TB, keyspace, role string) []string {
	t.Helper()
	path := RepoPath("README.md")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	grant := regexp.MustCompile(`^GRANT ([A-Z]+) ON KEYSPACE holdover TO holdover_app;$`)
	var grants []string
	state := 0 // 0 before the marker, 1 before the block, 2 in it
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case state == 0 && strings.HasPrefix(line, "<!-- holdover:grants"):
			state = 1
		case state == 1 && strings.HasPrefix(line, "```"):
			state = 2
		case state == 2 && strings.HasPrefix(line, "```"):
			if len(grants) == 0 {
				t.Fatal("README.md: the holdover:grants block holds no GRANT statement")
			}
			return grants
		case state == 2 && strings.HasPrefix(line, "CREATE ROLE holdover_app "):
		case state == 2:
			m := grant.FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("README.md: %q in the holdover:grants block is not GRANT <permission> ON KEYSPACE holdover TO holdover_app;", line)
			}
			grants = append(grants, fmt.Sprintf("GRANT %s ON KEYSPACE %s TO %s", m[1], keyspace, role))
		}
	}
	t.Fatal("README.md: no fenced block after <!-- holdover:grants -->")
	return nil
}
