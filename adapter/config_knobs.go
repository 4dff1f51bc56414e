package adapter

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

//go:generate go test -run ^TestConfigREADMETable$ -update .

// A knob is one setting of Config: a field, the environment variable that
// sets it, its default and the values it takes. The table knobs is the one
// place where a default and a bound are written. DefaultConfig applies the
// defaults, Validate checks the bounds and runs the checks, ConfigFromEnv
// parses the variables over DefaultConfig and words a value that does not
// parse with the bounds, and the README's configuration table is generated
// from the table (TestConfigREADMETable checks it; go generate ./adapter
// rewrites it, through the test binary, whose TestMain wants the local
// Cassandra). TestConfigDocsStateTheTableDefaults checks the defaults the
// README and docs/ mention in passing. The
// variable's name is the field's env tag, the one caarlos0/env reads, and the
// field's doc comment says what it does: its first sentence is the README's
// "Meaning", and TestConfigFieldDocsMatchKnobs checks that the comment states
// the default and the range the table holds.
//
// Where a default is also a default of the buffer, of residency or of the
// store, the table refers to that package's constant, so the engine used
// alone and the adapter agree.
type knob struct {
	// name is the Config field.
	name string
	// def is the default, of the field's type, or a func() returning one
	// (called by every DefaultConfig). nil leaves the zero value.
	def any
	// defText words a default that def computes ("the host name").
	defText string
	// zero, when set, makes 0 valid whatever min says: 0 then stands for a
	// value derived from other knobs, which zero words.
	zero string
	// min and max bound a number, inclusive (exclusive for min with
	// above): values of the field's type, or other{} for another knob's
	// value. nil: no bound on that side.
	min, max any
	above    bool
	// unit follows the bounds in messages and docs ("sessions per second").
	unit string
	// seconds requires a whole number of seconds (Cassandra TTLs).
	seconds bool
	// oneOf lists the values a string may take.
	oneOf []string
	// when, if set, limits the checks to the configurations where it holds.
	when func(Config) bool
	// check, if set, checks what bounds cannot say; v is the variable.
	check func(c Config, k *checker, v string)
	// rules words check's rules for the docs, in a few words.
	rules string

	// Filled in from the struct field by configFields.
	index  int
	envVar string // full variable name
	key    string // log key: envVar without prefix, lower case
	secret bool
}

// other is a bound that is the value of another knob, divided by div if
// div > 1. It is skipped while that knob is itself out of its bounds, so a
// wrong value is reported once.
type other struct {
	name string
	div  int
}

// maxReplicas bounds HOLDOVER_REPLICATION_FACTOR and each count of
// HOLDOVER_REPLICATION_DCS.
const maxReplicas = 10

func notNTS(c Config) bool { return c.ReplicationClass != NetworkTopologyStrategy }

// knobs lists every field of Config, in declaration order.
var knobs = []knob{
	{name: "Hosts", def: []string{"127.0.0.1"}, check: Config.checkHosts, rules: "comma-separated `host` or `host:port`, at least one"},
	{name: "Port", def: 9042, min: 1, max: 65535},
	{name: "LocalDC", check: Config.checkLocalDC, rules: "with NetworkTopologyStrategy and `LOCAL_*` levels, one of HOLDOVER_REPLICATION_DCS"},
	{name: "Keyspace", def: "holdover", check: Config.checkKeyspace, rules: "a CQL identifier, `" + identifierPattern + "`"},
	{name: "ReplicationClass", def: SimpleStrategy, oneOf: []string{SimpleStrategy, NetworkTopologyStrategy}},
	{name: "ReplicationFactor", def: 1, min: 1, max: maxReplicas, when: notNTS},
	{name: "ReplicationDCs", check: Config.checkReplicationDCs, rules: "`name:count` pairs such as `dc1:3,dc2:3`, counts 1.." + strconv.Itoa(maxReplicas) + "; required with NetworkTopologyStrategy, empty otherwise"},
	{name: "CreateSchema", def: true},
	{name: "Consistency", def: "LOCAL_QUORUM", oneOf: consistencyLevels},
	{name: "SerialConsistency", def: "SERIAL", oneOf: serialConsistencyLevels},
	{name: "ConnectTimeout", def: 5 * time.Second, min: 100 * time.Millisecond, max: 5 * time.Minute},
	{name: "Timeout", def: 5 * time.Second, min: 10 * time.Millisecond, max: 5 * time.Minute},
	{name: "TLS"},
	{name: "TLSCAFile", check: Config.checkTLSCAFile, rules: "a readable PEM file"},
	{name: "TLSCertFile", check: Config.checkTLSCertFile, rules: "a readable PEM file, with HOLDOVER_TLS_KEY_FILE"},
	{name: "TLSKeyFile", check: Config.checkTLSKeyFile, rules: "a readable PEM file, with HOLDOVER_TLS_CERT_FILE"},
	{name: "TLSServerName", check: Config.checkTLSServerName, rules: "only with TLS"},
	{name: "TLSInsecureSkipVerify", check: Config.checkTLSInsecureSkipVerify, rules: "only with TLS"},
	{name: "Username"},
	{name: "Password", check: Config.checkPassword, rules: "only with HOLDOVER_USERNAME"},
	{name: "PasswordFile", check: Config.checkSecrets, rules: "a regular file of 1.." + strconv.Itoa(maxSecretFileBytes) + " bytes, mode o-rwx; only with HOLDOVER_USERNAME, not with HOLDOVER_PASSWORD"},
	{name: "NodeID", def: defaultNodeID, defText: "the host name", check: checkNodeID, rules: "1.." + strconv.Itoa(maxNodeIDBytes) + " bytes of `[A-Za-z0-9._:-]`"},
	{name: "FlushDelay", def: buffer.DefaultDelay, min: time.Millisecond, max: time.Hour},
	{name: "FlushConcurrency", def: buffer.DefaultConcurrency, min: 1, max: 1024},
	{name: "MaxConcurrentCreates", zero: "half of HOLDOVER_FLUSH_CONCURRENCY", min: 1, max: other{name: "FlushConcurrency"}},
	{name: "FlushGroupMax", def: buffer.DefaultGroupMax, min: 1, max: 64},
	{name: "FlushGroupBytes", def: ByteSize(buffer.DefaultGroupBytes), min: ByteSize(256), max: 48 * KiB},
	{name: "MaxPendingBytes", def: ByteSize(buffer.DefaultMaxPendingBytes), min: MiB, max: 64 * GiB},
	{name: "MaxSessionItems", def: buffer.DefaultMaxSessionItems, min: 1, max: 1000000},
	{name: "MaxBatchBytes", def: ByteSize(buffer.DefaultMaxBatchBytes), min: 64 * KiB, max: 15 * MiB},
	{name: "MaxValueBytes", def: ByteSize(store.DefaultLimits.MaxValueBytes), min: ByteSize(1), max: 15 * MiB,
		check: Config.checkValueFitsBatch, rules: "at most HOLDOVER_MAX_BATCH_BYTES"},
	{name: "MaxKeyBytes", def: store.DefaultLimits.MaxKeyBytes, min: 1, max: 4096},
	{name: "MaxSessionIDBytes", def: store.DefaultLimits.MaxSessionIDBytes, min: 1, max: 1024},
	{name: "MaxWindow", zero: "10 × HOLDOVER_FLUSH_DELAY, at least 1s", min: other{name: "FlushDelay"}, above: true, max: 24 * time.Hour},
	{name: "RetryMin", def: buffer.DefaultRetryMin, min: time.Millisecond, max: time.Minute},
	{name: "RetryMax", def: buffer.DefaultRetryMax, min: other{name: "RetryMin"}, max: 10 * time.Minute},
	{name: "LeaseTTL", def: residency.DefaultLeaseTTL, min: time.Second, max: 10 * time.Minute},
	{name: "LeaseRenew", zero: "HOLDOVER_LEASE_TTL/3", min: time.Duration(0), above: true, max: other{name: "LeaseTTL", div: 2}},
	{name: "MaxClockSkew", def: residency.DefaultMaxClockSkew, min: time.Millisecond, max: other{name: "LeaseTTL", div: 4}},
	{name: "StateTTL", def: residency.DefaultOwnershipTTL, min: time.Second, max: maxCassandraTTL, unit: cassandraTTLNote, seconds: true},
	{name: "RebaseDeletes", def: store.DefaultRebaseDeletes, min: 1, max: 1000000},
	{name: "EndedTTL", def: residency.DefaultEndedTTL, min: time.Second, max: maxCassandraTTL, unit: cassandraTTLNote, seconds: true},
	{name: "NegativeCacheTTL", def: residency.DefaultNegativeCacheTTL, min: time.Duration(0), max: time.Hour},
	{name: "NegativeCacheSize", def: residency.DefaultNegativeCacheSize, min: 0, max: 100000000},
	{name: "AdoptRate", def: float64(residency.DefaultTakeoverRate), min: 0.0, above: true, max: 1e6, unit: "sessions per second"},
	{name: "Families", check: Config.checkFamilies, rules: "`name:option=value,...` entries separated by `;`; options `delay`, `ttl`, `max`, `window`, `shared`, `refresh` (see Family); at most 32"},
}

// cassandraTTLNote follows the bounds of a TTL.
const cassandraTTLNote = "(20 years, Cassandra's largest TTL)"

// configFields returns the knobs with the facts of their struct fields
// filled in. It panics if the table and Config disagree (a field without a
// knob, a knob out of order, a default or bound of the wrong type), so that
// every test catches it.
var configFields = sync.OnceValue(func() []*knob {
	t := reflect.TypeFor[Config]()
	if len(knobs) != t.NumField() {
		panic(fmt.Sprintf("adapter: %d knobs for the %d fields of Config", len(knobs), t.NumField()))
	}
	fields := make([]*knob, len(knobs))
	for i := range knobs {
		f, sf := &knobs[i], t.Field(i)
		if f.name != sf.Name {
			panic(fmt.Sprintf("adapter: knob %d is %s, field %d of Config is %s", i, f.name, i, sf.Name))
		}
		tag, _, _ := strings.Cut(sf.Tag.Get("env"), ",")
		f.index, f.envVar, f.key = i, envPrefix+tag, strings.ToLower(tag)
		f.secret = sf.Tag.Get("secret") == "true"
		if d := f.defaultValue(); d.IsValid() && d.Type() != sf.Type {
			panic(fmt.Sprintf("adapter: default of %s is a %s, want %s", f.name, d.Type(), sf.Type))
		}
		for _, b := range []any{f.min, f.max} {
			if _, ok := b.(other); !ok && b != nil && reflect.TypeOf(b) != sf.Type {
				panic(fmt.Sprintf("adapter: bound of %s is a %T, want %s", f.name, b, sf.Type))
			}
		}
		fields[i] = f
	}
	return fields
})

// knobNamed returns the knob of field name.
func knobNamed(name string) *knob {
	i := slices.IndexFunc(configFields(), func(f *knob) bool { return f.name == name })
	return configFields()[i]
}

// DefaultConfig returns the configuration used when no variable is set:
// every field at its default. It is valid as it stands.
func DefaultConfig() Config {
	var c Config
	rv := reflect.ValueOf(&c).Elem()
	for _, f := range configFields() {
		if d := f.defaultValue(); d.IsValid() {
			rv.Field(f.index).Set(d)
		}
	}
	return c
}

// defaultValue returns the default of f, a fresh copy of a slice or map,
// or the invalid Value for the zero value.
func (f *knob) defaultValue() reflect.Value {
	if f.def == nil {
		return reflect.Value{}
	}
	d := reflect.ValueOf(f.def)
	if d.Kind() == reflect.Func {
		d = d.Call(nil)[0]
	}
	switch d.Kind() {
	case reflect.Slice:
		d = reflect.AppendSlice(reflect.MakeSlice(d.Type(), 0, d.Len()), d)
	case reflect.Map:
		m := reflect.MakeMapWithSize(d.Type(), d.Len())
		for it := d.MapRange(); it.Next(); {
			m.SetMapIndex(it.Key(), it.Value())
		}
		d = m
	}
	return d
}

// knob checks c's value of f against f's bounds and rules.
func (k *checker) knob(c Config, f *knob) {
	if f.when != nil && !f.when(c) {
		return
	}
	v := reflect.ValueOf(c).Field(f.index)
	if f.oneOf != nil {
		k.oneOf(f.envVar, v.String(), f.oneOf...)
	}
	switch {
	case !f.inBounds(c, v):
		k.add(f.envVar, "must be %s, got %s", f.allowed(c), formatValue(v))
	case f.seconds && v.Int()%int64(time.Second) != 0:
		k.add(f.envVar, "must be a whole number of seconds (Cassandra TTLs are in seconds), got %s", formatValue(v))
	}
	if f.check != nil {
		f.check(c, k, f.envVar)
	}
}

// inBounds reports whether v, c's value of f, is within f's bounds.
func (f *knob) inBounds(c Config, v reflect.Value) bool {
	if f.min == nil && f.max == nil || f.zero != "" && v.IsZero() {
		return true
	}
	lo, hasLo := f.bound(c, f.min)
	hi, hasHi := f.bound(c, f.max)
	if v.Kind() == reflect.Float64 { // written so that NaN is out
		x := v.Float()
		return (!hasLo || x > lo.Float() || !f.above && x == lo.Float()) && (!hasHi || x <= hi.Float())
	}
	x := v.Int()
	return (!hasLo || x > lo.Int() || !f.above && x == lo.Int()) && (!hasHi || x <= hi.Int())
}

// bound returns the value of bound b in c, and false when there is none:
// b is nil, or another knob that is out of its own bounds.
func (f *knob) bound(c Config, b any) (reflect.Value, bool) {
	o, ok := b.(other)
	if !ok {
		return reflect.ValueOf(b), b != nil
	}
	of := knobNamed(o.name)
	v := reflect.ValueOf(c).Field(of.index)
	if !of.inBounds(c, v) {
		return reflect.Value{}, false
	}
	if o.div > 1 {
		d := reflect.New(v.Type()).Elem()
		d.SetInt(v.Int() / int64(o.div))
		v = d
	}
	return v, true
}

// allowed words f's bounds for an error message, with the values of the
// other knobs they refer to in c: "between 1ms and 1h", "0 (meaning
// HOLDOVER_LEASE_TTL/3) or more than 0 and at most HOLDOVER_LEASE_TTL/2
// (5s)". It is "" for a knob without bounds.
func (f *knob) allowed(c Config) string {
	text := func(b any) string {
		o, ok := b.(other)
		if !ok {
			return formatValue(reflect.ValueOf(b))
		}
		s := knobNamed(o.name).envVar
		if o.div > 1 {
			s += "/" + strconv.Itoa(o.div)
		}
		if v, ok := f.bound(c, b); ok {
			s += " (" + formatValue(v) + ")"
		}
		return s
	}
	var s string
	switch {
	case f.min != nil && f.max != nil && f.above:
		s = "more than " + text(f.min) + " and at most " + text(f.max)
		if _, ok := f.min.(other); ok {
			s = "above " + text(f.min) + " and at most " + text(f.max)
		}
	case f.min != nil && f.max != nil:
		s = "between " + text(f.min) + " and " + text(f.max)
	case f.min != nil && f.above:
		s = "more than " + text(f.min)
	case f.min != nil:
		s = "at least " + text(f.min)
	case f.max != nil:
		s = "at most " + text(f.max)
	default:
		return ""
	}
	if f.unit != "" {
		s += " " + f.unit
	}
	if f.zero != "" {
		s = "0 (meaning " + f.zero + ") or " + s
	}
	return s
}

// formatValue writes a value of a Config field as a variable would hold
// it: "100ms", "4MiB", "a,b", "dc1:3,dc2:3", "1000000".
func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return fmtDuration(x)
	case ByteSize:
		return x.String()
	case []string:
		return strings.Join(x, ",")
	case map[string]int:
		pairs := make([]string, 0, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			pairs = append(pairs, k+":"+strconv.Itoa(x[k]))
		}
		return strings.Join(pairs, ",")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case Families:
		return x.String()
	}
	return fmt.Sprint(v.Interface())
}
