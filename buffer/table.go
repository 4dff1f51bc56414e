package buffer

// itemTable maps keys to a session's pending entries. It is an open-addressing hash
// table with linear probing over a power-of-two array of entry pointers, plus a
// parallel array of one-byte hash tags so that a probe reads an entry only when its
// tag matches. Kept at most 3/4 full, it costs 9 to 24 bytes per key, where a Go map
// from string to pointer costs 28 to 57.
//
// A pending set only grows (a delete is a tombstone entry) until a snapshot takes the
// whole table or End or Discard empties it, so the table never removes a single key
// and needs no deletion markers.
type itemTable struct {
	tags  []uint8 // 0: empty slot; else tagOf(hash)
	slots []*entry
	n     int
}

const minTableSize = 8

func tagOf(h uint64) uint8 { return uint8(h>>57) | 0x80 }

func (t *itemTable) len() int { return t.n }

// get returns the entry of key (whose hash is h), or nil.
func (t *itemTable) get(key string, h uint64) *entry {
	if t.n == 0 {
		return nil
	}
	mask := uint64(len(t.tags) - 1)
	tag := tagOf(h)
	for i := h & mask; ; i = (i + 1) & mask {
		switch t.tags[i] {
		case 0:
			return nil
		case tag:
			if e := t.slots[i]; e.key() == key {
				return e
			}
		}
	}
}

// insert adds e, whose key (with hash h) is not in the table; hash rehashes keys
// when the table grows.
func (t *itemTable) insert(e *entry, h uint64, hash func(string) uint64) {
	if (t.n+1)*4 > len(t.tags)*3 {
		t.grow(hash)
	}
	t.place(e, h)
	t.n++
}

func (t *itemTable) place(e *entry, h uint64) {
	mask := uint64(len(t.tags) - 1)
	i := h & mask
	for t.tags[i] != 0 {
		i = (i + 1) & mask
	}
	t.tags[i] = tagOf(h)
	t.slots[i] = e
}

func (t *itemTable) grow(hash func(string) uint64) {
	old := t.slots
	size := max(2*len(old), minTableSize)
	t.tags = make([]uint8, size)
	t.slots = make([]*entry, size)
	for _, e := range old {
		if e != nil {
			t.place(e, hash(e.key()))
		}
	}
}

// replace swaps the entry of key (hash h), which must be present, for e.
func (t *itemTable) replace(key string, h uint64, e *entry) {
	mask := uint64(len(t.tags) - 1)
	tag := tagOf(h)
	for i := h & mask; ; i = (i + 1) & mask {
		if t.tags[i] == tag && t.slots[i].key() == key {
			t.slots[i] = e
			return
		}
	}
}

// reset empties the table, keeping its arrays.
func (t *itemTable) reset() {
	if t.n > 0 {
		clear(t.tags)
		clear(t.slots)
		t.n = 0
	}
}
