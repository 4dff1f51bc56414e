package buffer

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Family is a class of sessions, matched by a prefix of their ID, flushed on its
// own schedule. Sessions matching no family belong to the default family (Name
// ""), which follows the Config's own fields. A session's family is found once,
// when the buffer starts holding it (where Config.CheckSession runs), not on every
// Commit.
type Family struct {
	// Name identifies the family in Stats.Families, FlushEvent.Family, errors and
	// Config.OnFamilyOverload. Required; unique among Config.Families.
	Name string

	// Prefix selects the family's sessions: those whose ID starts with it. When
	// several prefixes match an ID, the longest wins, whatever the order of
	// Config.Families. Required; unique among Config.Families.
	Prefix string

	// Delay is Config.Delay for the family's sessions: the longest a committed
	// change waits before its flush starts, counted from the first unflushed
	// change of its session. Default (0) Config.Delay; range 1ms to 1h.
	Delay time.Duration

	// MaxSessionBytes is the family's largest session, in bytes as counted against
	// the caps. Like Config.MaxSessionBytes it flushes a session early once its
	// dirty items count this many bytes; unlike it, it is also a hard bound: a
	// Commit that would make the session's unflushed items (pending, in flight or
	// waiting to be retried) count more is refused with an error wrapping
	// ErrSessionTooLarge, applies nothing and is counted in
	// FamilyStats.SessionTooLarge. Counting the flight keeps every snapshot of the
	// session, retries included, within the bound; a key rewritten while its
	// previous value is in flight counts twice until the flight lands. Default (0)
	// Config.MaxSessionBytes, without the hard bound; range 1 KiB to
	// MaxPendingBytes.
	MaxSessionBytes int64

	// MaxWindow is Config.MaxWindow for the family: its sessions' Commit and End
	// refuse with ErrOverloaded while the family's own unwritten changes would
	// outlive it; other families are not affected. Default (0) Config.MaxWindow;
	// if the result is not 0 it must exceed the family's Delay, and be at most 24h.
	MaxWindow time.Duration
}

// MaxFamilies is the largest number of Config.Families.
const MaxFamilies = 64

// family is a Family with every limit resolved against the Config; index 0 of
// Buffer.fams is the default family. It is immutable after New but for window.
type family struct {
	name            string
	delay, slack    int64 // Delay, and how early the scheduler may start its flushes (ns)
	maxSessionBytes int64 // flush early at this size
	hardBytes       int64 // refuse beyond this size; 0: no hard bound
	errOverloaded   error
	window          windowGuard
}

// prefixFamily maps a prefix to its family's index in Buffer.fams.
type prefixFamily struct {
	prefix string
	fam    uint8
}

// families resolves the families of a valid Config (with defaults): the default
// family first, then cfg.Families in order, and the prefixes longest first.
func families(cfg Config) ([]family, []prefixFamily) {
	fams := make([]family, 1+len(cfg.Families))
	fams[0] = family{delay: int64(cfg.Delay), maxSessionBytes: cfg.MaxSessionBytes, errOverloaded: ErrOverloaded}
	fams[0].window.init(cfg.MaxWindow, cfg.Delay)
	prefixes := make([]prefixFamily, len(cfg.Families))
	for i, fc := range cfg.Families {
		f := &fams[i+1]
		f.name = fc.Name
		f.delay = int64(cmp.Or(fc.Delay, cfg.Delay))
		f.maxSessionBytes = cmp.Or(fc.MaxSessionBytes, cfg.MaxSessionBytes)
		f.hardBytes = fc.MaxSessionBytes
		w := cmp.Or(fc.MaxWindow, cfg.MaxWindow)
		f.window.init(w, time.Duration(f.delay))
		f.errOverloaded = fmt.Errorf("%w: family %q, whose MaxWindow is %v", ErrOverloaded, fc.Name, w)
		prefixes[i] = prefixFamily{fc.Prefix, uint8(i + 1)}
	}
	for i := range fams {
		fams[i].slack = min(fams[i].delay/16, int64(time.Millisecond))
	}
	// Two different prefixes of one length never both match an ID, so the first
	// match in this order is the longest.
	slices.SortStableFunc(prefixes, func(x, y prefixFamily) int { return cmp.Compare(len(y.prefix), len(x.prefix)) })
	return fams, prefixes
}

// match returns the family of a session the buffer holds nothing of: the one with
// the longest prefix of its ID, or the default family. It runs only when a session
// enters the buffer; the session keeps the result.
func (b *Buffer) match(id string) uint8 {
	for _, p := range b.prefixes {
		if strings.HasPrefix(id, p.prefix) {
			return p.fam
		}
	}
	return 0
}

// validateFamilies appends to errs an error for every field of c.Families out of
// range, each naming its family; c has its defaults.
func (c Config) validateFamilies(errs []error) []error {
	if len(c.Families) > MaxFamilies {
		errs = append(errs, fmt.Errorf("buffer: Config.Families has %d entries; the limit is MaxFamilies (%d)", len(c.Families), MaxFamilies))
	}
	names := make(map[string]int, len(c.Families))
	prefixes := make(map[string]int, len(c.Families))
	for i, f := range c.Families {
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("buffer: Config.Families[%d] (%q): %s", i, f.Name, fmt.Sprintf(format, args...)))
		}
		if f.Name == "" {
			bad("Name is empty")
		} else if j, dup := names[f.Name]; dup {
			bad("Name is also Config.Families[%d]'s; names must be unique", j)
		} else {
			names[f.Name] = i
		}
		if f.Prefix == "" {
			bad("Prefix is empty")
		} else if j, dup := prefixes[f.Prefix]; dup {
			bad("Prefix %q is also Config.Families[%d]'s; prefixes must be unique", f.Prefix, j)
		} else {
			prefixes[f.Prefix] = i
		}
		delayOK := true
		if f.Delay != 0 && (f.Delay < time.Millisecond || f.Delay > time.Hour) {
			bad("Delay is %v; must be between %v and %v", f.Delay, time.Millisecond, time.Hour)
			delayOK = false
		}
		if f.MaxSessionBytes != 0 && (f.MaxSessionBytes < 1<<10 || f.MaxSessionBytes > max(c.MaxPendingBytes, 1<<10)) {
			bad("MaxSessionBytes is %d; must be between %d and MaxPendingBytes (%d)", f.MaxSessionBytes, 1<<10, c.MaxPendingBytes)
		}
		delay := cmp.Or(f.Delay, c.Delay)
		switch {
		case f.MaxWindow != 0 && (f.MaxWindow < 0 || f.MaxWindow > 24*time.Hour || delayOK && f.MaxWindow <= delay):
			bad("MaxWindow is %v; must be above the family's Delay (%v) and at most %v", f.MaxWindow, delay, 24*time.Hour)
		case f.MaxWindow == 0 && c.MaxWindow != 0 && delayOK && c.MaxWindow <= delay:
			bad("MaxWindow is 0, so Config.MaxWindow (%v) applies; it must be above the family's Delay (%v): set the family's own",
				c.MaxWindow, delay)
		}
	}
	return errs
}

// tooLarge is the error of a Commit refused by the family's hard bound.
func (f *family) tooLarge(session string, size int64, alone bool) error {
	return &SessionTooLargeError{Session: session, Family: f.name, Size: size, Limit: f.hardBytes, Alone: alone}
}

// SessionTooLargeError is the error with which Commit refuses a change that
// would make a session's unflushed items count more bytes than its family's
// MaxSessionBytes; it wraps ErrSessionTooLarge. When the change alone is
// over the bound (Alone), no retry can pass: it wraps ErrInvalid too, so a
// host answers it as bad input, not as a refusal for load.
type SessionTooLargeError struct {
	Session, Family string
	Size            int64 // the unflushed bytes the session would hold
	Limit           int64 // the family's MaxSessionBytes
	Alone           bool  // the change alone is over Limit
}

func (e *SessionTooLargeError) Error() string {
	msg := fmt.Sprintf("%v: session %q of family %q would hold %d unflushed bytes; the family's MaxSessionBytes is %d",
		ErrSessionTooLarge, e.Session, e.Family, e.Size, e.Limit)
	if e.Alone {
		msg += "; the change alone is over it, so no retry can pass"
	}
	return msg
}

func (e *SessionTooLargeError) Unwrap() []error {
	if e.Alone {
		return []error{ErrSessionTooLarge, ErrInvalid}
	}
	return []error{ErrSessionTooLarge}
}

// unflushedAfter returns the counted size of s's unflushed items (pending and in
// flight; s is nil for a session the buffer holds nothing of) once changes are
// applied. Unlike the growth reserved against MaxPendingBytes it is exact (only
// the last change of a key counts, a delete frees its value), so a transaction
// that removes as much as it adds fits a session at its hard bound.
func unflushedAfter(s *session, changes []Change) int64 {
	var size int64
	if s != nil {
		size = s.bytes + s.flyBytes
	}
	var last map[string]int // for large transactions: the index of each key's last change
	if len(changes) > 16 {
		last = make(map[string]int, len(changes))
		for i := range changes {
			last[changes[i].Key] = i
		}
	}
	for i := range changes {
		c := &changes[i]
		if last != nil && last[c.Key] != i || last == nil && slices.ContainsFunc(changes[i+1:], func(d Change) bool { return d.Key == c.Key }) {
			continue // a later change of the key supersedes this one
		}
		n := len(c.Value)
		if c.Delete {
			n = 0
		}
		size += entryBytes(len(c.Key), n)
		if s != nil {
			if e, _ := s.lookup(c.Key); e != nil {
				size -= entryBytes(len(c.Key), e.size())
			}
		}
	}
	return size
}
