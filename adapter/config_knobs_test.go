package adapter

import (
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Changing a knob in the table alone changes the default DefaultConfig and
// ConfigFromEnv give, the range Validate and the env parser enforce and
// state, and the README's table, which then no longer matches README.md.
func TestConfigKnobIsTheOneSource(t *testing.T) {
	clearHoldoverEnv(t)
	f := knobNamed("FlushDelay")
	saved := *f
	t.Cleanup(func() { *f = saved })
	f.def, f.max = 250*time.Millisecond, 30*time.Minute

	if got := DefaultConfig().FlushDelay; got != 250*time.Millisecond {
		t.Errorf("DefaultConfig().FlushDelay = %v, want the table's 250ms", got)
	}
	c, err := configFromEnviron(map[string]string{})
	if err != nil || c.FlushDelay != 250*time.Millisecond {
		t.Errorf("ConfigFromEnv without variables: FlushDelay %v, err %v; want the table's 250ms", c.FlushDelay, err)
	}

	c = DefaultConfig()
	c.FlushDelay = 45 * time.Minute // within the old 1h, over the new 30m
	probs := problemsOf(t, c.Validate())
	if len(probs) != 1 || probs[0].Var != "HOLDOVER_FLUSH_DELAY" || !strings.Contains(probs[0].Problem, "between 1ms and 30m, got 45m") {
		t.Errorf("Validate with FlushDelay 45m = %v, want the table's bound 30m", probs)
	}

	_, err = configFromEnviron(map[string]string{"HOLDOVER_FLUSH_DELAY": "soon"})
	probs = problemsOf(t, err)
	if len(probs) != 1 || !strings.Contains(probs[0].Problem, "between 1ms and 30m, written as a duration") {
		t.Errorf("parse problem = %v, want the table's range", probs)
	}

	table := readmeTable(t)
	if row := "| `HOLDOVER_FLUSH_DELAY` | `250ms` | 1ms..30m |"; !strings.Contains(table, row) {
		t.Errorf("README table lacks %q:\n%s", row, table)
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(readme), table) {
		t.Error("README.md still matches the table after the knob changed: TestConfigREADMETable would not notice")
	}
	docs := fieldDocs(t)
	if strings.Contains(docs["FlushDelay"], "default "+defaultDoc(f)) {
		t.Error("the comment of FlushDelay matches the changed default: TestConfigFieldDocsMatchKnobs would not notice")
	}
}

// A bound that is another knob follows that knob's value, and is left out
// while that knob is itself out of range, so one mistake is one problem.
func TestConfigBoundOnAnotherKnob(t *testing.T) {
	c := DefaultConfig()
	c.LeaseTTL, c.MaxClockSkew = 30*time.Second, 7*time.Second // under the new TTL/4
	if err := c.Validate(); err != nil {
		t.Errorf("MaxClockSkew 7s under LeaseTTL 30s: %v", err)
	}
	c.MaxClockSkew = 8 * time.Second
	probs := problemsOf(t, c.Validate())
	if len(probs) != 1 || !strings.Contains(probs[0].Problem, "between 1ms and HOLDOVER_LEASE_TTL/4 (7.5s), got 8s") {
		t.Errorf("MaxClockSkew over LeaseTTL/4: %v", probs)
	}
	c.LeaseTTL = time.Hour // out of range: the skew is not compared with it
	probs = problemsOf(t, c.Validate())
	if len(probs) != 1 || probs[0].Var != "HOLDOVER_LEASE_TTL" {
		t.Errorf("LeaseTTL out of range: %v, want one problem, for HOLDOVER_LEASE_TTL", probs)
	}
}

// The adapter's defaults are the engine's own: the buffer, residency and
// the store used alone default to what the adapter passes them by default.
func TestConfigDefaultsAreTheEngines(t *testing.T) {
	c, b := DefaultConfig(), buffer.DefaultConfig()
	for _, p := range []struct {
		name      string
		got, want any
	}{
		{"FlushDelay", c.FlushDelay, b.Delay},
		{"FlushConcurrency", c.FlushConcurrency, b.Concurrency},
		{"FlushGroupMax", c.FlushGroupMax, b.GroupMax},
		{"FlushGroupBytes", int64(c.FlushGroupBytes), b.GroupBytes},
		{"MaxPendingBytes", int64(c.MaxPendingBytes), b.MaxPendingBytes},
		{"MaxSessionItems", c.MaxSessionItems, b.MaxSessionItems},
		{"MaxBatchBytes", int64(c.MaxBatchBytes), b.MaxBatchBytes},
		{"RetryMin", c.RetryMin, b.RetryMin},
		{"RetryMax", c.RetryMax, b.RetryMax},
		{"LeaseTTL", c.LeaseTTL, time.Duration(residency.DefaultLeaseTTL)},
		{"MaxClockSkew", c.MaxClockSkew, time.Duration(residency.DefaultMaxClockSkew)},
		{"StateTTL", c.StateTTL, time.Duration(residency.DefaultOwnershipTTL)},
		{"EndedTTL", c.EndedTTL, time.Duration(residency.DefaultEndedTTL)},
		{"NegativeCacheTTL", c.NegativeCacheTTL, time.Duration(residency.DefaultNegativeCacheTTL)},
		{"NegativeCacheSize", c.NegativeCacheSize, residency.DefaultNegativeCacheSize},
		{"ConcurrentCreates()", c.ConcurrentCreates(), residency.DefaultMaxConcurrentCreates},
		{"AdoptRate", c.AdoptRate, float64(residency.DefaultTakeoverRate)},
		{"MaxKeyBytes", c.MaxKeyBytes, store.DefaultLimits.MaxKeyBytes},
		{"MaxSessionIDBytes", c.MaxSessionIDBytes, store.DefaultLimits.MaxSessionIDBytes},
		{"MaxValueBytes", int(c.MaxValueBytes), store.DefaultLimits.MaxValueBytes},
	} {
		if p.got != p.want {
			t.Errorf("adapter default %s = %v, the engine's = %v", p.name, p.got, p.want)
		}
	}
}

// Whatever the adapter accepts, the buffer accepts: every knob the buffer
// takes, at either end of its range with the others at their defaults or
// all at the same end, gives a buffer.Config that validates.
func TestConfigBoundsWithinBuffer(t *testing.T) {
	toBuffer := func(c Config) buffer.Config {
		return buffer.Config{
			Delay: c.FlushDelay, MaxPendingBytes: int64(c.MaxPendingBytes), MaxSessionItems: c.MaxSessionItems,
			MaxBatchBytes: int64(c.MaxBatchBytes), Concurrency: c.FlushConcurrency, GroupMax: c.FlushGroupMax,
			GroupBytes: int64(c.FlushGroupBytes), RetryMin: c.RetryMin, RetryMax: c.RetryMax, MaxWindow: c.MaxWindowBound(),
		}
	}
	names := []string{"FlushDelay", "MaxPendingBytes", "MaxSessionItems", "MaxBatchBytes", "FlushConcurrency",
		"FlushGroupMax", "FlushGroupBytes", "RetryMin", "RetryMax", "MaxWindow"}
	// set puts knob name at its lower or upper bound in c.
	set := func(c *Config, name string, upper bool) {
		f := knobNamed(name)
		b, lo := f.max, f.min
		if !upper {
			b = lo
		}
		if v, ok := f.bound(*c, b); ok {
			fv := reflect.ValueOf(c).Elem().Field(f.index)
			fv.Set(v)
			if f.above && !upper { // just above an exclusive bound
				fv.SetInt(fv.Int() + 1)
			}
		}
	}
	tried := 0
	for _, upper := range []bool{false, true} {
		end := map[bool]string{false: "lower", true: "upper"}[upper]
		configs := map[string]Config{}
		all := DefaultConfig()
		for _, name := range names {
			c := DefaultConfig()
			set(&c, name, upper)
			set(&all, name, upper)
			configs[name+" at its "+end+" bound"] = c
		}
		configs["all at their "+end+" bounds"] = all
		for what, c := range configs {
			if c.Validate() != nil {
				continue
			}
			tried++
			if err := toBuffer(c).Validate(); err != nil {
				t.Errorf("the adapter accepts %s, the buffer refuses it: %v", what, err)
			}
		}
	}
	if tried < len(names) {
		t.Errorf("only %d of the configurations at the bounds were valid", tried)
	}
}

// The table and Config agree: one knob per field, in order, with defaults
// and bounds of the field's type (configFields panics otherwise), and a
// default that is itself valid.
func TestConfigKnobsCoverEveryField(t *testing.T) {
	ty := reflect.TypeFor[Config]()
	if len(configFields()) != ty.NumField() {
		t.Fatalf("%d knobs, %d fields", len(configFields()), ty.NumField())
	}
	for i, f := range configFields() {
		if f.name != ty.Field(i).Name || f.envVar == envPrefix {
			t.Errorf("knob %d: %s (%s), field %s", i, f.name, f.envVar, ty.Field(i).Name)
		}
	}
	var ce *ConfigError
	if err := DefaultConfig().Validate(); errors.As(err, &ce) {
		t.Errorf("the table's defaults are not valid: %v", err)
	}
	// A slice default is copied, not shared: a caller's change to one
	// DefaultConfig does not reach the next.
	c := DefaultConfig()
	c.Hosts[0] = "changed"
	if DefaultConfig().Hosts[0] != "127.0.0.1" {
		t.Error("changing DefaultConfig().Hosts changed the default")
	}
}
