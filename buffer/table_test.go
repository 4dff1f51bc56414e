package buffer

import (
	"fmt"
	"testing"
)

func TestItemTable(t *testing.T) {
	seed := hashSeed(12345)
	hashes := map[string]func(string) uint64{
		"strhash": func(k string) uint64 { return strhash(k, seed) },
		"collide": func(string) uint64 { return 42 }, // one probe chain for every key
		"sametag": func(k string) uint64 { return strhash(k, seed) &^ (0x7f << 57) },
	}
	for name, hash := range hashes {
		t.Run(name, func(t *testing.T) {
			var tab itemTable
			if tab.get("a", hash("a")) != nil {
				t.Fatal("found a key in an empty table")
			}
			const n = 300
			for i := range n {
				k := fmt.Sprint("key", i)
				if tab.get(k, hash(k)) != nil {
					t.Fatalf("%s found before insert", k)
				}
				tab.insert(newEntry(k, []byte(k), false), hash(k), hash)
				if tab.len() != i+1 || (tab.len())*4 > len(tab.tags)*3 {
					t.Fatalf("len %d, size %d", tab.len(), len(tab.tags))
				}
			}
			for i := range n {
				k := fmt.Sprint("key", i)
				e := tab.get(k, hash(k))
				if e == nil || string(e.value()) != k {
					t.Fatalf("%s: got %v", k, e)
				}
				if i%3 == 0 {
					tab.replace(k, hash(k), newEntry(k, []byte("new"), false))
				}
			}
			seen := 0
			for _, e := range tab.slots {
				if e == nil {
					continue
				}
				seen++
				var i int
				fmt.Sscanf(e.key(), "key%d", &i)
				if want := map[bool]string{true: "new", false: e.key()}[i%3 == 0]; string(e.value()) != want {
					t.Errorf("%s = %q, want %q", e.key(), e.value(), want)
				}
			}
			if seen != n || tab.get("nope", hash("nope")) != nil {
				t.Errorf("iteration saw %d of %d", seen, n)
			}
			size := len(tab.tags)
			tab.reset()
			if tab.len() != 0 || len(tab.tags) != size || tab.get("key1", hash("key1")) != nil {
				t.Error("reset")
			}
		})
	}
}

func TestEntry(t *testing.T) {
	for _, tc := range []struct {
		key, val string
		del      bool
	}{{"k", "", false}, {"k", "v", false}, {"key", "", true}, {"a-longer-key", "a value of some length", false}} {
		e := newEntry(tc.key, []byte(tc.val), tc.del)
		if e.key() != tc.key || string(e.value()) != tc.val || e.deleted() != tc.del || e.size() != len(tc.val) {
			t.Errorf("%+v: got key %q value %q deleted %v", tc, e.key(), e.value(), e.deleted())
		}
		if int(e.c) < len(tc.val) {
			t.Errorf("%+v: capacity %d", tc, e.c)
		}
		if e.fits(int(e.c)) {
			e.set(make([]byte, e.c))
			if e.size() != int(e.c) || e.key() != tc.key {
				t.Errorf("%+v: full-capacity set broke the entry", tc)
			}
		}
	}
}

// TestStrhash: no collisions among low-entropy inputs (every single-bit change of
// zero strings up to 40 bytes, plus the strings' lengths), for a few seeds.
func TestStrhash(t *testing.T) {
	for _, raw := range []uint64{0, 1, 7, 1 << 63} {
		seed := hashSeed(raw)
		seen := map[uint64]string{}
		add := func(s string) {
			h := strhash(s, seed)
			if prev, dup := seen[h]; dup && prev != s {
				t.Errorf("seed %d: collision of %q and %q", raw, prev, s)
			}
			seen[h] = s
		}
		for n := range 41 {
			add(string(make([]byte, n)))
			for bit := range n * 8 {
				b := make([]byte, n)
				b[bit/8] = 1 << (bit % 8)
				add(string(b))
			}
		}
	}
	if strhash("abc", hashSeed(1)) == strhash("abc", hashSeed(2)) {
		t.Error("seed ignored")
	}
}
