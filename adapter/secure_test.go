//go:build secure

// The adapter against a secured Cassandra: client TLS with client
// certificates required, PasswordAuthenticator and CassandraAuthorizer
// (cassandratest.Secure). Run by `make test-secure`, which `make test` calls;
// the tests fail, never skip, when the secured node cannot start.
package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// writeSecret writes a password file of mode 0600 and returns its path.
func writeSecret(t *testing.T, dir, password string) string {
	t.Helper()
	p := filepath.Join(dir, "password")
	if err := os.WriteFile(p+".tmp", []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil { // atomic, as Kubernetes updates a secret
		t.Fatal(err)
	}
	return p
}

// secureConfig is a configuration for the secured node: server verified with
// ca.pem, client certificate client.pem, the given credentials, schema
// managed by the operator.
func secureConfig(n cassandratest.SecureNode, keyspace, node, user, passwordFile string) adapter.Config {
	cfg := adapter.DefaultConfig()
	cfg.Hosts, cfg.Port, cfg.Keyspace, cfg.NodeID = n.Hosts, n.Port, keyspace, node
	cfg.CreateSchema = false
	cfg.TLSCAFile, cfg.TLSCertFile, cfg.TLSKeyFile = n.File("ca.pem"), n.File("client.pem"), n.File("client-key.pem")
	cfg.Username, cfg.PasswordFile = user, passwordFile
	cfg.ConnectTimeout = 5 * time.Second
	cfg.FlushDelay = 20 * time.Millisecond
	cfg.LeaseTTL = 3 * time.Second
	cfg.MaxWindow = time.Minute // a loaded machine may hold a flush; not what these tests are about
	return cfg
}

func openSecure(t *testing.T, cfg adapter.Config, opts ...adapter.Option) *adapter.Adapter {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, err := adapter.Open(ctx, cfg, opts...)
	if err != nil {
		t.Fatalf("open node %s: %v", cfg.NodeID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = a.Close(ctx)
	})
	return a
}

// operatorSchema creates the adapter's tables in keyspace as the operator (a
// superuser), the way an operator runs the adapter once with
// HOLDOVER_CREATE_SCHEMA=true, and closes that adapter again.
func operatorSchema(t *testing.T, n cassandratest.SecureNode, keyspace string) {
	t.Helper()
	cfg := secureConfig(n, keyspace, "operator", n.AdminUser, "")
	cfg.Password = n.AdminPassword
	cfg.CreateSchema = true
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := adapter.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("create the schema as the operator: %v", err)
	}
	if _, err := a.Close(ctx); err != nil {
		t.Fatalf("close the operator's adapter: %v", err)
	}
}

// TLS: the server verified and not, mutual TLS, and each certificate the
// node or the client must refuse.
func TestSecureTLS(t *testing.T) {
	n := cassandratest.Secure(t)
	ks := n.Keyspace(t)
	operatorSchema(t, n, ks)
	const password = "Tls-role-Pa55"
	role := n.Role(t, password)
	for _, g := range cassandratest.READMEGrants(t, ks, role) {
		n.Exec(t, g)
	}
	pw := writeSecret(t, t.TempDir(), password)

	ok := []struct {
		name string
		set  func(c *adapter.Config)
	}{
		{"verified by IP address", func(c *adapter.Config) {}},
		{"verified by server name", func(c *adapter.Config) { c.TLSServerName = n.ServerName }},
		// Verification off: a CA that signed nothing there and a name the
		// certificate lacks are both accepted.
		{"verification off", func(c *adapter.Config) {
			c.TLSInsecureSkipVerify, c.TLSCAFile, c.TLSServerName = true, n.File("other-ca.pem"), "wrong.holdover.test"
		}},
	}
	for i, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureConfig(n, ks, "tls-ok", role, pw)
			tc.set(&cfg)
			a := openSecure(t, cfg)
			// A session of its own: the case before this one, under the
			// same node ID, stored its own, and a create over a session this
			// node stored earlier is refused (adopt it first).
			session := fmt.Sprintf("tls-session-%d", i)
			if err := a.Commit(session, adapter.Change{Key: "k", Value: []byte(tc.name)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := a.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			s, err := a.Peek(ctx, session)
			if err != nil || string(s.Map()["k"]) != tc.name {
				t.Fatalf("peek after flush: %+v, %v; want k=%q", s, err, tc.name)
			}
			// The node itself says the connection is TLS, logged in as the role.
			var tlsConns int
			iter := n.Admin(t).Query(`SELECT ssl_enabled FROM system_views.clients WHERE username = ? ALLOW FILTERING`, role).Iter()
			for on := false; iter.Scan(&on); {
				if !on {
					t.Errorf("system_views.clients lists a connection of %s without TLS", role)
				}
				tlsConns++
			}
			if err := iter.Close(); err != nil || tlsConns == 0 {
				t.Fatalf("system_views.clients: %d TLS connections of %s, %v; want some", tlsConns, role, err)
			}
			_, _ = a.Close(ctx)
			if err := a.Commit(session, adapter.Change{Key: "k", Value: []byte("x")}); !errors.Is(err, adapter.ErrClosed) {
				t.Fatalf("commit after close: %v", err)
			}
		})
	}

	// The server refuses a client certificate after the TLS 1.3 handshake;
	// the driver then reports the alert, or sometimes a timeout that the
	// store completes with a probe's "a TLS probe of host:port: <alert>".
	refused := []struct {
		name  string
		set   func(c *adapter.Config)
		wants []string
	}{
		{"wrong CA", func(c *adapter.Config) { c.TLSCAFile = n.File("other-ca.pem") },
			[]string{"tls: failed to verify certificate: x509: certificate signed by unknown authority"}},
		{"wrong host name", func(c *adapter.Config) { c.TLSServerName = "wrong.holdover.test" },
			[]string{"x509: certificate is valid for " + n.ServerName + ", not wrong.holdover.test"}},
		{"no client certificate", func(c *adapter.Config) { c.TLSCertFile, c.TLSKeyFile = "", "" },
			[]string{"remote error: tls: certificate required", "(the cluster requires a client certificate (require_client_auth); give one)"}},
		{"client certificate of another CA", func(c *adapter.Config) {
			c.TLSCertFile, c.TLSKeyFile = n.File("other-client.pem"), n.File("other-client-key.pem")
		}, []string{"remote error: tls: certificate required", "(the cluster refused the client certificate: it must be signed by a CA in the cluster's truststore)"}},
		{"expired client certificate", func(c *adapter.Config) {
			c.TLSCertFile, c.TLSKeyFile = n.File("expired-client.pem"), n.File("expired-client-key.pem")
		}, []string{"remote error: tls: expired certificate", "(the cluster refused the client certificate: it has expired)"}},
		{"no TLS", func(c *adapter.Config) { c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = "", "", "" },
			[]string{"connection reset by peer (the cluster closed the connection at once: if it requires TLS (client_encryption_options), turn TLS on)"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cfg := secureConfig(n, ks, "tls-refused", role, pw)
			tc.set(&cfg)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, err := adapter.Open(ctx, cfg)
			if err == nil {
				_, _ = a.Close(ctx)
				t.Fatal("Open succeeded; want a refusal")
			}
			for _, w := range append(tc.wants, "holdover: open cassandra store: cassandra connect:") {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// Authentication: a wrong password is refused without showing it; a rotated
// password file is used by the connections opened after it changed, in the
// same process, with the same Config.
func TestSecurePassword(t *testing.T) {
	n := cassandratest.Secure(t)
	ks := n.Keyspace(t)
	operatorSchema(t, n, ks)
	const first, second = "First-Pa55word", "Second-Pa55word"
	role := n.Role(t, first)
	for _, g := range cassandratest.READMEGrants(t, ks, role) {
		n.Exec(t, g)
	}
	dir := t.TempDir()
	pw := writeSecret(t, dir, first)
	cfg := secureConfig(n, ks, "auth-a", role, pw)

	t.Run("wrong password", func(t *testing.T) {
		for name, c := range map[string]adapter.Config{
			"HOLDOVER_PASSWORD": func() adapter.Config {
				c := cfg
				c.PasswordFile, c.Password = "", "Not-the-Pa55word"
				return c
			}(),
			"HOLDOVER_PASSWORD_FILE": func() adapter.Config {
				c := cfg
				c.PasswordFile = writeSecret(t, t.TempDir(), "Not-the-Pa55word")
				return c
			}(),
		} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			a, err := adapter.Open(ctx, c)
			cancel()
			if err == nil {
				_, _ = a.Close(context.Background())
				t.Fatalf("%s: Open succeeded with a wrong password", name)
			}
			want := fmt.Sprintf("Provided username %s and/or password are incorrect", role)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q lacks %q", name, err, want)
			}
			if strings.Contains(err.Error(), "Pa55word") || strings.Contains(fmt.Sprintf("%v %+v %#v", c, c, c), "Pa55word") {
				t.Errorf("%s: the password shows in the error or the configuration: %v", name, err)
			}
			t.Logf("%s: %v", name, err)
		}
	})

	t.Run("rotation", func(t *testing.T) {
		a := openSecure(t, cfg)
		// The operator rotates the role's password; the secret file is
		// updated (atomically, as Kubernetes does) after Cassandra.
		// Cassandra refuses a role's password change within 5 s of the last
		// (of its creation here): retry until it takes.
		alter := fmt.Sprintf("ALTER ROLE %s WITH PASSWORD = '%s'", role, second)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
			err := n.Admin(t).Query(alter).Exec()
			if err == nil {
				break
			}
			if !strings.Contains(err.Error(), "can only be changed every") || time.Now().After(deadline) {
				t.Fatalf("ALTER ROLE %s: %v", role, err)
			}
		}
		cfgB := cfg
		cfgB.NodeID = "auth-b"
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if b, err := adapter.Open(ctx, cfgB); err == nil {
			_, _ = b.Close(ctx)
			t.Fatal("a new connection logged in with the old password after ALTER ROLE")
		} else if strings.Contains(err.Error(), first) {
			t.Fatalf("error shows the password: %v", err)
		}
		writeSecret(t, dir, second)
		b := openSecure(t, cfgB) // the same Config, the new password
		// The connections a opened with the old password stay logged in.
		for i, x := range []*adapter.Adapter{a, b} {
			id := fmt.Sprintf("rotated-%d", i)
			if err := x.Commit(id, adapter.Change{Key: "k", Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			if err := x.Flush(ctx); err != nil {
				t.Fatalf("flush of %s after rotation: %v", x.NodeID(), err)
			}
			if s, err := b.Peek(ctx, id); err != nil || string(s.Map()["k"]) != "v" {
				t.Fatalf("peek %s: %+v, %v", id, s, err)
			}
		}
	})
}

// The adapter's role holds exactly the README's grants (SELECT and MODIFY on
// its keyspace) and every feature works with it: commit and flush, TTL
// renewal, adoption and fencing, bulk takeover, ending, release on close.
func TestSecureLeastPrivilege(t *testing.T) {
	n := cassandratest.Secure(t)
	ks := n.Keyspace(t)
	operatorSchema(t, n, ks)
	const password = "Least-Pa55"
	role := n.Role(t, password)
	for _, g := range cassandratest.READMEGrants(t, ks, role) {
		n.Exec(t, g)
	}
	perms := n.Permissions(t, role)
	slices.Sort(perms)
	want := []string{fmt.Sprintf("MODIFY on <keyspace %s>", ks), fmt.Sprintf("SELECT on <keyspace %s>", ks)}
	if !slices.Equal(perms, want) {
		t.Fatalf("LIST ALL PERMISSIONS OF %s = %q, want exactly %q", role, perms, want)
	}
	pw := writeSecret(t, t.TempDir(), password)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Creating the schema needs more than the role holds: refused, naming
	// the permission.
	cfg := secureConfig(n, ks, "lp-schema", role, pw)
	cfg.CreateSchema = true
	if a, err := adapter.Open(ctx, cfg); err == nil {
		_, _ = a.Close(ctx)
		t.Fatal("HOLDOVER_CREATE_SCHEMA=true succeeded with a role holding only SELECT and MODIFY")
	} else if !strings.Contains(err.Error(), "has no CREATE permission") {
		t.Fatalf("schema creation refused with %v; want it to name the CREATE permission", err)
	} else {
		t.Logf("HOLDOVER_CREATE_SCHEMA=true with the least-privilege role: %v", err)
	}

	// Node A: commits, flushes, and renews the TTLs of what it owns.
	cfgA := secureConfig(n, ks, "lp-a", role, pw)
	// Renewal starts half a TTL after a session is first seen owned, checked
	// every max(TTL/8, 1s): with 1 s ticks a TTL under about 6 s can run out
	// before the first renewal, so 8 s.
	cfgA.StateTTL = 8 * time.Second
	var (
		mu      sync.Mutex
		dropped []string
	)
	a := openSecure(t, cfgA, adapter.WithHooks(adapter.Hooks{OnDropped: func(s string, _ int, err error) {
		mu.Lock()
		defer mu.Unlock()
		dropped = append(dropped, fmt.Sprintf("%s: %v", s, err))
	}}))
	for _, id := range []string{"s1", "s2", "s3"} {
		if err := a.Commit(id, adapter.Change{Key: "k", Value: []byte(id + "@a")}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Past the state TTL: the items are there because A renewed them.
	time.Sleep(cfgA.StateTTL + 2*time.Second)
	if got := a.Stats().Residency.Refreshes; got == 0 {
		t.Fatal("no TTL renewal after more than the state TTL")
	}
	if s, err := a.Peek(ctx, "s1"); err != nil || string(s.Map()["k"]) != "s1@a" {
		t.Fatalf("s1 after the state TTL: %+v, %v; want it renewed", s, err)
	}

	// Node B adopts s1 from the live A (forced) and fences it: A's later
	// write never becomes visible.
	b := openSecure(t, secureConfig(n, ks, "lp-b", role, pw))
	s, err := b.Adopt(ctx, "s1", adapter.AdoptOptions{Force: true})
	if err != nil || string(s.Map()["k"]) != "s1@a" || s.PreviousOwner != "lp-a" {
		t.Fatalf("adopt s1 on B: %+v, %v", s, err)
	}
	if err := b.Commit("s1", adapter.Change{Key: "k", Value: []byte("s1@b")}); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	_ = a.Commit("s1", adapter.Change{Key: "k", Value: []byte("s1@a-stale")})
	_ = a.Flush(ctx)
	if s, err := b.Peek(ctx, "s1"); err != nil || string(s.Map()["k"]) != "s1@b" || s.Owner != "lp-b" {
		t.Fatalf("s1 after A's stale write: %+v, %v; want B's value and owner", s, err)
	}

	// Bulk takeover of A's other sessions.
	rep, err := b.Takeover(ctx, "lp-a", adapter.TakeoverOptions{Force: true})
	if err != nil || rep.Adopted != 2 {
		t.Fatalf("takeover of lp-a: %+v, %v; want 2 adopted", rep, err)
	}
	// Ending a session.
	if err := b.End("s2"); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Peek(ctx, "s2"); !errors.Is(err, adapter.ErrNotFound) {
		t.Fatalf("s2 after End: %v; want ErrNotFound", err)
	}
	// Release on close: C adopts s3 at once, without force, though B's
	// lease has not expired.
	if _, err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := openSecure(t, secureConfig(n, ks, "lp-c", role, pw))
	if s, err := c.Adopt(ctx, "s3"); err != nil || string(s.Map()["k"]) != "s3@a" {
		t.Fatalf("adopt released s3 on C: %+v, %v", s, err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, d := range dropped {
		if strings.Contains(d, "permission") || strings.Contains(d, "Unauthorized") {
			t.Errorf("a flush of A was refused for lack of permission: %s", d)
		}
	}
}

// Each permission the README grants is needed: without it the adapter is
// refused, and the error names the permission and the table.
func TestSecureMissingPermission(t *testing.T) {
	n := cassandratest.Secure(t)
	ks := n.Keyspace(t)
	operatorSchema(t, n, ks)
	grants := cassandratest.READMEGrants(t, ks, "ROLE")
	for i := range grants {
		missing := strings.Fields(grants[i])[1]
		t.Run("without "+missing, func(t *testing.T) {
			const password = "Missing-Pa55"
			role := n.Role(t, password)
			for j, g := range cassandratest.READMEGrants(t, ks, role) {
				if j != i {
					n.Exec(t, g)
				}
			}
			pw := writeSecret(t, t.TempDir(), password)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, err := adapter.Open(ctx, secureConfig(n, ks, "missing-"+strings.ToLower(missing), role, pw))
			if err == nil {
				_, _ = a.Close(ctx)
				t.Fatalf("Open succeeded without %s", missing)
			}
			want := regexp.MustCompile(fmt.Sprintf(`User %s has no %s permission on <table %s\.\w+> or any of its parents`, role, missing, ks))
			if !want.MatchString(err.Error()) {
				t.Fatalf("error %q does not match %q", err, want)
			}
			t.Logf("without %s: %v", missing, err)
		})
	}

	// A permission revoked while the adapter runs: its writes are refused
	// and reported, naming what is missing, not retried forever.
	const password = "Revoked-Pa55"
	role := n.Role(t, password)
	for _, g := range cassandratest.READMEGrants(t, ks, role) {
		n.Exec(t, g)
	}
	dropped := make(chan error, 16)
	a := openSecure(t, secureConfig(n, ks, "revoked", role, writeSecret(t, t.TempDir(), password)),
		adapter.WithHooks(adapter.Hooks{OnDropped: func(_ string, _ int, err error) {
			select {
			case dropped <- err:
			default:
			}
		}}))
	if err := a.Commit("before", adapter.Change{Key: "k", Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	n.Exec(t, fmt.Sprintf("REVOKE MODIFY ON KEYSPACE %s FROM %s", ks, role))
	// Cassandra caches permissions for permissions_validity (2 s by default).
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		if err := a.Commit("before", adapter.Change{Key: "k", Value: []byte(fmt.Sprint(i))}); err != nil {
			t.Fatalf("commit: %v", err)
		}
		_ = a.Flush(ctx)
		select {
		case err := <-dropped:
			want := fmt.Sprintf("User %s has no MODIFY permission on <table %s.", role, ks)
			if !strings.Contains(err.Error(), want) {
				t.Fatalf("dropped with %q; want it to name the MODIFY permission (%q)", err, want)
			}
			t.Logf("MODIFY revoked at run time: %v", err)
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no write refused 30 s after REVOKE MODIFY")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
