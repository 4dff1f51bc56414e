//go:build secure

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// The inspector works over TLS with the nodes' least-privilege role (the
// README's grants), and with a role that may only read the keyspace.
func TestSecureInspectLeastPrivilege(t *testing.T) {
	n := cassandratest.Secure(t)
	ks := n.Keyspace(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The operator creates the schema (a superuser, HOLDOVER_CREATE_SCHEMA=true).
	base := adapter.DefaultConfig()
	base.Hosts, base.Port, base.Keyspace = n.Hosts, n.Port, ks
	base.TLSCAFile, base.TLSCertFile, base.TLSKeyFile = n.File("ca.pem"), n.File("client.pem"), n.File("client-key.pem")
	base.FlushDelay, base.LeaseTTL = 10*time.Millisecond, 5*time.Second
	op := base
	op.NodeID, op.Username, op.Password = "operator", n.AdminUser, n.AdminPassword
	a, err := adapter.Open(ctx, op)
	if err != nil {
		t.Fatalf("create the schema as the operator: %v", err)
	}
	if _, err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// A node writes a session with the least-privilege role.
	const appPassword, readerPassword = "Inspect-app-Pa55", "Inspect-reader-Pa55"
	app := n.Role(t, appPassword)
	for _, g := range cassandratest.READMEGrants(t, ks, app) {
		n.Exec(t, g)
	}
	dir := t.TempDir()
	appFile := filepath.Join(dir, "app")
	must(t, os.WriteFile(appFile, []byte(appPassword), 0o600))
	node := base
	node.NodeID, node.CreateSchema, node.Username, node.PasswordFile = "secure-a", false, app, appFile
	a, err = adapter.Open(ctx, node)
	if err != nil {
		t.Fatalf("open the node with the least-privilege role: %v", err)
	}
	t.Cleanup(func() { _, _ = a.Close(context.Background()) })
	must(t, a.Commit("call-1", adapter.Change{Key: "caller", Value: []byte("sip:alice@example.com")}))
	must(t, a.Flush(ctx))

	// A role that may only read the keyspace.
	reader := n.Role(t, readerPassword)
	n.Exec(t, fmt.Sprintf("GRANT SELECT ON KEYSPACE %s TO %s", ks, reader))
	readerFile := filepath.Join(dir, "reader")
	must(t, os.WriteFile(readerFile, []byte(readerPassword), 0o600))

	for _, who := range []struct{ role, file string }{{app, appFile}, {reader, readerFile}} {
		t.Run(who.role, func(t *testing.T) {
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "HOLDOVER_") {
					t.Setenv(k, "")
					os.Unsetenv(k)
				}
			}
			for k, v := range map[string]string{
				"HOLDOVER_CASSANDRA_HOSTS": strings.Join(n.Hosts, ","),
				"HOLDOVER_CASSANDRA_PORT":  strconv.Itoa(n.Port),
				"HOLDOVER_KEYSPACE":        ks,
				"HOLDOVER_TLS_CA_FILE":     n.File("ca.pem"),
				"HOLDOVER_TLS_CERT_FILE":   n.File("client.pem"),
				"HOLDOVER_TLS_KEY_FILE":    n.File("client-key.pem"),
				"HOLDOVER_USERNAME":        who.role,
				"HOLDOVER_PASSWORD_FILE":   who.file,
			} {
				t.Setenv(k, v)
			}
			contains(t, "version", mustInspect(t, "version"), "release_version  5.", "keyspace         "+ks+": present")
			contains(t, "leases", mustInspect(t, "leases"), "secure-a", "1 live lease\n")
			contains(t, "session", mustInspect(t, "session", "call-1"), "owner       secure-a (lease live, ", `"caller"`)
			contains(t, "owned", mustInspect(t, "owned", "-verify", "secure-a"), "call-1")
		})
	}
}
