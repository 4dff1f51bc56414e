package cassandratest

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestWithKeepsExitStatus runs `cassandra.sh with` against clusters named by
// the environment, so that it starts nothing: the command's exit status is the
// script's, and a bad ring or a missing command is a usage error (2).
func TestWithKeepsExitStatus(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"ring1", "--", "sh", "-c", "exit 7"}, 7},
		{[]string{"ring1,ring3dc2,secure", "--", "true"}, 0},
		{[]string{"ring3dc2", "--", "false"}, 1},
		{[]string{"ringX", "--", "true"}, 2},
		{[]string{"ring1", "true"}, 2},
		{[]string{"ring1", "--"}, 2},
	} {
		cmd := exec.Command("bash", append([]string{Script(), "with"}, c.args...)...)
		cmd.Env = append(os.Environ(), "HOLDOVER_CASSANDRA_HOSTS=192.0.2.1",
			"HOLDOVER_CASSANDRA_DC_HOSTS=192.0.2.2", "HOLDOVER_CASSANDRA_SECURE_HOSTS=192.0.2.3")
		out, err := cmd.CombinedOutput()
		got := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			got = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("with %s: exit status %d, want %d\n%s", strings.Join(c.args, " "), got, c.want, out)
		}
		if c.want != 2 && strings.Contains(string(out), "starting") {
			t.Errorf("with %s started a node though the environment names clusters:\n%s", strings.Join(c.args, " "), out)
		}
	}
}

// TestVersionOnePlace checks that the Cassandra release is defined once, by
// cassandra.sh: the pom takes it from the script, and the documents that name
// it name the same one. docs/performance.md is left out: its figures record the
// release they were measured on.
func TestVersionOnePlace(t *testing.T) {
	v, err := Version()
	if err != nil {
		t.Fatal(err)
	}
	pom, err := os.ReadFile(RepoPath("internal", "devtools", "cassandra", "pom.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pom), "<cassandra.version>") || !strings.Contains(string(pom), "${cassandra.version}") {
		t.Errorf("pom.xml must take cassandra.version from cassandra.sh (-Dcassandra.version), not define it")
	}
	mention := regexp.MustCompile(`(?i)(?:cassandra(?:-all)?[: ]|release_version )([0-9]+\.[0-9]+\.[0-9]+)`)
	for _, f := range [][]string{{"README.md"}, {"e2e", "README.md"}, {"e2e", "images", "build.sh"}} {
		data, err := os.ReadFile(RepoPath(f...))
		if err != nil {
			t.Fatal(err)
		}
		ms := mention.FindAllSubmatch(data, -1)
		if len(ms) == 0 {
			t.Errorf("%s names no Cassandra release (the check would pass whatever it says)", strings.Join(f, "/"))
		}
		for _, m := range ms {
			if string(m[1]) != v {
				t.Errorf("%s: %q names Cassandra %s; cassandra.sh runs %s", strings.Join(f, "/"), m[0], m[1], v)
			}
		}
	}
}
