package adapter

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// fuzzPassword is set as HOLDOVER_PASSWORD whenever the fuzzed environment
// does not set one, so that every run checks it never shows.
const fuzzPassword = "Fuzz-Sentinel-Pa55word"

// FuzzConfigFromEnv parses arbitrary environments: lines of NAME=value.
// Whatever they hold, ConfigFromEnv returns a valid Config or a *ConfigError
// whose every problem names a HOLDOVER_ variable and says what is wrong;
// the password never shows in the error, String or the log; nothing panics.
func FuzzConfigFromEnv(f *testing.F) {
	for _, fld := range configFields() {
		f.Add(fld.envVar + "=")
		f.Add(fld.envVar + "=-1")
		f.Add(fld.envVar + "=99999999999999999999999")
		f.Add(fld.envVar + "=1e309")
		f.Add(fld.envVar + "=NaN")
		f.Add(fld.envVar + "=\x00\xff")
	}
	for _, s := range []string{
		"HOLDOVER_CASSANDRA_HOSTS=a,,b\nHOLDOVER_CASSANDRA_PORT=0",
		"HOLDOVER_REPLICATION_CLASS=NetworkTopologyStrategy\nHOLDOVER_REPLICATION_DCS=dc1:3,dc2:x",
		"HOLDOVER_REPLICATION_DCS=dc1:3:4,'dc2':1",
		"HOLDOVER_FLUSH_DELAY=1ns\nHOLDOVER_MAX_WINDOW=1ns",
		"HOLDOVER_MAX_VALUE_BYTES=16MiB\nHOLDOVER_MAX_BATCH_BYTES=64KiB",
		"HOLDOVER_MAX_PENDING_BYTES=9999999TiB",
		"HOLDOVER_STATE_TTL=1.5s\nHOLDOVER_ENDED_TTL=200000h",
		"HOLDOVER_LEASE_TTL=1s\nHOLDOVER_LEASE_RENEW=1s\nHOLDOVER_MAX_CLOCK_SKEW=2s",
		"HOLDOVER_PASSWORD=" + fuzzPassword + "\nHOLDOVER_USERNAME=",
		"HOLDOVER_PASSWORD_FILE=/dev/zero\nHOLDOVER_USERNAME=u",
		"HOLDOVER_PASSWORD_FILE=/etc/passwd\nHOLDOVER_USERNAME=u",
		"HOLDOVER_TLS_CA_FILE=/dev/null\nHOLDOVER_TLS_SERVER_NAME=x",
		"HOLDOVER_TLS_CERT_FILE=/nonexistent",
		"HOLDOVER_KEYSPACE=ks; DROP KEYSPACE x\nHOLDOVER_NODE_ID=a b",
		"HOLDOVER_CONSISTENCY=ANY\nHOLDOVER_SERIAL_CONSISTENCY=QUORUM",
		"HOLDOVER_ADOPT_RATE=Inf\nHOLDOVER_NEGATIVE_CACHE_SIZE=-5",
		"HOLDOVER_UNKNOWN=1\nNOT_HOLDOVER=2",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		environ := map[string]string{}
		for _, line := range strings.Split(input, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				environ[k] = v
			}
		}
		password, sentinel := environ["HOLDOVER_PASSWORD"], false
		if password == "" {
			password, sentinel = fuzzPassword, true
			environ["HOLDOVER_PASSWORD"] = password
		}
		c, err := configFromEnviron(environ)
		if err != nil {
			var ce *ConfigError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error %v (%T) is not a *ConfigError with problems", err, err)
			}
			for _, p := range ce.Problems {
				if !strings.HasPrefix(p.Var, envPrefix) || p.Problem == "" {
					t.Fatalf("problem %q does not name a variable and say what is wrong", p)
				}
			}
			if sentinel && strings.Contains(err.Error(), password) {
				t.Fatalf("the password shows in the error: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("ConfigFromEnv returned a config Validate refuses: %v", err)
		}
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "config", c)
		for what, s := range map[string]string{"String": c.String(), "GoString": fmt.Sprintf("%#v", c), "log": logged.String()} {
			if sentinel && strings.Contains(s, password) {
				t.Fatalf("the password shows in %s: %s", what, s)
			}
		}
	})
}
