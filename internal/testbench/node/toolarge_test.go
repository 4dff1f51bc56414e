package node

import (
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// An event whose change alone exceeds its family's max= can never be
// accepted: it is answered 400 with the limit and the variable, as other
// limits are. It used to be 503 with Retry-After, which told the client to
// retry a request that fails the same way forever.
func TestAChangeOverItsFamilyMaxIsBadInput(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "node-a", cassandratest.Keyspace(t))
	if err := cfg.Families.UnmarshalText([]byte("call:max=1KiB")); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, cfg)
	a.must("call:x", `{"type":"create"}`)
	flushNode(t, a)
	r := a.event("call:x", `{"type":"update","attrs":{"k":"`+strings.Repeat("v", 2000)+`"}}`)
	if r.Status != 400 || r.Body["var"] != "HOLDOVER_FAMILIES max=" || r.Body["limit"] != float64(1024) {
		t.Fatalf("change alone over the family's max=: %d (Retry-After %q) %s; want 400 with limit 1024 and var HOLDOVER_FAMILIES max=",
			r.Status, r.Header.Get("Retry-After"), r.Raw)
	}
}
