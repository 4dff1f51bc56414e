package main

import (
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// A value of valid UTF-8 shortened by -max-value-bytes was cut inside a
// character, whose half showed as \xc3: the escape the tool keeps for bytes
// that are not printable UTF-8, so the value seemed to hold one. The cut
// now falls before the character. Found by review.
func TestAShortenedValueIsNotCutInsideACharacter(t *testing.T) {
	v := []byte(strings.Repeat("é", 200)) // 400 bytes of valid UTF-8
	got := quote(v, 255)
	if strings.Contains(got, `\x`) {
		t.Errorf("quote(400 bytes of é, 255) = %s: want no \\x escape, the value holds no invalid byte", got)
	}
	if want := strconv254(); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "... (146 more bytes)") {
		t.Errorf("quote(400 bytes of é, 255) = %s: want the first 127 characters (254 bytes) and 146 more bytes", got)
	}
	// Bytes that are not UTF-8 are still cut where asked.
	bad := []byte(strings.Repeat("\xff", 10))
	if got := quote(bad, 4); got != `"\xff\xff\xff\xff"... (6 more bytes)` {
		t.Errorf("quote of invalid bytes: %s", got)
	}
	// A cut between two characters stays where asked.
	if got := quote([]byte("abcdef"), 3); got != `"abc"... (3 more bytes)` {
		t.Errorf("quote of ASCII: %s", got)
	}
}

func strconv254() string { return `"` + strings.Repeat("é", 127) + `"` }

// A node ID no node can have (here not UTF-8) went to Cassandra, and the
// operator read "String didn't validate", exit 1. It is now a usage error
// (exit 2) that names the node ID's rules. Found by review.
func TestOwnedRefusesANodeIDNoNodeCanHave(t *testing.T) {
	ks := cassandratest.Keyspace(t)
	cfg := useKeyspace(t, ks)
	openNode(t, cfg, "badinput-a") // creates the schema
	for _, id := range []string{"bad\xff", strings.Repeat("n", 70_000), "has space"} {
		_, errOut, code := runInspect(t, "owned", id)
		if code != 2 || !strings.Contains(errOut, "node ID") || !strings.Contains(errOut, "64") && !strings.Contains(errOut, "[A-Za-z0-9._:-]") {
			t.Errorf("owned %.20q: exit %d, stderr %.200q; want exit 2 and an error naming the node ID's rules", id, code, errOut)
		}
	}
}
