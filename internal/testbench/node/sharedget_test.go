package node

import (
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A GET of a shared family's session is refused (400, naming its family),
// with or without ?adopt=true: without it, it answered 404 "not resident",
// as if the session could be resident here. Found by review.
func TestAGetOfASharedSessionNamesItsFamily(t *testing.T) {
	a := startNode(t, familyConfig(t, "shared-get-a", cassandratest.Keyspace(t)))
	a.do("PUT", "/v1/shared/settings:s", `{"set":{"k":"v"}}`)
	expect(t, "GET /v1/sessions of a shared session", a.get("/v1/sessions/settings:s"), 400, `shared family "settings"`)
	expect(t, "GET /v1/sessions?adopt=true of a shared session", a.get("/v1/sessions/settings:s?adopt=true"), 400, `shared family "settings"`)
}
