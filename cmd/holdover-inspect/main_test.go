package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// runInspect runs the command in-process and returns its output and status.
func runInspect(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustInspect runs a command that must succeed and returns its stdout.
func mustInspect(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := runInspect(t, args...)
	if code != exitOK {
		t.Fatalf("%s %s: exit %d\nstdout:\n%s\nstderr:\n%s", progName, strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: want %q in\n%s", what, w, got)
		}
	}
}

// useKeyspace points the HOLDOVER_* environment at the test's Cassandra and
// keyspace, clearing every other HOLDOVER_ variable for the test.
func useKeyspace(t *testing.T, keyspace string) adapter.Config {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HOLDOVER_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	t.Setenv("HOLDOVER_CASSANDRA_HOSTS", strings.Join(hosts, ","))
	t.Setenv("HOLDOVER_CASSANDRA_PORT", strconv.Itoa(port))
	t.Setenv("HOLDOVER_KEYSPACE", keyspace)
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace = hosts, port, keyspace
	cfg.FlushDelay = 10 * time.Millisecond
	cfg.LeaseTTL = 5 * time.Second
	return cfg
}

func openNode(t *testing.T, cfg adapter.Config, node string) *adapter.Adapter {
	t.Helper()
	cfg.NodeID = node
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := adapter.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("open node %s: %v", node, err)
	}
	t.Cleanup(func() { _, _ = a.Close(context.Background()) })
	return a
}

func flushAll(t *testing.T, a *adapter.Adapter) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestInspect(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	cfg := useKeyspace(t, ks)

	nodeA := openNode(t, cfg, "inspect-a")
	binary := []byte{0, 1, 2, 0xff}
	long := bytes.Repeat([]byte("x"), 300)
	must(t, nodeA.Commit("call-1",
		adapter.Change{Key: "caller", Value: []byte("sip:alice@example.com")},
		adapter.Change{Key: "codec", Value: binary},
		adapter.Change{Key: "long", Value: long},
		adapter.Change{Key: "note", Value: []byte("héllo\nworld")},
	))
	must(t, nodeA.Commit("call-2", adapter.Change{Key: "a", Value: []byte("1")}))
	flushAll(t, nodeA)

	t.Run("version", func(t *testing.T) {
		out := mustInspect(t, "version")
		contains(t, "version", out, "release_version  5.", "keyspace         "+ks+": present")
		var v versionJSON
		must(t, json.Unmarshal([]byte(mustInspect(t, "version", "-json")), &v))
		if !strings.HasPrefix(v.ReleaseVersion, "5.") || !v.KeyspaceExists || v.Keyspace != ks {
			t.Errorf("version -json = %+v", v)
		}
	})

	t.Run("leases", func(t *testing.T) {
		contains(t, "leases", mustInspect(t, "leases"), "NODE", "REMAINING", "inspect-a", "1 live lease\n")
		var ls []leaseJSON
		must(t, json.Unmarshal([]byte(mustInspect(t, "leases", "-json")), &ls))
		// Remaining runs to RenewedAt + HOLDOVER_LEASE_TTL (the life the node
		// wrote, the TTL less the skew, + the skew, as peers judge the lease).
		most := cfg.LeaseTTL.Milliseconds()
		if len(ls) != 1 || ls[0].Node != "inspect-a" || ls[0].TTLMS != 5000 || ls[0].RemainingMS <= 0 || ls[0].RemainingMS > most {
			t.Errorf("leases -json = %+v, want inspect-a alone with a 5s TTL and between 0 and %d ms left", ls, most)
		}
	})

	t.Run("session", func(t *testing.T) {
		out := mustInspect(t, "session", "call-1")
		contains(t, "session", out,
			"status      resident: owned by a live node",
			"owner       inspect-a (lease live, ",
			"epoch       1\n",
			"released    false\n",
			"items       4 (",
			`"codec"   4     "\x00\x01\x02\xff"`,
			`"note"    12    "héllo\nworld"`,
			`"caller"  21    "sip:alice@example.com"`,
			`... (44 more bytes)`,
		)
		if strings.Contains(mustInspect(t, "session", "-max-value-bytes", "0", "call-1"), "more bytes") {
			t.Error("-max-value-bytes 0 still truncates")
		}

		// Flags may follow the ID.
		var s sessionJSON
		must(t, json.Unmarshal([]byte(mustInspect(t, "session", "call-1", "-json")), &s))
		if s.Status != "resident" || s.Owner == nil || s.Owner.Node != "inspect-a" || s.Owner.Epoch != 1 || !s.Owner.LeaseLive || s.Owner.ClaimedAt.IsZero() {
			t.Fatalf("session -json = %+v (owner %+v)", s, s.Owner)
		}
		want := map[string][]byte{"caller": []byte("sip:alice@example.com"), "codec": binary, "long": long, "note": []byte("héllo\nworld")}
		if len(s.Items) != len(want) {
			t.Fatalf("session -json has %d items, want %d", len(s.Items), len(want))
		}
		for _, it := range s.Items {
			if !bytes.Equal(it.Value, want[it.Key]) || it.Size != len(want[it.Key]) {
				t.Errorf("item %q = %q (size %d), want %q", it.Key, it.Value, it.Size, want[it.Key])
			}
			if (it.Text == nil) != (it.Key == "codec") {
				t.Errorf("item %q: text %v; want text exactly for valid UTF-8", it.Key, it.Text)
			}
		}
	})

	t.Run("owned", func(t *testing.T) {
		out := mustInspect(t, "owned", "inspect-a")
		contains(t, "owned", out, `"call-1"`, `"call-2"`, `2 sessions listed under node "inspect-a"`, "-verify")
		out = mustInspect(t, "owned", "-limit", "1", "inspect-a")
		contains(t, "owned -limit 1", out, `1 session listed under node "inspect-a" (stopped at -limit 1; more exist)`)
		var o ownedJSON
		must(t, json.Unmarshal([]byte(mustInspect(t, "owned", "-json", "-limit", "1", "inspect-a")), &o))
		if len(o.Sessions) != 1 || !o.Truncated {
			t.Errorf("owned -json -limit 1 = %+v", o)
		}
		contains(t, "owned of an unknown node", mustInspect(t, "owned", "nobody"), `lists no sessions under node "nobody"`)
	})

	t.Run("not found", func(t *testing.T) {
		out, errOut, code := runInspect(t, "session", "no-such-call")
		if code != exitFailure || out != "" {
			t.Errorf("session of an unknown ID: exit %d, stdout %q; want 1 and nothing", code, out)
		}
		contains(t, "stderr", errOut, `session "no-such-call" not found in keyspace "`+ks+`"`)
	})

	// A graceful shutdown releases the sessions; a peer then adopts one.
	if _, err := nodeA.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	contains(t, "session after release", mustInspect(t, "session", "call-1"),
		"status      released: its owner shut down gracefully", "released    true\n")

	nodeB := openNode(t, cfg, "inspect-b")
	if _, err := nodeB.Adopt(context.Background(), "call-1"); err != nil {
		t.Fatal(err)
	}
	contains(t, "session after adoption", mustInspect(t, "session", "call-1"),
		"status      resident", "owner       inspect-b (lease live", "epoch       2\n", "released    false\n")

	// A stale index entry: -verify flags it.
	must(t, cassandratest.Session(t, ks).Query(
		`INSERT INTO owner_index (owner, session, epoch) VALUES ('inspect-a', 'ghost', 1) USING TTL 3600`).Exec())
	var o ownedJSON
	must(t, json.Unmarshal([]byte(mustInspect(t, "owned", "-verify", "-json", "inspect-a")), &o))
	for _, e := range o.Sessions {
		if e.Current == nil {
			t.Fatalf("owned -verify -json: entry %q has no current row", e.Session)
		}
		wantStale := e.Session != "call-2" // call-1 moved to inspect-b (if its entry is still listed), ghost has no row
		if e.Current.Stale != wantStale {
			t.Errorf("owned -verify: %q stale = %v, want %v (%+v)", e.Session, e.Current.Stale, wantStale, e.Current)
		}
	}
	contains(t, "owned -verify", mustInspect(t, "owned", "-verify", "inspect-a"),
		`"ghost"`, "stale: no ownership row", `"call-2"`, "ok (released)")

	// The tool itself never shows up as a node.
	var ls []leaseJSON
	must(t, json.Unmarshal([]byte(mustInspect(t, "leases", "-json")), &ls))
	for _, l := range ls {
		if l.Node != "inspect-a" && l.Node != "inspect-b" {
			t.Errorf("lease of %q: the inspection tool took a lease", l.Node)
		}
	}

	// An ended session keeps its ownership row, ended and nobody's.
	must(t, nodeB.End("call-1"))
	flushAll(t, nodeB)
	contains(t, "session after End", mustInspect(t, "session", "call-1"),
		"status      ended: nobody owns it", "owner       (none: the session ended at claimed_at)", "epoch       3\n", "items       0 (")
	var s sessionJSON
	must(t, json.Unmarshal([]byte(mustInspect(t, "session", "-json", "call-1")), &s))
	if s.Status != "ended" || s.Owner == nil || s.Owner.Node != "" || s.Owner.LeaseLive || len(s.Items) != 0 {
		t.Errorf("session -json after End = %+v (owner %+v)", s, s.Owner)
	}
}

func TestInspectMissingKeyspace(t *testing.T) {
	cassandratest.Keyspace(t) // Cassandra is up
	useKeyspace(t, "holdover_inspect_absent")
	_, errOut, code := runInspect(t, "session", "call-1")
	if code != exitFailure {
		t.Errorf("session on a missing keyspace: exit %d, want 1", code)
	}
	contains(t, "stderr", errOut, `keyspace "holdover_inspect_absent" does not exist on `)
	contains(t, "version", mustInspect(t, "version"), "holdover_inspect_absent: absent")
	// Inspection never creates the schema, even with HOLDOVER_CREATE_SCHEMA=true.
	t.Setenv("HOLDOVER_CREATE_SCHEMA", "true")
	_, _, _ = runInspect(t, "leases")
	contains(t, "version after leases", mustInspect(t, "version"), "holdover_inspect_absent: absent")
}

func TestInspectUsageAndConfigErrors(t *testing.T) {
	useKeyspace(t, "holdover_inspect_unused")
	for _, args := range [][]string{
		{},
		{"bogus"},
		{"session"},
		{"session", "a", "b"},
		{"session", ""},
		{"session", "-max-value-bytes", "-1", "a"},
		{"session", "-nope", "a"},
		{"leases", "extra"},
		{"owned"},
		{"owned", "-limit", "-3", "n"},
		{"version", "x"},
		{"-timeout", "0s", "version"},
		{"-bogus", "version"},
	} {
		out, errOut, code := runInspect(t, args...)
		if code != exitUsage || out != "" || !strings.Contains(errOut, "usage: "+progName) && !strings.Contains(errOut, "-timeout") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing, a usage message", args, code, out, errOut)
		}
	}
	for _, args := range [][]string{{"-h"}, {"help"}, {"session", "-h"}} {
		out, _, code := runInspect(t, args...)
		if code != exitOK || !strings.Contains(out, "usage: "+progName) {
			t.Errorf("%q: exit %d, stdout %q; want 0 and the usage", args, code, out)
		}
	}

	// Every configuration problem is reported at once, before any connection.
	t.Setenv("HOLDOVER_FLUSH_DELAY", "0s")
	t.Setenv("HOLDOVER_CASSANDRA_PORT", "x")
	t.Setenv("HOLDOVER_PASSWORD", "s3cret")
	out, errOut, code := runInspect(t, "leases")
	if code != exitUsage || out != "" {
		t.Errorf("invalid configuration: exit %d, stdout %q; want 2 and nothing", code, out)
	}
	contains(t, "stderr", errOut, "invalid configuration (3 problems", "HOLDOVER_FLUSH_DELAY", "HOLDOVER_CASSANDRA_PORT", "HOLDOVER_PASSWORD")
	if strings.Contains(errOut, "s3cret") {
		t.Errorf("the password leaked into the error output:\n%s", errOut)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseFlagsInterspersed(t *testing.T) {
	for _, c := range []struct {
		args    []string
		pos     []string
		asJSON  bool
		limit   int
		wantErr bool
	}{
		{args: []string{"n"}, pos: []string{"n"}, limit: 100},
		{args: []string{"n", "-json", "-limit", "5"}, pos: []string{"n"}, asJSON: true, limit: 5},
		{args: []string{"-limit=7", "a", "-json", "b"}, pos: []string{"a", "b"}, asJSON: true, limit: 7},
		{args: []string{"-json", "--", "-odd-id", "-limit"}, pos: []string{"-odd-id", "-limit"}, asJSON: true, limit: 100},
		{args: []string{"a", "-nope"}, wantErr: true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		asJSON := fs.Bool("json", false, "")
		limit := fs.Int("limit", 100, "")
		pos, err := parseFlags(fs, c.args)
		if (err != nil) != c.wantErr {
			t.Errorf("%q: err %v, want error %v", c.args, err, c.wantErr)
			continue
		}
		if err == nil && (!slices.Equal(pos, c.pos) || *asJSON != c.asJSON || *limit != c.limit) {
			t.Errorf("%q: positional %q json %v limit %d; want %q %v %d", c.args, pos, *asJSON, *limit, c.pos, c.asJSON, c.limit)
		}
	}
}

func TestQuote(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		max  int
		want string
	}{
		{[]byte("plain"), 0, `"plain"`},
		{[]byte("héllo\nworld"), 0, `"héllo\nworld"`},
		{[]byte{0, 0xff, 'a'}, 0, `"\x00\xffa"`},
		{[]byte("abcdef"), 4, `"abcd"... (2 more bytes)`},
		{[]byte("abcde"), 4, `"abcd"... (1 more byte)`},
		{[]byte("abcd"), 4, `"abcd"`},
	} {
		if got := quote(c.in, c.max); got != c.want {
			t.Errorf("quote(%q, %d) = %s, want %s", c.in, c.max, got, c.want)
		}
	}
}
