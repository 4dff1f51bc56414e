package buffer

import (
	"slices"
	"unsafe"
)

// An entry stores one pending item in a single allocation laid out as
//
//	[n, c, k uint32][key bytes][value bytes ... spare capacity]
//
// The session's itemTable holds one pointer per entry and finds keys in the entries
// themselves, so a dirty key costs one allocation plus a table slot of 9 bytes, and the
// buffer owns copies of both key and value. Rewriting a value that fits the capacity
// changes neither the table nor the heap: that is the Commit fast path.
//
// Key bytes are never written after the entry is made. Value bytes are written only
// while the entry sits in a session's pending table, never while a flush reads it.
type entry struct {
	n uint32 // value length, or tombstone for a pending delete
	c uint32 // value capacity
	k uint32 // key length
}

const (
	entryHeader = int(unsafe.Sizeof(entry{}))
	tombstone   = ^uint32(0)
	// minEntry keeps entries out of the tiny allocator, which would not align them.
	minEntry = 16
	// entryOverhead and sessionOverhead estimate the memory of an item and of a
	// session beyond their key and value bytes (table slot, header, allocation
	// rounding, session record); they count against MaxPendingBytes.
	entryOverhead   = 40
	sessionOverhead = 384
)

// newEntry allocates an entry for key holding v, or a delete when del.
func newEntry(key string, v []byte, del bool) *entry {
	if del {
		v = nil // a delete's Value is ignored: neither kept nor counted
	}
	size := max(entryHeader+len(key)+len(v), minEntry)
	buf := slices.Grow([]byte(nil), size) // rounds the capacity up to the size class
	buf = buf[:cap(buf)]
	e := (*entry)(unsafe.Pointer(unsafe.SliceData(buf)))
	copy(buf[entryHeader:], key)
	copy(buf[entryHeader+len(key):], v)
	e.k = uint32(len(key))
	e.c = uint32(len(buf) - entryHeader - len(key))
	e.n = uint32(len(v))
	if del {
		e.n = tombstone
	}
	return e
}

// key returns the entry's key, aliasing its bytes.
func (e *entry) key() string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(e), entryHeader)), e.k)
}

// deleted reports whether the entry is a pending delete.
func (e *entry) deleted() bool { return e.n == tombstone }

// size is the value length (0 for a delete).
func (e *entry) size() int {
	if e.n == tombstone {
		return 0
	}
	return int(e.n)
}

// value returns the value bytes, nil for a delete or an empty value.
func (e *entry) value() []byte {
	if e.n == tombstone || e.n == 0 {
		return nil
	}
	p := unsafe.Add(unsafe.Pointer(e), entryHeader+int(e.k))
	return unsafe.Slice((*byte)(p), e.n)
}

// fits reports whether a value of n bytes can be written in place without keeping
// more than 4x its size (or 1 KiB) of capacity alive.
func (e *entry) fits(n int) bool {
	c := int(e.c)
	return n <= c && (c <= 1024 || n >= c/4)
}

// set writes v in place; the caller checked fits(len(v)).
func (e *entry) set(v []byte) {
	if len(v) > 0 {
		p := unsafe.Add(unsafe.Pointer(e), entryHeader+int(e.k))
		copy(unsafe.Slice((*byte)(p), len(v)), v)
	}
	e.n = uint32(len(v))
}

// entryBytes is an item's size as counted against the caps.
func entryBytes(klen, vlen int) int64 { return int64(klen + vlen + entryOverhead) }
