package adapter

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/holdover/holdover/buffer"
)

// FamilySeparator ends a family's name at the start of a session ID: the
// session "reg:alice@example.com" belongs to the family "reg" when one is
// configured. A family is named by the part of the ID before the first
// separator, not by any prefix, so that "reg" never takes in "regular:42",
// and finding a session's family is one byte search and one map lookup.
const FamilySeparator = ':'

// DefaultSharedRefresh is how often a node re-reads a shared family when its
// entry names no refresh interval.
const DefaultSharedRefresh = time.Second

// maxFamilies bounds HOLDOVER_FAMILIES.
const maxFamilies = 32

// familyNameRE is the rule for family names: short, and free of the
// characters the HOLDOVER_FAMILIES syntax uses.
var familyNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,32}$`)

// Family is a class of sessions with its own policy, named by the start of
// their IDs up to FamilySeparator: with a family "reg", "reg:alice" is one of
// its sessions. A session of no configured family follows the node's
// settings. A zero field takes the node's setting.
type Family struct {
	// Name starts the IDs of the family's sessions, before FamilySeparator:
	// 1..32 bytes of [A-Za-z0-9_.-], unique.
	Name string
	// FlushDelay replaces HOLDOVER_FLUSH_DELAY for the family's sessions:
	// registrations can wait seconds, a queue's state milliseconds.
	// 0: HOLDOVER_FLUSH_DELAY; range 1ms..1h.
	FlushDelay time.Duration
	// StateTTL replaces HOLDOVER_STATE_TTL for the family's state (and
	// ownership rows): what no node keeps resident expires after it.
	// 0: HOLDOVER_STATE_TTL; whole seconds, 1s..175200h.
	StateTTL time.Duration
	// MaxSessionBytes is the family's largest session: the most bytes of
	// unwritten changes (keys and values) one of its sessions may hold. A
	// session that reaches it is written at once, and a Commit that would
	// take it past is refused (ErrSessionTooLarge, naming the family and
	// the limit) and applies nothing. 0: no bound of its own; range 1KiB..1GiB,
	// and at most HOLDOVER_MAX_PENDING_BYTES (64MiB for a shared family).
	MaxSessionBytes ByteSize
	// MaxWindow replaces HOLDOVER_MAX_WINDOW for the family's sessions: the
	// bound on their durability window, past which Commit refuses them with
	// ErrOverloaded (the other families keep theirs). 0:
	// HOLDOVER_MAX_WINDOW when that is set, else 10 × the family's delay
	// (at least 1s); otherwise above the family's delay, at most 24h.
	MaxWindow time.Duration
	// Shared makes the family's state common to every node: no ownership,
	// no adoption, no fencing; any node writes it (CommitShared, EndShared)
	// and every node reads it (Shared), and concurrent writes resolve by
	// their write timestamps, the last writer winning (see
	// docs/families.md for what a shared family is not).
	Shared bool
	// Refresh is how often a node re-reads a shared family from Cassandra
	// to see other nodes' writes. Only for shared families. 0:
	// DefaultSharedRefresh (1s); range 100ms..1h.
	Refresh time.Duration
}

// Families is the list of HOLDOVER_FAMILIES. It reads and writes the
// variable's syntax: entries separated by ';', each a name, then optionally
// ':' and comma-separated options:
//
//	reg:delay=5s,ttl=1h;call:delay=50ms;settings:shared,refresh=2s
//
// Options: delay (FlushDelay, a duration), ttl (StateTTL, a duration in whole
// seconds), max (MaxSessionBytes, a byte size such as 64KiB), window
// (MaxWindow, a duration), shared (a flag: Shared), refresh (Refresh, a
// duration).
type Families []Family

// UnmarshalText parses the HOLDOVER_FAMILIES syntax. It reports every entry
// it cannot read at once, each naming the family and the option; ranges are
// Config.Validate's to check.
func (fs *Families) UnmarshalText(text []byte) error {
	var out Families
	var errs []error
	for i, entry := range strings.Split(string(text), ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		name, opts, _ := strings.Cut(entry, ":")
		name = strings.TrimSpace(name)
		f := Family{Name: name}
		label := fmt.Sprintf("family %q", name)
		if name == "" {
			label = fmt.Sprintf("entry %d", i+1)
		}
		if strings.TrimSpace(opts) != "" {
			set := map[string]bool{}
			for _, opt := range strings.Split(opts, ",") {
				opt = strings.TrimSpace(opt)
				key, _, _ := strings.Cut(opt, "=")
				if key = strings.TrimSpace(key); key != "" && set[key] {
					errs = append(errs, fmt.Errorf("%s: option %s given twice", label, key))
					continue
				}
				set[key] = true
				if err := f.setOption(opt); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", label, err))
				}
			}
		}
		out = append(out, f)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*fs = out
	return nil
}

// setOption applies one "name=value" (or "shared") option to f.
func (f *Family) setOption(opt string) error {
	key, val, hasVal := strings.Cut(opt, "=")
	key, val = strings.TrimSpace(key), strings.TrimSpace(val)
	duration := func(dst *time.Duration) error {
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%s %q is not a duration such as \"50ms\", \"5s\" or \"1h\"", key, val)
		}
		*dst = d
		return nil
	}
	switch key {
	case "delay":
		return duration(&f.FlushDelay)
	case "ttl":
		return duration(&f.StateTTL)
	case "refresh":
		return duration(&f.Refresh)
	case "window":
		return duration(&f.MaxWindow)
	case "max":
		b, err := ParseByteSize(val)
		if err != nil {
			return fmt.Errorf("max %q is not a byte size such as \"64KiB\"", val)
		}
		f.MaxSessionBytes = b
		return nil
	case "shared":
		if hasVal {
			return fmt.Errorf("shared takes no value, got %q", val)
		}
		f.Shared = true
		return nil
	case "":
		return errors.New("empty option")
	}
	return fmt.Errorf("unknown option %q; options are delay, ttl, max, window, shared, refresh", key)
}

// MarshalText writes fs in the HOLDOVER_FAMILIES syntax; it parses back to
// the same list.
func (fs Families) MarshalText() ([]byte, error) { return []byte(fs.String()), nil }

// String is the HOLDOVER_FAMILIES form of fs.
func (fs Families) String() string {
	var b strings.Builder
	for i, f := range fs {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(f.Name)
		var opts []string
		if f.FlushDelay != 0 {
			opts = append(opts, "delay="+fmtDuration(f.FlushDelay))
		}
		if f.StateTTL != 0 {
			opts = append(opts, "ttl="+fmtDuration(f.StateTTL))
		}
		if f.MaxSessionBytes != 0 {
			opts = append(opts, "max="+f.MaxSessionBytes.String())
		}
		if f.MaxWindow != 0 {
			opts = append(opts, "window="+fmtDuration(f.MaxWindow))
		}
		if f.Shared {
			opts = append(opts, "shared")
		}
		if f.Refresh != 0 {
			opts = append(opts, "refresh="+fmtDuration(f.Refresh))
		}
		if len(opts) > 0 {
			b.WriteByte(':')
			b.WriteString(strings.Join(opts, ","))
		}
	}
	return b.String()
}

// checkFamilies checks every family's fields against their ranges,
// reporting each problem with the family's name.
func (c Config) checkFamilies(k *checker, v string) {
	if len(c.Families) > maxFamilies {
		k.add(v, "must list at most %d families, got %d", maxFamilies, len(c.Families))
	}
	seen := map[string]bool{}
	for i, f := range c.Families {
		label := fmt.Sprintf("family %q", f.Name)
		if !familyNameRE.MatchString(f.Name) {
			k.add(v, "entry %d: family name %q must be 1..32 bytes of [A-Za-z0-9_.-]", i+1, f.Name)
			continue
		}
		if seen[f.Name] {
			k.add(v, "%s: listed twice", label)
		}
		seen[f.Name] = true
		if d := f.FlushDelay; d != 0 && (d < time.Millisecond || d > time.Hour) {
			k.add(v, "%s: delay must be between 1ms and 1h, got %s", label, fmtDuration(d))
		}
		if d := f.StateTTL; d != 0 && (d < time.Second || d > maxCassandraTTL || d%time.Second != 0) {
			k.add(v, "%s: ttl must be whole seconds between 1s and 175200h %s, got %s", label, cassandraTTLNote, fmtDuration(d))
		}
		if b := f.MaxSessionBytes; b != 0 && (b < KiB || b > GiB) {
			k.add(v, "%s: max must be between 1KiB and 1GiB, got %s", label, b)
		} else if limit, of := c.familyPendingCap(f); b > limit && c.MaxPendingBytes >= MiB {
			// (an out-of-range HOLDOVER_MAX_PENDING_BYTES is reported under its name)
			k.add(v, "%s: max must be at most %s, %s, got %s", label, limit, of, b)
		}
		if f.Refresh != 0 && !f.Shared {
			k.add(v, "%s: refresh is only for shared families", label)
		}
		if d := f.Refresh; d != 0 && (d < 100*time.Millisecond || d > time.Hour) {
			k.add(v, "%s: refresh must be between 100ms and 1h, got %s", label, fmtDuration(d))
		}
		switch delay := c.familyDelay(f); {
		case f.MaxWindow != 0 && (f.MaxWindow <= delay || f.MaxWindow > 24*time.Hour):
			k.add(v, "%s: window must be above its delay (%s) and at most 24h, got %s", label, fmtDuration(delay), fmtDuration(f.MaxWindow))
		case f.MaxWindow == 0 && c.MaxWindow != 0 && f.FlushDelay != 0 && delay >= c.MaxWindow:
			// (the node's delay is checked against it under HOLDOVER_MAX_WINDOW)
			k.add(v, "%s: delay %s must be below HOLDOVER_MAX_WINDOW (%s), or give the family a window= of its own", label, fmtDuration(delay), fmtDuration(c.MaxWindow))
		}
	}
}

// familyPendingCap is the cap on the bytes pending in the buffer of family
// f's sessions, which its largest session must fit in, and what sets it.
func (c Config) familyPendingCap(f Family) (ByteSize, string) {
	if f.Shared && c.MaxPendingBytes > sharedMaxPendingBytes {
		return sharedMaxPendingBytes, "the cap of the shared families' buffer"
	}
	return c.MaxPendingBytes, "HOLDOVER_MAX_PENDING_BYTES"
}

// family returns the configured family of session, or nil.
func (c *familyTable) of(session string) *Family {
	if c == nil || len(c.byName) == 0 {
		return nil
	}
	i := strings.IndexByte(session, FamilySeparator)
	if i <= 0 {
		return nil
	}
	return c.byName[session[:i]]
}

// named returns the family named name, or nil.
func (c *familyTable) named(name string) *Family {
	if c == nil {
		return nil
	}
	return c.byName[name]
}

// familyTable finds a session's family; nil when none is configured.
type familyTable struct {
	byName map[string]*Family
	shared bool // some family is shared
}

// newFamilyTable indexes fs (validated).
func newFamilyTable(fs Families) *familyTable {
	if len(fs) == 0 {
		return nil
	}
	t := &familyTable{byName: make(map[string]*Family, len(fs))}
	for i := range fs {
		f := fs[i]
		if f.Shared && f.Refresh == 0 {
			f.Refresh = DefaultSharedRefresh
		}
		t.byName[f.Name] = &f
		t.shared = t.shared || f.Shared
	}
	return t
}

// Prefix is the start of the IDs of the family's sessions: its name and
// FamilySeparator.
func (f Family) Prefix() string { return f.Name + string(FamilySeparator) }

// FamilyOf returns the name of the configured family session belongs to, or
// "" for a session of no family.
func (a *Adapter) FamilyOf(session string) string {
	if f := a.fams.of(session); f != nil {
		return f.Name
	}
	return ""
}

// ttlOf is the state TTL of session's family, or 0 for the node's
// (HOLDOVER_STATE_TTL): residency's OwnershipTTLOf and the store's TTLFor.
func (c *familyTable) ttlOf(session string) time.Duration {
	if f := c.of(session); f != nil {
		return f.StateTTL
	}
	return 0
}

// ttlOfFamily is the state TTL of f's sessions.
func (a *Adapter) ttlOfFamily(f *Family) time.Duration {
	if f.StateTTL > 0 {
		return f.StateTTL
	}
	return a.cfg.StateTTL
}

// shortestTTL is the shortest state TTL any session may have.
func (c Config) shortestTTL() time.Duration {
	d := c.StateTTL
	for _, f := range c.Families {
		if f.StateTTL > 0 {
			d = min(d, f.StateTTL)
		}
	}
	return d
}

// familyWindow is the durability-window bound of f's sessions: its own,
// or HOLDOVER_MAX_WINDOW when set, else 10 × the family's delay, at least
// 1s.
func (c Config) familyWindow(f Family) time.Duration {
	switch {
	case f.MaxWindow > 0:
		return f.MaxWindow
	case c.MaxWindow > 0 || f.FlushDelay == 0:
		return c.MaxWindowBound()
	}
	return max(10*f.FlushDelay, time.Second)
}

// familyDelay is the flush delay of f's sessions: its own, or
// HOLDOVER_FLUSH_DELAY.
func (c Config) familyDelay(f Family) time.Duration { return cmp.Or(f.FlushDelay, c.FlushDelay) }

// creationBudget is how long a new session of f (Family{}: of no family)
// may wait for its ownership record: half of what its window bound leaves
// after its flush delay, the rest being a margin for its first write (the
// record is made while its first changes wait for their delay: see
// admissionOf).
func (c Config) creationBudget(f Family) time.Duration {
	return (c.familyWindow(f) - c.familyDelay(f)) / 2
}

// admissionOf is residency's AdmissionOf: the creation budget of a session's
// family (Family{} for a session of none; fams may be nil), given flight, the
// longest write of the session's family in about the last window, and a lead
// of 0: the adapter starts recording a new session as soon as it accepts the
// session's first changes (residency's Prepare, from the buffer's OnNew), so
// no admitted session waits to start its creation.
//
// The budget is creationBudget, less when writes are slow. A new session
// admitted now is recorded while its first changes wait for their delay, and
// written once both are done, one flight later: its creation may take the
// window bound less a flight. A change committed to it after its first write
// was taken (a delay after the first changes, at the earliest) waits for that
// write to land, then for its own, one flight more: the creation may take the
// bound plus the delay less two flights. A budget those leave nothing of is
// the least there is (1 ns): residency admits no new session until the writes
// are faster, and does not read 0 as no limit.
func (c Config) admissionOf(fams *familyTable, flight func(session string) time.Duration) func(string) (time.Duration, time.Duration) {
	return func(session string) (time.Duration, time.Duration) {
		var f Family
		if fams != nil {
			if ff := fams.of(session); ff != nil {
				f = *ff
			}
		}
		w, d, fl := c.familyWindow(f), c.familyDelay(f), flight(session)
		return max(min(c.creationBudget(f), w-fl, w+d-2*fl), time.Nanosecond), 0
	}
}

// bufferFamilies are the buffer's families: the shared ones for the shared
// families' buffer, the others for the node's.
func (c Config) bufferFamilies(shared bool) []buffer.Family {
	var out []buffer.Family
	for _, f := range c.Families {
		if f.Shared != shared {
			continue
		}
		out = append(out, buffer.Family{
			Name: f.Name, Prefix: f.Prefix(), Delay: f.FlushDelay,
			MaxSessionBytes: int64(f.MaxSessionBytes), MaxWindow: c.familyWindow(f),
		})
	}
	return out
}
