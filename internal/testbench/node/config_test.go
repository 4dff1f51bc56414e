package node

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/adapter"
)

func TestConfigDefaultsAndOverrides(t *testing.T) {
	valid := func() (adapter.Config, error) { return adapter.DefaultConfig(), nil }
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

	c, err := configFrom(env(nil), valid)
	if err != nil || c.Listen != "127.0.0.1:8080" || c.DrainTimeout != 10*time.Second || c.LogFormat != "text" || c.LogLevel != slog.LevelInfo || c.TakeoverOnExpiry {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	c, err = configFrom(env(map[string]string{
		"HOLDOVER_NODE_LISTEN": "0.0.0.0:0", "HOLDOVER_NODE_DRAIN_TIMEOUT": "250ms",
		"HOLDOVER_LOG_FORMAT": "json", "HOLDOVER_LOG_LEVEL": "debug", "HOLDOVER_NODE_TAKEOVER_ON_EXPIRY": "true",
	}), valid)
	if err != nil || c.Listen != "0.0.0.0:0" || c.DrainTimeout != 250*time.Millisecond || c.LogFormat != "json" || c.LogLevel != slog.LevelDebug || !c.TakeoverOnExpiry {
		t.Fatalf("overrides: %+v %v", c, err)
	}

	// The adapter's problems and the node's come back together, sorted.
	broken := func() (adapter.Config, error) {
		return adapter.Config{}, &adapter.ConfigError{Problems: []adapter.FieldProblem{{Var: "HOLDOVER_TIMEOUT", Problem: "bad"}}}
	}
	_, err = configFrom(env(map[string]string{"HOLDOVER_NODE_LISTEN": "127.0.0.1:99999", "HOLDOVER_NODE_DRAIN_TIMEOUT": "11m",
		"HOLDOVER_NODE_TAKEOVER_ON_EXPIRY": "sometimes"}), broken)
	var cerr *adapter.ConfigError
	if !errors.As(err, &cerr) || len(cerr.Problems) != 4 {
		t.Fatalf("problems: %v", err)
	}
	for i, v := range []string{"HOLDOVER_NODE_DRAIN_TIMEOUT", "HOLDOVER_NODE_LISTEN", "HOLDOVER_NODE_TAKEOVER_ON_EXPIRY", "HOLDOVER_TIMEOUT"} {
		if cerr.Problems[i].Var != v {
			t.Fatalf("problem %d is %s, want %s", i, cerr.Problems[i].Var, v)
		}
	}
	// HOLDOVER_NODE_ADOPT_WAIT: default 0s, a duration up to 1m.
	if c, err = configFrom(env(map[string]string{"HOLDOVER_NODE_ADOPT_WAIT": "2.5s"}), valid); err != nil || c.AdoptWait != 2500*time.Millisecond {
		t.Fatalf("adopt wait 2.5s: %v %v", c.AdoptWait, err)
	}
	for v, want := range map[string]string{"2m": "between 0s and 1m, got 2m0s", "-1s": "between 0s and 1m", "soon": `such as 2.5s, got "soon"`} {
		_, err := configFrom(env(map[string]string{"HOLDOVER_NODE_ADOPT_WAIT": v}), valid)
		if !errors.As(err, &cerr) || len(cerr.Problems) != 1 || cerr.Problems[0].Var != "HOLDOVER_NODE_ADOPT_WAIT" || !strings.Contains(cerr.Problems[0].Problem, want) {
			t.Fatalf("HOLDOVER_NODE_ADOPT_WAIT=%s: %v, want a problem saying %q", v, err, want)
		}
	}
}
