// Package examples runs the example programs against a real Cassandra, each
// in a keyspace of its own, and checks what they print. The programs are
// built once; a test fails (never skips) when Cassandra cannot start.
package examples

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

var programs = []string{"embed", "tuning", "adopt", "readme"}

// binDir holds the built examples.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "holdover-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, p := range programs {
		args = append(args, "./"+p)
	}
	cmd := exec.Command(goTool(), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
		return 1
	}
	binDir = dir
	return m.Run()
}

// goTool is the go command: go test puts its own GOROOT/bin first in PATH.
func goTool() string { return "go" }

// example runs a built example with HOLDOVER_* pointing at the test's
// Cassandra and keyspace (other HOLDOVER_ variables removed, extra added) and
// returns its stdout, failing the test unless it exits 0.
func example(t *testing.T, name, keyspace string, extra ...string) string {
	t.Helper()
	stdout, stderr, err := exampleRun(t, name, keyspace, extra...)
	if err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", name, err, stdout, stderr)
	}
	t.Logf("%s stdout:\n%s", name, stdout)
	return stdout
}

func exampleRun(t *testing.T, name, keyspace string, extra ...string) (stdout, stderr string, err error) {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	env := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOLDOVER_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"HOLDOVER_CASSANDRA_HOSTS="+strings.Join(hosts, ","),
		"HOLDOVER_CASSANDRA_PORT="+strconv.Itoa(port),
		"HOLDOVER_KEYSPACE="+keyspace)
	env = append(env, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, name))
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	began := time.Now()
	err = cmd.Run()
	t.Logf("%s ran in %s", name, time.Since(began).Round(time.Millisecond))
	return out.String(), errOut.String(), err
}

// lines checks that each pattern matches a whole line of out, in order.
func lines(t *testing.T, out string, patterns ...string) {
	t.Helper()
	rest := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for _, p := range patterns {
		re := regexp.MustCompile("^" + p + "$")
		i := 0
		for i < len(rest) && !re.MatchString(rest[i]) {
			i++
		}
		if i == len(rest) {
			t.Errorf("no line matching %q (after the previous match) in\n%s", p, out)
			return
		}
		rest = rest[i+1:]
	}
}

const id = `[0-9a-f]{8}`

func TestEmbed(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	out := example(t, "embed", ks)
	lines(t, out,
		`node example-embed, keyspace `+ks+`, flush delay 100ms`,
		`call-`+id+`: INVITE -> state=ringing`,
		`call-`+id+`: 200 OK -> state=answered`,
		`call-`+id+`: oversized recording refused \(change 1: value is 1048577 bytes, over the limit of 1048576 bytes\); rolled back, state=answered`,
		`call-`+id+`: INVITE then CANCEL -> session ended`,
		`flush: everything committed so far is durable`,
		`call-`+id+`: cassandra holds 5 items, owner example-embed, epoch 1, cseq=100; equal to memory: true`,
		`call-`+id+`: not in cassandra \(ended\)`,
		`stats: commits=103 changes=106 coalesced=\d+ \(replaced before being written\) ends=1`,
		`close: released 1 session\(s\) to peers, 0 left unwritten`,
	)

	// What the program says it wrote is what Cassandra holds.
	s := cassandratest.Session(t, ks)
	var n int
	if err := s.Query(`SELECT COUNT(*) FROM state`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Errorf("cassandra holds %d state rows, want 5", n)
	}
	// The answered call's ownership row is released (Close gave it to the
	// peers); the cancelled call's, recorded when its INVITE was accepted,
	// is marked ended. (Reading one row at random took the ended one about
	// half the time.)
	iter := s.Query(`SELECT session, released, ended FROM owners`).Iter()
	var (
		session         string
		released, ended bool
		rows            []string
	)
	live, endedRows := 0, 0
	for iter.Scan(&session, &released, &ended) {
		rows = append(rows, fmt.Sprintf("%s released=%v ended=%v", session, released, ended))
		switch {
		case ended:
			endedRows++
		case released:
			live++
		}
	}
	if err := iter.Close(); err != nil {
		t.Fatal(err)
	}
	if live != 1 || endedRows != 1 || len(rows) != 2 {
		t.Errorf("ownership rows %v: want two, the answered call's released and the cancelled call's ended", rows)
	}
}

func TestTuning(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	out := example(t, "tuning", ks)
	lines(t, out,
		`effective configuration:`,
		`  HOLDOVER_FLUSH_DELAY +500ms +.* \(set by this example\)`,
		`  HOLDOVER_MAX_SESSION_ITEMS +16 +.* \(set by this example\)`,
		`  HOLDOVER_MAX_PENDING_BYTES +1MiB +.* \(set by this example\)`,
		`  HOLDOVER_MAX_VALUE_BYTES +64KiB +.* \(set by this example\)`,
		`  HOLDOVER_KEYSPACE +`+ks+` +.* \(from the environment\)`,
		`  all: Config\{.* flush_delay=500ms .*\}`,
		`1000 commits of one key: 1 pending item, 999 coalesced, oldest pending .* \(< flush delay: true\)`,
		`  written as 1 item after .*, about HOLDOVER_FLUSH_DELAY=500ms`,
		`16 dirty items in one session: written at once \(16 items, before the flush delay: true\)`,
		`value over HOLDOVER_MAX_VALUE_BYTES: change 0: value is 65537 bytes, over the limit of 65536 bytes`,
		`HOLDOVER_MAX_PENDING_BYTES=1MiB reached: ErrBufferFull after \d+ chunks of 63KiB`,
		`  after Flush the same commit is accepted`,
		`  commits=\d+ changes=\d+ coalesced=999 refusals=1`,
		`  pending_items=0 oldest_pending_age=0s \(the live data-loss window\)`,
		`close: released 3 sessions, 0 left unwritten`,
	)

	// The shell's values win over the example's, and the password is
	// redacted.
	const secret = "s3cret-pw"
	out = example(t, "tuning", ks, "HOLDOVER_FLUSH_DELAY=300ms", "HOLDOVER_USERNAME=demo", "HOLDOVER_PASSWORD="+secret)
	lines(t, out,
		`  HOLDOVER_FLUSH_DELAY +300ms +.* \(from the environment\)`,
		`  all: Config\{.* username=demo password=\*\*\* .* flush_delay=300ms .*\}`,
		`  written as 1 item after .*, about HOLDOVER_FLUSH_DELAY=300ms`,
	)
	if strings.Contains(out, secret) {
		t.Errorf("the password leaked:\n%s", out)
	}

	// An invalid variable stops the program, naming every problem.
	stdout, stderr, err := exampleRun(t, "tuning", ks, "HOLDOVER_MAX_SESSION_ITEMS=0", "HOLDOVER_LEASE_TTL=1ms")
	if err == nil || stdout != "" {
		t.Fatalf("invalid configuration: err %v, stdout %q; want a failure before any output", err, stdout)
	}
	for _, v := range []string{"HOLDOVER_MAX_SESSION_ITEMS", "HOLDOVER_LEASE_TTL"} {
		if !strings.Contains(stderr, v) {
			t.Errorf("stderr does not name %s:\n%s", v, stderr)
		}
	}
}

func TestAdopt(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	out := example(t, "adopt", ks)
	lines(t, out,
		`this node: example-adopt \(keyspace `+ks+`, lease TTL 2s\)`,
		`peer example-adopt-live-peer: owns dialog-`+id+`-2 and account-`+id,
		`peer example-adopt-crashed-peer: wrote dialog-`+id+`-1 \(state=answered\), committed state=on-hold, then was killed before writing it`,
		`event for dialog-`+id+`-new: not found anywhere, created fresh here`,
		`event for dialog-`+id+`-2: owned by example-adopt-live-peer \(epoch 1, lease live: true\), forward the event there`,
		// The crashed peer's lease (2s) outlives it by a little.
		`event for dialog-`+id+`-1: owned by example-adopt-crashed-peer \(epoch 1, lease live: true\), forward the event there`,
		`event for dialog-`+id+`-1: adopted from example-adopt-crashed-peer at epoch 2, restored account=account-`+id+` caller=alice state=answered`,
		`  state=answered, not on-hold: the change committed inside the crashed node's flush window was lost, as documented`,
		`related account-`+id+`: balance=42, owner example-adopt-live-peer \(read with Peek, not adopted\)`,
		`peer example-adopt-live-peer: shut down gracefully, released 2 sessions`,
		`event for dialog-`+id+`-2: adopted from example-adopt-live-peer at epoch 2, restored state=ringing`,
		`event for dialog-`+id+`-2: already owned here, reloaded state=ringing`,
		`this node: shut down gracefully, released 3 sessions, 0 left unwritten`,
	)
}
