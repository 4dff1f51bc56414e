package buffer

import "math/bits"

const p0, p1 = 0xa0761d6478bd642f, 0xe7037ed1a0b428db

// hashSeed turns any value (a random number, a small constant in tests) into a seed
// for strhash; like wyhash, strhash relies on its seed being well mixed.
func hashSeed(v uint64) uint64 { return v ^ mum(v^p0, p1) }

// strhash hashes a session ID or item key: a wyhash-style hash (multiply-fold over 8-
// and 16-byte loads). It is used instead of hash/maphash because Commit hashes twice
// (shard, then key) and maphash's call chain costs about as much again as the hashing.
// The seed comes from hashSeed, random per Buffer.
func strhash(s string, seed uint64) uint64 {
	n := len(s)
	var a, b uint64
	switch {
	case n > 16:
		for i := 0; i+16 < n; i += 16 {
			seed = mum(load64(s, i)^p1, load64(s, i+8)^seed)
		}
		a, b = load64(s, n-16), load64(s, n-8)
	case n >= 8:
		a, b = load64(s, 0), load64(s, n-8)
	case n >= 4:
		a, b = load32(s, 0), load32(s, n-4)
	case n > 0:
		a = uint64(s[0])<<16 | uint64(s[n>>1])<<8 | uint64(s[n-1])
	}
	hi, lo := bits.Mul64(a^p1, b^seed)
	return mum(lo^p0^uint64(n), hi^p1)
}

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

// load64 and load32 read little-endian words of s at i; the compiler makes each one
// load.
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

func load32(s string, i int) uint64 {
	s = s[i : i+4]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24
}
