package cassandratest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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

// TestConfigDeletesWhatDroppedTablesLeft prepares a node directory where
// earlier runs left what Cassandra keeps of dropped tables: Paxos state
// tracker files (each start reads them all, and thousands made a start nearly
// outlast its timeout) and snapshots. `cassandra.sh config` must turn
// auto_snapshot off and delete both, and the directories the snapshots leave
// empty, and keep everything else.
func TestConfigDeletesWhatDroppedTablesLeft(t *testing.T) {
	cache := t.TempDir()
	data := filepath.Join(cache, "ring1", "node1", "data")
	files := map[string]bool{ // path under data: kept
		"t_gone/state-00000000000000000000000000000001/snapshots/dropped-17-state/manifest.json":   false,
		"t_gone/owners-00000000000000000000000000000002/snapshots/dropped-17-owners/manifest.json": false,
		"t_live/state-00000000000000000000000000000003/snapshots/dropped-18-state/manifest.json":   false,
		"t_live/state-00000000000000000000000000000003/nb-1-big-Data.db":                           true,
		"t_live/state-00000000000000000000000000000003/snapshots/mine/manifest.json":               true,
		// The Paxos state tracker's files: of the live table (id 3), of
		// the dropped ones (ids 1 and 2), and of one whose name is gone.
		"system/_paxos_repair_state/t_live-state-00000000-0000-0000-0000-000000000003-0.paxos":     true,
		"system/_paxos_repair_state/t_live-state-00000000-0000-0000-0000-000000000003-0.paxos.crc": true,
		"system/_paxos_repair_state/t_gone-state-00000000-0000-0000-0000-000000000001-0.paxos":     false,
		"system/_paxos_repair_state/t_gone-owners-00000000-0000-0000-0000-000000000002-4.paxos":    false,
		"system/_paxos_repair_state/UNKNOWN-UNKNOWN-00000000-0000-0000-0000-000000000002-3.paxos":  false,
	}
	for f := range files {
		p := filepath.Join(data, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	emptyTable := filepath.Join(data, "system", "peers-00000000000000000000000000000004") // a live table with no sstables yet
	if err := os.MkdirAll(emptyTable, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("bash", Script(), "config")
	cmd.Env = append(os.Environ(), "CASSANDRA_CACHE="+cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cassandra.sh config: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^auto_snapshot: false$`).Match(out) {
		t.Errorf("the node's cassandra.yaml does not turn auto_snapshot off:\n%s", out)
	}
	for _, said := range []string{"deleting 3 snapshots of dropped tables", "deleting 3 Paxos state files of dropped tables"} {
		if !strings.Contains(string(out), said) {
			t.Errorf("config did not say %q:\n%s", said, out)
		}
	}
	for f, kept := range files {
		_, err := os.Stat(filepath.Join(data, f))
		if kept && err != nil {
			t.Errorf("%s was deleted: %v", f, err)
		}
		if !kept && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (stat: %v)", f, err)
		}
	}
	for _, gone := range []string{"t_gone", "t_live/state-00000000000000000000000000000003/snapshots/dropped-18-state"} {
		if _, err := os.Stat(filepath.Join(data, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there (stat: %v)", gone, err)
		}
	}
	if _, err := os.Stat(emptyTable); err != nil {
		t.Errorf("the empty directory of a live table was deleted: %v", err)
	}
}
