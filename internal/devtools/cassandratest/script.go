package cassandratest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
)

// RepoPath returns the path of elem, joined, from the root of the repository.
func RepoPath(elem ...string) string {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	return filepath.Join(append([]string{root}, elem...)...)
}

// Script is the path of the script that runs the local Cassandra nodes
// (internal/devtools/cassandra/cassandra.sh, the one `make cassandra` runs).
func Script() string { return RepoPath("internal", "devtools", "cassandra", "cassandra.sh") }

var versionLine = regexp.MustCompile(`(?m)^CASSANDRA_VERSION=([0-9]+\.[0-9]+\.[0-9]+)$`)

// Version is the Cassandra release the local nodes and the drills' image run:
// the CASSANDRA_VERSION line of Script, the one place it is defined.
func Version() (string, error) {
	data, err := os.ReadFile(Script())
	if err != nil {
		return "", err
	}
	m := versionLine.FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("%s: no CASSANDRA_VERSION=x.y.z line", Script())
	}
	return string(m[1]), nil
}
