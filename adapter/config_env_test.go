package adapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caarlos0/env/v11"
)

// clearHoldoverEnv unsets every HOLDOVER_ variable for the rest of the test.
func clearHoldoverEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, envPrefix) {
			t.Setenv(k, "") // restores the old value after the test
			os.Unsetenv(k)
		}
	}
}

func setEnv(t *testing.T, vars map[string]string) {
	t.Helper()
	for k, v := range vars {
		t.Setenv(k, v)
	}
}

// writeFile creates a small file in a temporary directory and returns its path.
func writeFile(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("-----BEGIN TEST-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func problemsOf(t *testing.T, err error) []FieldProblem {
	t.Helper()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v (%T) is not a *ConfigError", err, err)
	}
	return ce.Problems
}

func TestConfigDefaultsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if !validNodeID(c.NodeID) {
		t.Errorf("default NodeID %q is not valid", c.NodeID)
	}
	if got, want := c.LeaseRenewEvery(), c.LeaseTTL/3; got != want {
		t.Errorf("LeaseRenewEvery() = %v, want LeaseTTL/3 = %v", got, want)
	}
	if c.TLSEnabled() {
		t.Error("TLS enabled by default")
	}
	if got, want := c.ReplicationCQL(), "{'class': 'SimpleStrategy', 'replication_factor': 1}"; got != want {
		t.Errorf("default ReplicationCQL() = %q, want %q", got, want)
	}
}

// Defaults live in the knobs table alone: an envDefault tag would be a second
// source, which caarlos0/env would apply to an empty variable in place of
// DefaultConfig's value.
func TestConfigHasNoEnvDefaultTags(t *testing.T) {
	ty := reflect.TypeFor[Config]()
	for i := range ty.NumField() {
		if d, ok := ty.Field(i).Tag.Lookup("envDefault"); ok {
			t.Errorf("field %s has envDefault:%q; its default belongs in the knobs table", ty.Field(i).Name, d)
		}
	}
	var fromTags Config
	if err := env.ParseWithOptions(&fromTags, env.Options{Prefix: envPrefix, Environment: map[string]string{}}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromTags, Config{}) {
		t.Errorf("env tags set defaults of their own: %v", fromTags)
	}
}

func TestConfigFromEnvEmptyIsDefault(t *testing.T) {
	clearHoldoverEnv(t)
	t.Setenv("HOLDOVER_FLUSH_DELAY", "") // empty counts as unset
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, DefaultConfig()) {
		t.Errorf("ConfigFromEnv() with no variables =\n%v\nwant DefaultConfig()\n%v", c, DefaultConfig())
	}
}

func TestConfigFromEnvEveryVariable(t *testing.T) {
	clearHoldoverEnv(t)
	ca, cert, key := writeFile(t, "ca.pem"), writeFile(t, "cert.pem"), writeFile(t, "key.pem")
	vars := map[string]string{
		"HOLDOVER_CASSANDRA_HOSTS":          "10.0.0.1,10.0.0.2:9142",
		"HOLDOVER_CASSANDRA_PORT":           "9142",
		"HOLDOVER_LOCAL_DC":                 "dc2",
		"HOLDOVER_KEYSPACE":                 "Sessions_v2",
		"HOLDOVER_REPLICATION_CLASS":        "NetworkTopologyStrategy",
		"HOLDOVER_REPLICATION_FACTOR":       "3",
		"HOLDOVER_REPLICATION_DCS":          "dc1:3,dc2:5",
		"HOLDOVER_CREATE_SCHEMA":            "false",
		"HOLDOVER_CONSISTENCY":              "EACH_QUORUM",
		"HOLDOVER_SERIAL_CONSISTENCY":       "LOCAL_SERIAL",
		"HOLDOVER_CONNECT_TIMEOUT":          "7s",
		"HOLDOVER_TIMEOUT":                  "750ms",
		"HOLDOVER_TLS":                      "true",
		"HOLDOVER_TLS_CA_FILE":              ca,
		"HOLDOVER_TLS_CERT_FILE":            cert,
		"HOLDOVER_TLS_KEY_FILE":             key,
		"HOLDOVER_TLS_SERVER_NAME":          "cassandra.internal",
		"HOLDOVER_TLS_INSECURE_SKIP_VERIFY": "true",
		"HOLDOVER_USERNAME":                 "holdover",
		"HOLDOVER_PASSWORD":                 "s3cret",
		"HOLDOVER_NODE_ID":                  "node-a.example:1",
		"HOLDOVER_FLUSH_DELAY":              "250ms",
		"HOLDOVER_FLUSH_CONCURRENCY":        "64",
		"HOLDOVER_MAX_CONCURRENT_CREATES":   "16",
		"HOLDOVER_FLUSH_GROUP_MAX":          "4",
		"HOLDOVER_FLUSH_GROUP_BYTES":        "2KiB",
		"HOLDOVER_MAX_PENDING_BYTES":        "1GiB",
		"HOLDOVER_MAX_SESSION_ITEMS":        "4096",
		"HOLDOVER_MAX_BATCH_BYTES":          "8MiB",
		"HOLDOVER_MAX_VALUE_BYTES":          "2097152",
		"HOLDOVER_MAX_KEY_BYTES":            "512",
		"HOLDOVER_MAX_SESSION_ID_BYTES":     "200",
		"HOLDOVER_MAX_WINDOW":               "3s",
		"HOLDOVER_RETRY_MIN":                "20ms",
		"HOLDOVER_RETRY_MAX":                "30s",
		"HOLDOVER_LEASE_TTL":                "30s",
		"HOLDOVER_LEASE_RENEW":              "5s",
		"HOLDOVER_MAX_CLOCK_SKEW":           "250ms",
		"HOLDOVER_STATE_TTL":                "720h",
		"HOLDOVER_REBASE_DELETES":           "25000",
		"HOLDOVER_ENDED_TTL":                "360h",
		"HOLDOVER_NEGATIVE_CACHE_TTL":       "0s",
		"HOLDOVER_NEGATIVE_CACHE_SIZE":      "0",
		"HOLDOVER_ADOPT_RATE":               "1250.5",
		"HOLDOVER_FAMILIES":                 "reg:delay=2s,ttl=1h,max=64KiB;settings:shared,refresh=500ms",
	}
	// HOLDOVER_PASSWORD_FILE excludes HOLDOVER_PASSWORD set here; its own
	// tests are in config_secret_test.go.
	for _, f := range configFields() {
		if _, ok := vars[f.envVar]; !ok && f.envVar != "HOLDOVER_PASSWORD_FILE" {
			t.Errorf("test does not set %s (field %s)", f.envVar, f.name)
		}
	}
	setEnv(t, vars)

	got, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Hosts:                 []string{"10.0.0.1", "10.0.0.2:9142"},
		Port:                  9142,
		LocalDC:               "dc2",
		Keyspace:              "Sessions_v2",
		ReplicationClass:      NetworkTopologyStrategy,
		ReplicationFactor:     3,
		ReplicationDCs:        map[string]int{"dc1": 3, "dc2": 5},
		CreateSchema:          false,
		Consistency:           "EACH_QUORUM",
		SerialConsistency:     "LOCAL_SERIAL",
		ConnectTimeout:        7 * time.Second,
		Timeout:               750 * time.Millisecond,
		TLS:                   true,
		TLSCAFile:             ca,
		TLSCertFile:           cert,
		TLSKeyFile:            key,
		TLSServerName:         "cassandra.internal",
		TLSInsecureSkipVerify: true,
		Username:              "holdover",
		Password:              "s3cret",
		NodeID:                "node-a.example:1",
		FlushDelay:            250 * time.Millisecond,
		FlushConcurrency:      64,
		FlushGroupMax:         4,
		FlushGroupBytes:       2 * KiB,
		MaxPendingBytes:       GiB,
		MaxSessionItems:       4096,
		MaxBatchBytes:         8 * MiB,
		MaxValueBytes:         2 * MiB,
		MaxKeyBytes:           512,
		MaxSessionIDBytes:     200,
		MaxWindow:             3 * time.Second,
		MaxConcurrentCreates:  16,
		RetryMin:              20 * time.Millisecond,
		RetryMax:              30 * time.Second,
		LeaseTTL:              30 * time.Second,
		LeaseRenew:            5 * time.Second,
		MaxClockSkew:          250 * time.Millisecond,
		StateTTL:              720 * time.Hour,
		RebaseDeletes:         25000,
		EndedTTL:              360 * time.Hour,
		NegativeCacheTTL:      0,
		NegativeCacheSize:     0,
		AdoptRate:             1250.5,
		Families: Families{
			{Name: "reg", FlushDelay: 2 * time.Second, StateTTL: time.Hour, MaxSessionBytes: 64 * KiB},
			{Name: "settings", Shared: true, Refresh: 500 * time.Millisecond},
		},
	}
	gv, wv, dv := reflect.ValueOf(got), reflect.ValueOf(want), reflect.ValueOf(DefaultConfig())
	for _, f := range configFields() {
		if f.envVar == "HOLDOVER_PASSWORD_FILE" {
			continue
		}
		g, w := gv.Field(f.index).Interface(), wv.Field(f.index).Interface()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %#v, want %#v", f.envVar, f.name, g, w)
		}
		if reflect.DeepEqual(w, dv.Field(f.index).Interface()) {
			t.Errorf("%s: test value %#v equals the default, so parsing is not shown", f.envVar, w)
		}
	}
	if got.LeaseRenewEvery() != 5*time.Second {
		t.Errorf("LeaseRenewEvery() = %v, want 5s", got.LeaseRenewEvery())
	}
	if !got.TLSEnabled() {
		t.Error("TLSEnabled() = false with HOLDOVER_TLS=true")
	}
}

func TestConfigFromEnvAggregatesAllProblems(t *testing.T) {
	clearHoldoverEnv(t)
	const password = "Hunter2-never-print-me"
	// Each variable gets a bad value; the map value is a fragment its
	// problem must contain.
	bad := map[string][2]string{
		"HOLDOVER_CASSANDRA_HOSTS":          {"a,,b c", "empty"},
		"HOLDOVER_CASSANDRA_PORT":           {"0", "between 1 and 65535, got 0"},
		"HOLDOVER_KEYSPACE":                 {"1bad", identifierPattern},
		"HOLDOVER_REPLICATION_CLASS":        {"Everywhere", "one of SimpleStrategy, NetworkTopologyStrategy"},
		"HOLDOVER_REPLICATION_FACTOR":       {"ten", "whole number"},
		"HOLDOVER_REPLICATION_DCS":          {"dc1", "name:count pairs"},
		"HOLDOVER_CREATE_SCHEMA":            {"maybe", "true or false"},
		"HOLDOVER_CONSISTENCY":              {"local_quorum", "one of ONE, TWO"},
		"HOLDOVER_SERIAL_CONSISTENCY":       {"QUORUM", "one of SERIAL, LOCAL_SERIAL"},
		"HOLDOVER_CONNECT_TIMEOUT":          {"soon", `between 100ms and 5m, written as a duration such as "250ms"`},
		"HOLDOVER_TIMEOUT":                  {"1h", "between 10ms and 5m, got 1h"},
		"HOLDOVER_TLS":                      {"2", "true or false"},
		"HOLDOVER_TLS_KEY_FILE":             {"/nonexistent/key.pem", "readable file"},
		"HOLDOVER_TLS_SERVER_NAME":          {"db.internal", "unless TLS is enabled"},
		"HOLDOVER_TLS_INSECURE_SKIP_VERIFY": {"yes", "true or false"},
		"HOLDOVER_PASSWORD":                 {password, "HOLDOVER_USERNAME is empty"},
		"HOLDOVER_NODE_ID":                  {"bad id!", "1 to 64 bytes"},
		"HOLDOVER_FLUSH_DELAY":              {"0s", "between 1ms and 1h, got 0s"},
		"HOLDOVER_FLUSH_CONCURRENCY":        {"many", "between 1 and 1024, written as a whole number"},
		"HOLDOVER_FLUSH_GROUP_MAX":          {"65", "between 1 and 64, got 65"},
		"HOLDOVER_FLUSH_GROUP_BYTES":        {"64KiB", "between 256B and 48KiB, got 64KiB"},
		"HOLDOVER_MAX_PENDING_BYTES":        {"12MB", "between 1MiB and 64GiB, written as a byte count"},
		"HOLDOVER_MAX_SESSION_ITEMS":        {"0", "between 1 and 1000000"},
		"HOLDOVER_MAX_BATCH_BYTES":          {"1KiB", "between 64KiB and 15MiB, got 1KiB"},
		"HOLDOVER_MAX_VALUE_BYTES":          {"16MiB", "between 1B and 15MiB"},
		"HOLDOVER_MAX_KEY_BYTES":            {"5000", "between 1 and 4096"},
		"HOLDOVER_MAX_SESSION_ID_BYTES":     {"-1", "between 1 and 1024"},
		"HOLDOVER_RETRY_MIN":                {"0s", "between 1ms and 1m"},
		"HOLDOVER_RETRY_MAX":                {"11m", "and 10m"},
		"HOLDOVER_LEASE_TTL":                {"500ms", "between 1s and 10m"},
		"HOLDOVER_LEASE_RENEW":              {"-1s", "HOLDOVER_LEASE_TTL/2"},
		"HOLDOVER_STATE_TTL":                {"1500ms", "whole number of seconds"},
		"HOLDOVER_NEGATIVE_CACHE_TTL":       {"2h", "between 0s and 1h"},
		"HOLDOVER_NEGATIVE_CACHE_SIZE":      {"x", "whole number"},
		"HOLDOVER_ADOPT_RATE":               {"NaN", "more than 0"},
	}
	for k, v := range bad {
		t.Setenv(k, v[0])
	}

	_, err := ConfigFromEnv()
	if err == nil {
		t.Fatal("ConfigFromEnv() accepted invalid variables")
	}
	probs := problemsOf(t, err)
	msg := err.Error()
	for v, want := range bad {
		found := false
		for _, p := range probs {
			if p.Var == v && strings.Contains(p.Problem, want[1]) {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem for %s containing %q", v, want[1])
		}
		if !strings.Contains(msg, v+": ") {
			t.Errorf("error message does not name %s", v)
		}
	}
	// Two problems of one variable are both reported.
	for _, v := range []string{"HOLDOVER_CASSANDRA_HOSTS", "HOLDOVER_MAX_VALUE_BYTES"} {
		if n := strings.Count(msg, v+": "); n != 2 {
			t.Errorf("%s has %d problems, want 2", v, n)
		}
	}
	if strings.Contains(msg, password) {
		t.Error("error message shows the password")
	}
	if n := strings.Count(msg, "\n"); n != len(probs) {
		t.Errorf("error has %d lines after the header, want one per problem (%d):\n%s", n, len(probs), msg)
	}
	t.Logf("%s", msg)
}

// A value that does not parse is answered with the syntax and the range.
func TestConfigParseProblemsNameRange(t *testing.T) {
	clearHoldoverEnv(t)
	want := map[string][2]string{
		"HOLDOVER_CASSANDRA_PORT":     {"99999999999", `must be between 1 and 65535, written as a whole number, got "99999999999"`},
		"HOLDOVER_LEASE_RENEW":        {"x", "at most HOLDOVER_LEASE_TTL/2 (5s), written as a duration"},
		"HOLDOVER_RETRY_MAX":          {"x", "must be between HOLDOVER_RETRY_MIN (50ms) and 10m, written as a duration"},
		"HOLDOVER_STATE_TTL":          {"week", "must be between 1s and 175200h (20 years, Cassandra's largest TTL), written as a duration"},
		"HOLDOVER_MAX_VALUE_BYTES":    {"1.5MiB", "must be between 1B and 15MiB, written as a byte count"},
		"HOLDOVER_ADOPT_RATE":         {"fast", `must be more than 0 and at most 1000000 sessions per second, written as a number, got "fast"`},
		"HOLDOVER_CREATE_SCHEMA":      {"sometimes", `must be true or false, got "sometimes"`},
		"HOLDOVER_REPLICATION_DCS":    {"dc1:three", `must be comma-separated name:count pairs such as "dc1:3,dc2:3", got "dc1:three"`},
		"HOLDOVER_MAX_BATCH_BYTES":    {"4MB", "unit B, KiB, MiB, GiB or TiB"},
		"HOLDOVER_NEGATIVE_CACHE_TTL": {"-", "must be between 0s and 1h, written as a duration"},
	}
	for k, v := range want {
		t.Setenv(k, v[0])
	}
	_, err := ConfigFromEnv()
	probs := problemsOf(t, err)
	if len(probs) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(probs), len(want), err)
	}
	for _, p := range probs {
		if w, ok := want[p.Var]; !ok || !strings.Contains(p.Problem, w[1]) {
			t.Errorf("%s: %s\nwant it to contain %s", p.Var, p.Problem, w[1])
		}
	}
}

// A data center listed twice in HOLDOVER_REPLICATION_DCS is refused: the
// map kept the last count, so "dc1:3,dc1:1" (a typo for dc2) made a
// keyspace with one data center and one replica.
func TestReplicationDCsListedTwiceRefused(t *testing.T) {
	_, err := configFromEnviron(map[string]string{
		"HOLDOVER_REPLICATION_CLASS": NetworkTopologyStrategy,
		"HOLDOVER_REPLICATION_DCS":   "dc1:3,dc1:1",
	})
	probs := problemsOf(t, err)
	if len(probs) != 1 || probs[0].Var != "HOLDOVER_REPLICATION_DCS" || !strings.Contains(probs[0].Problem, `lists data center "dc1" twice`) {
		t.Errorf("problems %v, want one saying dc1 is listed twice", probs)
	}
	if _, err := configFromEnviron(map[string]string{
		"HOLDOVER_REPLICATION_CLASS": NetworkTopologyStrategy,
		"HOLDOVER_REPLICATION_DCS":   "dc1:3,dc2:1",
	}); err != nil {
		t.Errorf("two data centers: %v", err)
	}
}

func TestConfigValidateRules(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, "x.pem")
	cases := []struct {
		name   string
		mutate func(*Config)
		v      string
		want   string
	}{
		{"no hosts", func(c *Config) { c.Hosts = nil }, "HOLDOVER_CASSANDRA_HOSTS", "at least one host"},
		{"host with space", func(c *Config) { c.Hosts = []string{" a"} }, "HOLDOVER_CASSANDRA_HOSTS", "whitespace"},
		{"port too big", func(c *Config) { c.Port = 70000 }, "HOLDOVER_CASSANDRA_PORT", "between 1 and 65535"},
		{"keyspace too long", func(c *Config) { c.Keyspace = "k" + strings.Repeat("x", 48) }, "HOLDOVER_KEYSPACE", identifierPattern},
		{"keyspace quote", func(c *Config) { c.Keyspace = `holdover"` }, "HOLDOVER_KEYSPACE", identifierPattern},
		{"factor", func(c *Config) { c.ReplicationFactor = 11 }, "HOLDOVER_REPLICATION_FACTOR", "between 1 and 10, got 11"},
		{"dcs with simple", func(c *Config) { c.ReplicationDCs = map[string]int{"dc1": 3} }, "HOLDOVER_REPLICATION_DCS", "must be empty unless"},
		{"nts without dcs", func(c *Config) { c.ReplicationClass = NetworkTopologyStrategy }, "HOLDOVER_REPLICATION_DCS", "is required"},
		{"nts bad dc name", func(c *Config) {
			c.ReplicationClass = NetworkTopologyStrategy
			c.ReplicationDCs = map[string]int{"dc'1": 3}
		}, "HOLDOVER_REPLICATION_DCS", "[A-Za-z0-9_.-]+"},
		{"nts bad count", func(c *Config) {
			c.ReplicationClass = NetworkTopologyStrategy
			c.ReplicationDCs = map[string]int{"dc1": 0}
		}, "HOLDOVER_REPLICATION_DCS", "between 1 and 10, got 0"},
		{"local dc without replicas", func(c *Config) {
			c.ReplicationClass = NetworkTopologyStrategy
			c.ReplicationDCs = map[string]int{"dc1": 3}
			c.LocalDC = "dc9"
		}, "HOLDOVER_LOCAL_DC", "HOLDOVER_REPLICATION_DCS (dc1)"},
		{"connect timeout", func(c *Config) { c.ConnectTimeout = time.Millisecond }, "HOLDOVER_CONNECT_TIMEOUT", "between 100ms and 5m"},
		{"cert without key", func(c *Config) { c.TLSCertFile = file }, "HOLDOVER_TLS_KEY_FILE", "must be set when HOLDOVER_TLS_CERT_FILE"},
		{"ca is a directory", func(c *Config) { c.TLSCAFile = dir }, "HOLDOVER_TLS_CA_FILE", "is a directory"},
		{"ca missing", func(c *Config) { c.TLSCAFile = filepath.Join(dir, "none.pem") }, "HOLDOVER_TLS_CA_FILE", "no such file"},
		{"skip verify without tls", func(c *Config) { c.TLSInsecureSkipVerify = true }, "HOLDOVER_TLS_INSECURE_SKIP_VERIFY", "unless TLS is enabled"},
		{"empty node id", func(c *Config) { c.NodeID = "" }, "HOLDOVER_NODE_ID", "1 to 64 bytes"},
		{"long node id", func(c *Config) { c.NodeID = strings.Repeat("n", 65) }, "HOLDOVER_NODE_ID", "1 to 64 bytes"},
		{"non-ascii node id", func(c *Config) { c.NodeID = "nöde" }, "HOLDOVER_NODE_ID", "[A-Za-z0-9._:-]"},
		{"flush delay", func(c *Config) { c.FlushDelay = 2 * time.Hour }, "HOLDOVER_FLUSH_DELAY", "between 1ms and 1h, got 2h"},
		{"concurrency", func(c *Config) { c.FlushConcurrency = 0 }, "HOLDOVER_FLUSH_CONCURRENCY", "between 1 and 1024"},
		{"group max", func(c *Config) { c.FlushGroupMax = 0 }, "HOLDOVER_FLUSH_GROUP_MAX", "between 1 and 64"},
		{"group bytes", func(c *Config) { c.FlushGroupBytes = 100 }, "HOLDOVER_FLUSH_GROUP_BYTES", "between 256B and 48KiB, got 100B"},
		{"pending", func(c *Config) { c.MaxPendingBytes = 128 * GiB }, "HOLDOVER_MAX_PENDING_BYTES", "between 1MiB and 64GiB, got 128GiB"},
		{"value over batch", func(c *Config) { c.MaxValueBytes = 5 * MiB }, "HOLDOVER_MAX_VALUE_BYTES", "at most HOLDOVER_MAX_BATCH_BYTES (4MiB), got 5MiB"},
		{"value zero", func(c *Config) { c.MaxValueBytes = 0 }, "HOLDOVER_MAX_VALUE_BYTES", "between 1B and 15MiB"},
		{"retry max below min", func(c *Config) { c.RetryMax = 10 * time.Millisecond }, "HOLDOVER_RETRY_MAX", "between HOLDOVER_RETRY_MIN (50ms) and 10m, got 10ms"},
		{"lease renew over half", func(c *Config) { c.LeaseRenew = 6 * time.Second }, "HOLDOVER_LEASE_RENEW", "at most HOLDOVER_LEASE_TTL/2 (5s), got 6s"},
		{"creates over the flush concurrency", func(c *Config) { c.MaxConcurrentCreates = 129 }, "HOLDOVER_MAX_CONCURRENT_CREATES", "between 1 and HOLDOVER_FLUSH_CONCURRENCY (128), got 129"},
		{"max window under the flush delay", func(c *Config) { c.MaxWindow = 50 * time.Millisecond }, "HOLDOVER_MAX_WINDOW", "above HOLDOVER_FLUSH_DELAY (100ms)"},
		{"clock skew over the lease", func(c *Config) { c.MaxClockSkew = 11 * time.Second }, "HOLDOVER_MAX_CLOCK_SKEW", "11s"},
		{"ended TTL not whole seconds", func(c *Config) { c.EndedTTL = 1500 * time.Millisecond }, "HOLDOVER_ENDED_TTL", "whole number of seconds"},
		{"state ttl over cassandra max", func(c *Config) { c.StateTTL = maxCassandraTTL + time.Second }, "HOLDOVER_STATE_TTL", "20 years"},
		{"state ttl zero", func(c *Config) { c.StateTTL = 0 }, "HOLDOVER_STATE_TTL", "between 1s"},
		{"rebase deletes negative", func(c *Config) { c.RebaseDeletes = -1 }, "HOLDOVER_REBASE_DELETES", "between 1 and 1000000"},
		{"negative cache ttl", func(c *Config) { c.NegativeCacheTTL = -time.Second }, "HOLDOVER_NEGATIVE_CACHE_TTL", "between 0s and 1h"},
		{"negative cache size", func(c *Config) { c.NegativeCacheSize = 100000001 }, "HOLDOVER_NEGATIVE_CACHE_SIZE", "between 0 and 100000000"},
		{"adopt rate zero", func(c *Config) { c.AdoptRate = 0 }, "HOLDOVER_ADOPT_RATE", "more than 0"},
		{"adopt rate inf", func(c *Config) { c.AdoptRate = math.Inf(1) }, "HOLDOVER_ADOPT_RATE", "at most 1000000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			probs := problemsOf(t, c.Validate())
			if len(probs) != 1 {
				t.Errorf("got %d problems, want 1: %v", len(probs), probs)
			}
			for _, p := range probs {
				if p.Var == tc.v && strings.Contains(p.Problem, tc.want) {
					return
				}
			}
			t.Errorf("no problem for %s containing %q in %v", tc.v, tc.want, probs)
		})
	}
}

func TestConfigValidEdgeValues(t *testing.T) {
	cert, key := writeFile(t, "cert.pem"), writeFile(t, "key.pem")
	cases := []struct {
		name   string
		mutate func(*Config)
	}{
		{"max state ttl", func(c *Config) { c.StateTTL = maxCassandraTTL }},
		{"lease renew half", func(c *Config) { c.LeaseRenew = c.LeaseTTL / 2 }},
		{"negative cache off", func(c *Config) { c.NegativeCacheTTL, c.NegativeCacheSize = 0, 0 }},
		{"value equals batch", func(c *Config) { c.MaxValueBytes, c.MaxBatchBytes = 15*MiB, 15*MiB }},
		{"mutual tls", func(c *Config) { c.TLSCertFile, c.TLSKeyFile, c.TLSServerName = cert, key, "db" }},
		{"tls with system roots", func(c *Config) { c.TLS, c.TLSInsecureSkipVerify = true, true }},
		{"username without password", func(c *Config) { c.Username = "u" }},
		{"nts with local dc", func(c *Config) {
			c.ReplicationClass, c.ReplicationDCs, c.LocalDC = NetworkTopologyStrategy, map[string]int{"eu-west.1": 3}, "eu-west.1"
		}},
		{"nts with remote local dc and global levels", func(c *Config) {
			c.ReplicationClass, c.ReplicationDCs, c.LocalDC = NetworkTopologyStrategy, map[string]int{"dc1": 3}, "dc2"
			c.Consistency, c.SerialConsistency = "QUORUM", "SERIAL"
		}},
		{"48-char keyspace", func(c *Config) { c.Keyspace = "K" + strings.Repeat("_", 47) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			if err := c.Validate(); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestConfigKeyspaceInjectionRejected(t *testing.T) {
	clearHoldoverEnv(t)
	t.Setenv("HOLDOVER_KEYSPACE", "x; DROP KEYSPACE y")
	_, err := ConfigFromEnv()
	if err == nil {
		t.Fatal("ConfigFromEnv() accepted an injected keyspace")
	}
	probs := problemsOf(t, err)
	if len(probs) != 1 || probs[0].Var != "HOLDOVER_KEYSPACE" {
		t.Fatalf("problems = %v, want one for HOLDOVER_KEYSPACE", probs)
	}
	if !strings.Contains(err.Error(), `^[A-Za-z][A-Za-z0-9_]{0,47}$`) {
		t.Errorf("error does not state the pattern: %v", err)
	}
}

func TestConfigPasswordNeverShown(t *testing.T) {
	clearHoldoverEnv(t)
	const password = "Pa55;w0rd'never-shown"

	// Password without username, alongside other problems.
	setEnv(t, map[string]string{
		"HOLDOVER_PASSWORD":    password,
		"HOLDOVER_FLUSH_DELAY": "0s",
		"HOLDOVER_TIMEOUT":     "never",
	})
	_, err := ConfigFromEnv()
	if err == nil {
		t.Fatal("password without username accepted")
	}
	if !strings.Contains(err.Error(), "HOLDOVER_PASSWORD") {
		t.Errorf("error does not name HOLDOVER_PASSWORD: %v", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Errorf("error shows the password: %v", err)
	}

	// A parse failure of a secret variable shows no value either.
	probs := parseProblems(env.AggregateError{Errors: []error{
		env.ParseError{Name: "Password", Type: reflect.TypeFor[string](), Err: errors.New("boom " + password)},
	}}, map[string]string{"HOLDOVER_PASSWORD": password})
	if len(probs) != 1 || probs[0].Var != "HOLDOVER_PASSWORD" || strings.Contains(probs[0].Problem, password) {
		t.Errorf("parse problem for the password = %v", probs)
	}

	// A valid configuration with a password, printed every way.
	t.Setenv("HOLDOVER_USERNAME", "holdover")
	t.Setenv("HOLDOVER_FLUSH_DELAY", "")
	t.Setenv("HOLDOVER_TIMEOUT", "")
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.Password != password {
		t.Fatalf("Password not read from the environment")
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("config", "config", c)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("config", "config", c)
	for name, out := range map[string]string{
		"String":  c.String(),
		"fmt %v":  fmt.Sprintf("%v", c),
		"fmt %+v": fmt.Sprintf("%+v", c),
		"fmt %#v": fmt.Sprintf("%#v", c),
		//lint:ignore S1025 the test checks what fmt prints, which calls String
		"fmt %s &c": fmt.Sprintf("%s", &c),
		"slog text": text.String(),
		"slog JSON": js.String(),
		"LogValue":  c.LogValue().String(),
	} {
		if strings.Contains(out, password) || strings.Contains(out, "Pa55") {
			t.Errorf("%s shows the password: %s", name, out)
		}
		if !strings.Contains(out, "***") {
			t.Errorf("%s does not mark the password as set: %s", name, out)
		}
	}
	if !strings.Contains(c.String(), "password=***") {
		t.Errorf("String() = %s, want password=***", c.String())
	}
	if s := DefaultConfig().String(); !strings.Contains(s, `password=""`) {
		t.Errorf("String() without password = %s, want password=\"\"", s)
	}
}

func TestConfigJSONOmitsPassword(t *testing.T) {
	const password = "json-Pa55word"
	c := DefaultConfig()
	c.Username, c.Password = "holdover", password
	for name, v := range map[string]any{"value": c, "pointer": &c, "in a struct": struct{ C Config }{c}} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), password) || strings.Contains(string(b), `"Password"`) {
			t.Errorf("json.Marshal(%s) shows the password: %s", name, b)
		}
		if !strings.Contains(string(b), `"Username":"holdover"`) {
			t.Errorf("json.Marshal(%s) lacks the other fields: %s", name, b)
		}
	}
	// Every secret field is kept out of JSON, not just the password.
	for _, f := range configFields() {
		if f.secret && reflect.TypeFor[Config]().Field(f.index).Tag.Get("json") != "-" {
			t.Errorf("secret field %s lacks the tag json:\"-\"", f.name)
		}
	}
}

func TestConfigStringListsEveryField(t *testing.T) {
	c := DefaultConfig()
	s := c.String()
	for _, f := range configFields() {
		if !strings.Contains(s, " "+f.key+"=") && !strings.HasPrefix(s, "Config{"+f.key+"=") {
			t.Errorf("String() lacks %s: %s", f.key, s)
		}
	}
	for _, want := range []string{"cassandra_hosts=127.0.0.1", "flush_delay=100ms", "max_pending_bytes=256MiB", "state_ttl=168h", "adopt_rate=500"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %s: %s", want, s)
		}
	}
	if n := len(c.LogValue().Group()); n != reflect.TypeFor[Config]().NumField() {
		t.Errorf("LogValue has %d attributes, Config %d fields", n, reflect.TypeFor[Config]().NumField())
	}
}

func TestConfigErrorOnePerLine(t *testing.T) {
	e := &ConfigError{Problems: []FieldProblem{
		{Var: "HOLDOVER_FLUSH_DELAY", Problem: "must be between 1ms and 1h, got 0s"},
		{Var: "HOLDOVER_CASSANDRA_PORT", Problem: "must be between 1 and 65535, got 0"},
	}}
	want := "invalid holdover configuration:\n" +
		"  HOLDOVER_FLUSH_DELAY: must be between 1ms and 1h, got 0s\n" +
		"  HOLDOVER_CASSANDRA_PORT: must be between 1 and 65535, got 0"
	if got := e.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}

func TestConfigProblemsInFieldOrder(t *testing.T) {
	clearHoldoverEnv(t)
	setEnv(t, map[string]string{
		"HOLDOVER_ADOPT_RATE":     "0",
		"HOLDOVER_FLUSH_DELAY":    "x", // parse error
		"HOLDOVER_CASSANDRA_PORT": "0",
	})
	_, err := ConfigFromEnv()
	var got []string
	for _, p := range problemsOf(t, err) {
		got = append(got, p.Var)
	}
	want := []string{"HOLDOVER_CASSANDRA_PORT", "HOLDOVER_FLUSH_DELAY", "HOLDOVER_ADOPT_RATE"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problem order = %v, want %v", got, want)
	}
}

func TestConfigDefaultNodeID(t *testing.T) {
	for in, want := range map[string]string{
		"db-7.example.com":      "db-7.example.com",
		"my host/1":             "my-host-1",
		"héte":                  "h--te",
		strings.Repeat("a", 70): strings.Repeat("a", 64),
		"pod_1:9042":            "pod_1:9042",
		"":                      "",
	} {
		if got := sanitizeNodeID(in); got != want {
			t.Errorf("sanitizeNodeID(%q) = %q, want %q", in, got, want)
		}
	}
	if a, b := DefaultConfig().NodeID, DefaultConfig().NodeID; a != b {
		t.Errorf("default NodeID changes between calls: %q, %q", a, b)
	}
}

func TestReplicationCQL(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"simple", func(c *Config) { c.ReplicationFactor = 3 }, "{'class': 'SimpleStrategy', 'replication_factor': 3}"},
		{"network topology", func(c *Config) {
			c.ReplicationClass = NetworkTopologyStrategy
			c.ReplicationDCs = map[string]int{"dc2": 2, "dc1": 3}
		}, "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"},
		{"one dc", func(c *Config) {
			c.ReplicationClass = NetworkTopologyStrategy
			c.ReplicationDCs = map[string]int{"datacenter1": 1}
		}, "{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}"},
		{"unknown class", func(c *Config) { c.ReplicationClass = "SimpleStrategy', 'x': 1} AND durable_writes = false --" }, ""},
		{"injected dc", func(c *Config) {
			c.ReplicationClass = NetworkTopologyStrategy
			c.ReplicationDCs = map[string]int{"dc1': 3}; DROP KEYSPACE k; --": 1}
		}, ""},
		{"nts without dcs", func(c *Config) { c.ReplicationClass = NetworkTopologyStrategy }, ""},
		{"factor out of range", func(c *Config) { c.ReplicationFactor = 0 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.mutate(&c)
			if got := c.ReplicationCQL(); got != tc.want {
				t.Errorf("ReplicationCQL() = %q, want %q", got, tc.want)
			}
			if (tc.want == "") == (c.Validate() == nil) {
				t.Errorf("ReplicationCQL() = %q but Validate() = %v", tc.want, c.Validate())
			}
		})
	}

	clearHoldoverEnv(t)
	setEnv(t, map[string]string{"HOLDOVER_REPLICATION_CLASS": "NetworkTopologyStrategy", "HOLDOVER_REPLICATION_DCS": "dc1:3,dc2:3"})
	c, err := ConfigFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.ReplicationCQL(), "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 3}"; got != want {
		t.Errorf("ReplicationCQL() from the environment = %q, want %q", got, want)
	}
}

func TestValidIdentifier(t *testing.T) {
	for s, want := range map[string]bool{
		"holdover":                    true,
		"Holdover_2":                  true,
		"h":                           true,
		"K" + strings.Repeat("x", 47): true,
		"K" + strings.Repeat("x", 48): false,
		"":                            false,
		"1abc":                        false,
		"_abc":                        false,
		"a-b":                         false,
		"a b":                         false,
		`"quoted"`:                    false,
		"x; DROP KEYSPACE y":          false,
		"ks\n":                        false,
		"kš":                          false,
	} {
		if got := ValidIdentifier(s); got != want {
			t.Errorf("ValidIdentifier(%q) = %v, want %v", s, got, want)
		}
		// The pattern the errors state is the rule the store applies.
		if got := regexp.MustCompile(identifierPattern).MatchString(s); got != want {
			t.Errorf("%s matches %q: %v, want %v", identifierPattern, s, got, want)
		}
	}
}

func TestByteSizeParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
	}{
		{"1048576", MiB},
		{"64KiB", 64 * KiB},
		{"4MiB", 4 * MiB},
		{"1GiB", GiB},
		{"2TiB", 2 * TiB},
		{"512B", 512},
		{"0", 0},
		{"0B", 0},
		{"4 MiB", 4 * MiB},
		{" 15mib ", 15 * MiB},
		{"8kib", 8 * KiB},
		{"8388607TiB", 8388607 * TiB},
	} {
		var b ByteSize
		if err := b.UnmarshalText([]byte(tc.in)); err != nil {
			t.Errorf("UnmarshalText(%q): %v", tc.in, err)
			continue
		}
		if b != tc.want {
			t.Errorf("UnmarshalText(%q) = %d, want %d", tc.in, b, tc.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "-1KiB", "1.5MiB", "4MB", "4KB", "4 M", "12 34", "abc", "0x10", "8388608TiB", "9223372036854775808"} {
		var b ByteSize = 7
		err := b.UnmarshalText([]byte(in))
		if err == nil {
			t.Errorf("UnmarshalText(%q) = %d, want an error", in, b)
		}
		if b != 7 {
			t.Errorf("failed UnmarshalText(%q) changed the value to %d", in, b)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for b, want := range map[ByteSize]string{
		0:          "0B",
		1:          "1B",
		512:        "512B",
		1536:       "1536B",
		3 * KiB:    "3KiB",
		4 * MiB:    "4MiB",
		1024 * KiB: "1MiB",
		GiB + 1:    "1073741825B",
		64 * GiB:   "64GiB",
		5 * TiB:    "5TiB",
	} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
		text, _ := b.MarshalText()
		back, err := ParseByteSize(string(text))
		if err != nil || back != b {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", text, back, err, b)
		}
	}
}

func TestConcurrentCreatesDefaultsToHalfTheFlushes(t *testing.T) {
	for _, tc := range []struct{ flushes, creates, want int }{{128, 0, 64}, {1, 0, 1}, {3, 0, 1}, {128, 100, 100}} {
		c := Config{FlushConcurrency: tc.flushes, MaxConcurrentCreates: tc.creates}
		if got := c.ConcurrentCreates(); got != tc.want {
			t.Errorf("FlushConcurrency %d, MaxConcurrentCreates %d: %d creations, want %d", tc.flushes, tc.creates, got, tc.want)
		}
	}
}
