// Package cassandratest gives integration tests a real Cassandra node and a
// keyspace of their own.
//
// Hosts starts a local node through internal/devtools/cassandra/cassandra.sh (the same
// script as `make cassandra`; a running node is reused) unless
// HOLDOVER_CASSANDRA_HOSTS names an existing cluster. When Cassandra cannot be
// reached the test fails: it never skips, so CI cannot pass without Cassandra.
//
// DCRing does the same for a ring of two data centers (`cassandra.sh start 3
// --dcs 2`, on 127.0.0.11-13 beside the single node), or the cluster
// HOLDOVER_CASSANDRA_DC_HOSTS names; the tests that use it are built with the
// tag dcring and run by `make test-dc`.
//
// Secure does the same for a node that requires client TLS (with a client
// certificate), PasswordAuthenticator and CassandraAuthorizer (`cassandra.sh
// start-secure`, on 127.0.0.21), or the one HOLDOVER_CASSANDRA_SECURE_HOSTS
// names; the tests that use it are built with the tag secure and run by
// `make test-secure`.
package cassandratest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

var (
	once     sync.Once
	hosts    []string
	port     int
	startErr error
	adminMu  sync.Mutex
	admin    *gocql.Session
)

// Hosts returns the addresses of a running Cassandra and its CQL port,
// starting a local node if needed.
func Hosts(t testing.TB) ([]string, int) {
	t.Helper()
	h, p, err := Ensure()
	if err != nil {
		t.Fatalf("cassandra is required for this test and could not start: %v", err)
	}
	return h, p
}

// Ensure is Hosts for code without a testing.TB (TestMain, examples).
func Ensure() ([]string, int, error) {
	once.Do(start)
	return hosts, port, startErr
}

func start() {
	port, startErr = envPort()
	if startErr != nil {
		return
	}
	if h := os.Getenv("HOLDOVER_CASSANDRA_HOSTS"); h != "" {
		hosts = strings.Split(h, ",")
		return
	}
	if startErr = runScript("start"); startErr == nil {
		hosts = []string{"127.0.0.1"}
	}
}

// runScript runs internal/devtools/cassandra/cassandra.sh with args, copying its output
// to stderr when it succeeds and into the error when it fails.
func runScript(args ...string) error {
	script := Script()
	var out bytes.Buffer
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v\n%s", script, strings.Join(args, " "), err, out.String())
	}
	fmt.Fprint(os.Stderr, out.String())
	return nil
}

// envPort is HOLDOVER_CASSANDRA_PORT, or 9042.
func envPort() (int, error) {
	p := os.Getenv("HOLDOVER_CASSANDRA_PORT")
	if p == "" {
		return 9042, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return 0, fmt.Errorf("HOLDOVER_CASSANDRA_PORT=%q is not a port number", p)
	}
	return n, nil
}

// Keyspace creates a keyspace for this test alone (replication factor 1) and
// drops it when the test ends. The name is a valid CQL identifier.
func Keyspace(t testing.TB) string {
	t.Helper()
	h, p := Hosts(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	s := adminSession(t, h, p)
	ddl := fmt.Sprintf("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", name)
	if err := s.Query(ddl).Exec(); err != nil {
		t.Fatalf("create keyspace %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := s.Query("DROP KEYSPACE IF EXISTS " + name).Exec(); err != nil {
			t.Errorf("drop keyspace %s: %v", name, err)
		}
	})
	return name
}

// Session opens a driver session on keyspace (or none when empty), closed
// when the test ends. Use it to read back what the code under test wrote.
func Session(t testing.TB, keyspace string) *gocql.Session {
	t.Helper()
	h, p := Hosts(t)
	c := cluster(h, p)
	c.Keyspace = keyspace
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("connect to cassandra at %v:%d: %v", h, p, err)
	}
	t.Cleanup(s.Close)
	return s
}

func adminSession(t testing.TB, h []string, p int) *gocql.Session {
	adminMu.Lock()
	defer adminMu.Unlock()
	if admin != nil {
		return admin
	}
	c := cluster(h, p)
	c.Timeout = 60 * time.Second // schema changes are slow on a small node
	s, err := c.CreateSession()
	if err != nil {
		t.Fatalf("connect to cassandra at %v:%d: %v", h, p, err)
	}
	admin = s
	return s
}

func cluster(h []string, p int) *gocql.ClusterConfig {
	c := gocql.NewCluster(h...)
	c.Port = p
	c.ProtoVersion = 5
	c.Timeout = 10 * time.Second
	c.ConnectTimeout = 10 * time.Second
	c.Consistency = gocql.One
	c.Logger = gocql.NewLogger(gocql.LogLevelNone)
	return c
}

// TempKeyspace is Keyspace for code without a testing.TB: it creates a fresh
// keyspace and returns a function that drops it.
func TempKeyspace() (string, func() error, error) {
	h, p, err := Ensure()
	if err != nil {
		return "", nil, err
	}
	c := cluster(h, p)
	c.Timeout = 60 * time.Second
	s, err := c.CreateSession()
	if err != nil {
		return "", nil, err
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	ddl := fmt.Sprintf("CREATE KEYSPACE %s WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}", name)
	if err := s.Query(ddl).Exec(); err != nil {
		s.Close()
		return "", nil, err
	}
	return name, func() error {
		defer s.Close()
		return s.Query("DROP KEYSPACE IF EXISTS " + name).Exec()
	}, nil
}
