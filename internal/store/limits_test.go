package store_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/holdover/holdover/internal/store"
)

// TestLimitsRefuseInvalidUTF8: session IDs and keys are CQL text, which
// Cassandra refuses unless it is valid UTF-8; the limits refuse them first, with
// a *LimitError that names the field and says why. Values are blobs: any bytes.
func TestLimitsRefuseInvalidUTF8(t *testing.T) {
	l := store.DefaultLimits
	for _, bad := range []string{"\xff", "ok\xc3", "a\xed\xa0\x80b", "\xc0\xaf"} {
		for _, c := range []struct {
			field string
			err   error
		}{
			{"session ID", l.CheckSession(bad)},
			{"key", l.CheckItem(bad, []byte("v"))},
		} {
			var le *store.LimitError
			if !errors.As(c.err, &le) || !errors.Is(c.err, store.ErrInvalidInput) || !le.Permanent() {
				t.Errorf("%s %q: got %v, want a permanent *LimitError", c.field, bad, c.err)
				continue
			}
			if msg := c.err.Error(); le.Field != c.field || !strings.HasPrefix(msg, c.field+" ") || !strings.Contains(msg, "valid UTF-8") {
				t.Errorf("%s %q: %q should name the field and say it must be valid UTF-8", c.field, bad, msg)
			}
		}
	}
	for _, good := range []string{"call-1", "Grüße", "日本語", "emoji 🎉", "nul\x00inside"} {
		if err := l.CheckSession(good); err != nil {
			t.Errorf("session ID %q: %v", good, err)
		}
		if err := l.CheckItem(good, []byte("\xff\xfe any bytes")); err != nil {
			t.Errorf("key %q: %v", good, err)
		}
	}
	// Length errors keep their messages, and are found before the encoding.
	if err := l.CheckItem(strings.Repeat("\xff", 300), nil); err == nil || err.Error() != "key is 300 bytes, over the limit of 256 bytes" {
		t.Errorf("long invalid key: %v", err)
	}
	if err := l.CheckSession(""); err == nil || err.Error() != "session ID is empty; it must be 1 to 128 bytes" {
		t.Errorf("empty session ID: %v", err)
	}
}

// BenchmarkLimitsCommit is the cost Commit adds to the buffer's for one change
// (the shapes of the buffer's BenchmarkCommitUpdate: a 14-byte session ID, an
// 11-byte key, a 100-byte value); compare it with that benchmark's figure.
func BenchmarkLimitsCommit(b *testing.B) {
	l := store.DefaultLimits
	val := make([]byte, 100)
	for _, c := range []struct{ name, session, key string }{
		{"ascii", "session-000001", "item-000001"},
		{"uuid-and-path", "4e2a9c1b-0c3d-4a5e-9f10-0242ac120002", "tenant/alpha/dialog/state/with-a-longer-key"},
		{"non-ascii", "sessión-000001", "clé-000001"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if l.CheckSession(c.session) != nil || l.CheckItem(c.key, val) != nil {
					b.Fatal("refused")
				}
			}
		})
	}
}
