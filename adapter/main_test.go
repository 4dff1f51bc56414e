package adapter_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// TestMain gives the runnable examples (example_test.go) a real Cassandra
// and a keyspace of their own, through the variables ConfigFromEnv reads:
// HOLDOVER_CASSANDRA_HOSTS, HOLDOVER_CASSANDRA_PORT and HOLDOVER_KEYSPACE.
// Cassandra is started if it is not running; if it cannot start, the tests
// fail (exit 1) rather than skip. The keyspace is dropped afterwards.
//
// It is the TestMain of the whole test binary, the internal tests of package
// adapter included; they take keyspaces of their own (cassandratest.Keyspace)
// and those that read the environment clear it first.
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	hosts, port, err := cassandratest.Ensure()
	if err != nil {
		fmt.Fprintf(os.Stderr, "adapter tests need Cassandra, which could not start: %v\n", err)
		return 1
	}
	keyspace, drop, err := cassandratest.TempKeyspace()
	if err != nil {
		fmt.Fprintf(os.Stderr, "adapter tests: create a keyspace for the examples: %v\n", err)
		return 1
	}
	defer func() {
		if err := drop(); err != nil {
			fmt.Fprintf(os.Stderr, "adapter tests: drop keyspace %s: %v\n", keyspace, err)
		}
	}()
	os.Setenv("HOLDOVER_CASSANDRA_HOSTS", strings.Join(hosts, ","))
	os.Setenv("HOLDOVER_CASSANDRA_PORT", strconv.Itoa(port))
	os.Setenv("HOLDOVER_KEYSPACE", keyspace)
	return m.Run()
}
