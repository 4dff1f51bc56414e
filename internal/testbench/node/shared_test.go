package node

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// testFamilies are the families of the shared-family tests: reg's changes
// wait 5 s (Close writes them), settings are shared and re-read every 200 ms.
const testFamilies = "reg:delay=5s,ttl=1h;settings:shared,refresh=200ms"

// familyConfig is testConfig with testFamilies.
func familyConfig(t *testing.T, id, keyspace string) adapter.Config {
	t.Helper()
	cfg := testConfig(t, id, keyspace)
	if err := cfg.Families.UnmarshalText([]byte(testFamilies)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// values returns the "values" of a shared session's reply.
func values(r reply) map[string]string {
	out := map[string]string{}
	m, _ := r.Body["values"].(map[string]any)
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

// converge polls GET path on tn until its values are want, and returns how
// long that took; it fails the test after within.
func converge(t *testing.T, tn *testNode, path string, want map[string]string, within time.Duration) time.Duration {
	t.Helper()
	t0 := time.Now()
	for {
		r := tn.get(path)
		if r.Status == http.StatusOK && maps.Equal(values(r), want) {
			return time.Since(t0)
		}
		if time.Since(t0) > within {
			t.Fatalf("%s on %s: %d %s after %v; want values %v", path, tn.NodeID(), r.Status, r.Raw, within, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Two nodes with a shared family converge through the HTTP API: a write
// through one is served by the other within its flush delay and one re-read,
// in both directions, deletes and ends included; each node logs and counts
// what it saw the other change. The owned family's sessions work as any
// session, adoption included.
func TestSharedFamilyConvergesAcrossNodes(t *testing.T) {
	t.Parallel()
	ks := cassandratest.Keyspace(t)
	a := startNode(t, familyConfig(t, "node-a", ks))
	var logs syncBuffer
	b := startNodeWith(t, familyConfig(t, "node-b", ks), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// A write is seen within the flush delay (20 ms) and a refresh (200 ms);
	// the rest is a loaded machine's slack.
	const within = 5 * time.Second

	// A's write: A's own view shows it at once, B's after a re-read.
	r := a.do("PUT", "/v1/shared/settings:greeting", `{"set":{"text":"hello","lang":"en"}}`)
	want := map[string]string{"text": "hello", "lang": "en"}
	if r.Status != 200 || r.str("session") != "settings:greeting" || r.str("node") != "node-a" || !maps.Equal(values(r), want) {
		t.Fatalf("PUT through A: %d %s", r.Status, r.Raw)
	}
	took := converge(t, b, "/v1/shared/settings:greeting", want, within)
	t.Logf("B served A's write after %v", took)
	if r := b.get("/v1/shared/settings:greeting"); r.str("node") != "node-b" {
		t.Fatalf("GET on B: %s", r.Raw)
	}

	// B's write, a set and a delete in one, travels back.
	r = b.do("PUT", "/v1/shared/settings:greeting", `{"set":{"text":"bonjour"},"delete":["lang"]}`)
	want = map[string]string{"text": "bonjour"}
	if r.Status != 200 || !maps.Equal(values(r), want) {
		t.Fatalf("PUT through B: %d %s", r.Status, r.Raw)
	}
	converge(t, a, "/v1/shared/settings:greeting", want, within)
	b.do("PUT", "/v1/shared/settings:other", `{"set":{"k":"v"}}`)
	converge(t, a, "/v1/shared/settings:other", map[string]string{"k": "v"}, within)
	if l := a.get("/v1/shared?family=settings"); l.Status != 200 || l.str("family") != "settings" || !strings.Contains(l.Raw, `"sessions":["settings:greeting","settings:other"]`) {
		t.Fatalf("list on A: %d %s", l.Status, l.Raw)
	}

	// A's end deletes every key, on both.
	if r := a.do("DELETE", "/v1/shared/settings:greeting", ""); r.Status != 200 || len(values(r)) != 0 {
		t.Fatalf("DELETE through A: %d %s", r.Status, r.Raw)
	}
	converge(t, b, "/v1/shared/settings:greeting", map[string]string{}, within)
	if l := b.get("/v1/shared?family=settings"); !strings.Contains(l.Raw, `"sessions":["settings:other"]`) {
		t.Fatalf("list on B after the end: %s", l.Raw)
	}

	// B saw A change 2 keys, then end the session (2 keys gone... or 1, as
	// B's own delete of lang landed first): logged and counted by family.
	m := b.get("/metrics").Raw
	if !regexp.MustCompile(`holdover_node_shared_changes_total\{family="settings"\} [1-9]`).MatchString(m) {
		t.Errorf("B's metrics lack the shared changes:\n%s", grepLines(m, "shared"))
	}
	if !regexp.MustCompile(`level=INFO msg="shared family changed by other nodes" family=settings changes=[1-9]`).MatchString(logs.String()) {
		t.Errorf("B's log lacks the shared changes:\n%s", logs.String())
	}

	// The families in GET /v1/info: the variable and each family's figures.
	a.must("reg:alice", `{"type":"create","attrs":{"contact":"sip:alice@10.0.0.1"}}`)
	a.must("reg:alice", `{"type":"append","entry":"REGISTER"}`)
	i := a.get("/v1/info")
	if i.str("families") != testFamilies {
		t.Fatalf("info families %q, want %q", i.str("families"), testFamilies)
	}
	fams, _ := i.Body["family_stats"].([]any)
	var names []string
	for _, f := range fams {
		f := f.(map[string]any)
		names = append(names, f["name"].(string))
		switch f["name"] {
		case "":
			if f["flush_delay_ms"] != 20.0 || f["shared"] != false {
				t.Errorf("info: sessions of no family %v", f)
			}
		case "reg":
			// Its 5 s delay keeps reg:alice pending.
			if f["flush_delay_ms"] != 5000.0 || f["pending_sessions"] != 1.0 || f["oldest_pending_age_ms"].(float64) <= 0 || f["overloaded"] != false {
				t.Errorf("info: reg %v", f)
			}
		case "settings":
			if f["shared"] != true || f["flush_delay_ms"] != 20.0 {
				t.Errorf("info: settings %v", f)
			}
		}
	}
	if !slices.Equal(names, []string{"", "reg", "settings"}) {
		t.Fatalf("info family_stats %v: %s", names, i.Raw)
	}

	// reg:alice is an owned session like any: A closes (writing it), B
	// adopts it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if rep, err := a.Close(ctx); err != nil || rep.Released != 1 || len(rep.Unwritten.Sessions) != 0 {
		t.Fatalf("close A: %+v %v", rep, err)
	}
	r = b.must("reg:alice", `{"type":"append","entry":"REGISTER refresh"}`)
	g := b.get("/v1/sessions/reg:alice")
	if r.Body["adopted"] != true || r.num("version") != 3 || g.Body["attrs"].(map[string]any)["contact"] != "sip:alice@10.0.0.1" || len(g.Body["history"].([]any)) != 2 {
		t.Fatalf("reg:alice on B: %s / %s", r.Raw, g.Raw)
	}
	// And A's shared writes outlive it.
	if r := b.get("/v1/shared/settings:other"); !maps.Equal(values(r), map[string]string{"k": "v"}) {
		t.Fatalf("settings:other on B after A closed: %s", r.Raw)
	}
}

// Malformed shared writes, and sessions on the wrong side of the shared
// line, are refused with 400 naming the field (or the adapter's reason), and
// change nothing.
func TestSharedBadInput(t *testing.T) {
	t.Parallel()
	cfg := familyConfig(t, "node-a", cassandratest.Keyspace(t))
	cfg.MaxSessionIDBytes, cfg.MaxKeyBytes, cfg.MaxValueBytes = 20, 32, 64
	a := startNode(t, cfg)
	long := func(n int) string { return strings.Repeat("x", n) }
	const path = "/v1/shared/settings:s"
	cases := []struct {
		name, method, path, body string
		fragments                []string
	}{
		{"malformed JSON", "PUT", path, `{"set":`, []string{"malformed JSON"}},
		{"not an object", "PUT", path, `["k"]`, []string{"malformed JSON"}},
		{"a value not a string", "PUT", path, `{"set":{"k":1}}`, []string{"malformed JSON", "set"}},
		{"set not an object", "PUT", path, `{"set":["k"]}`, []string{"malformed JSON", "set"}},
		{"delete not an array", "PUT", path, `{"delete":"k"}`, []string{"malformed JSON", "delete"}},
		{"unknown field", "PUT", path, `{"sett":{"k":"v"}}`, []string{`unknown field "sett"`}},
		{"nested too deep", "PUT", path, `{"set":{"k":{"x":"y"}}}`, []string{"nested over the limit of 2 levels", "shared write"}},
		{"trailing data", "PUT", path, `{"set":{"k":"v"}} {}`, []string{"data after the shared write object"}},
		{"empty", "PUT", path, `{}`, []string{"needs set", "or delete"}},
		{"empty set", "PUT", path, `{"set":{}}`, []string{"needs set", "or delete"}},
		{"empty key in set", "PUT", path, `{"set":{"":"v"}}`, []string{"set: key is empty", "HOLDOVER_MAX_KEY_BYTES"}},
		{"empty key in delete", "PUT", path, `{"delete":[""]}`, []string{"delete: key is empty", "HOLDOVER_MAX_KEY_BYTES"}},
		{"long key in set", "PUT", path, `{"set":{"` + long(33) + `":"v"}}`, []string{"set: key", "33 bytes", "limit of 32", "HOLDOVER_MAX_KEY_BYTES"}},
		{"long key in delete", "PUT", path, `{"delete":["` + long(33) + `"]}`, []string{"delete: key", "33 bytes", "HOLDOVER_MAX_KEY_BYTES"}},
		{"long value", "PUT", path, `{"set":{"k":"` + long(65) + `"}}`, []string{`set: value of key "k" is 65 bytes`, "limit of 64", "HOLDOVER_MAX_VALUE_BYTES"}},
		{"set and delete one key", "PUT", path, `{"set":{"k":"v"},"delete":["k"]}`, []string{`key "k" is in both set and delete`}},
		{"long session ID", "PUT", "/v1/shared/settings:" + long(12), `{"set":{"k":"v"}}`, []string{"session ID is 21 bytes", "HOLDOVER_MAX_SESSION_ID_BYTES"}},
		{"empty session ID", "PUT", "/v1/shared/", `{"set":{"k":"v"}}`, []string{"session ID is empty"}},
		// The adapter's refusals, its message passed on.
		{"write of an owned family", "PUT", "/v1/shared/reg:alice", `{"set":{"k":"v"}}`, []string{`session "reg:alice" is not in a shared family`}},
		{"write of no family", "PUT", "/v1/shared/alice", `{"set":{"k":"v"}}`, []string{`session "alice" is not in a shared family`}},
		{"read of no family", "GET", "/v1/shared/alice", "", []string{"not in a shared family"}},
		{"end of an owned family", "DELETE", "/v1/shared/reg:alice", "", []string{"not in a shared family"}},
		{"list of an owned family", "GET", "/v1/shared?family=reg", "", []string{`"reg" is not a shared family`}},
		{"list without a family", "GET", "/v1/shared", "", []string{"family is required"}},
		{"list with another parameter", "GET", "/v1/shared?family=settings&x=1", "", []string{`unknown query parameter "x"`}},
		{"event of a shared session", "POST", "/v1/sessions/settings:s/events", `{"type":"create"}`, []string{`shared family "settings"`}},
		{"read of a shared session", "GET", "/v1/sessions/settings:s?adopt=true", "", []string{`shared family "settings"`}},
	}
	for _, c := range cases {
		expect(t, c.name, a.do(c.method, c.path, c.body), 400, c.fragments...)
	}
	if r := a.do("PUT", path, `{"set":{"`+long(33)+`":"v"}}`); r.str("var") != "HOLDOVER_MAX_KEY_BYTES" || r.num("limit") != 32 {
		t.Errorf("a key over the limit without var and limit: %s", r.Raw)
	}
	// At the limits exactly, a write is accepted.
	if r := a.do("PUT", path, `{"set":{"`+long(32)+`":"`+long(64)+`"}}`); r.Status != 200 {
		t.Fatalf("write at the limits: %d %s", r.Status, r.Raw)
	}
	// None of the refused writes touched anything.
	if r := a.get(path); r.Status != 200 || len(values(r)) != 1 {
		t.Fatalf("%s after refused writes: %s", path, r.Raw)
	}
	if r := a.get("/v1/shared?family=settings"); !strings.Contains(r.Raw, `"sessions":["settings:s"]`) {
		t.Fatalf("list after refused writes: %s", r.Raw)
	}
	if a.Table().Len() != 0 {
		t.Fatalf("%d sessions resident, want none", a.Table().Len())
	}
}

// grepLines returns the lines of s containing sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
