package residency

import (
	"strings"
	"testing"
	"time"
)

// A negative RefreshEvery was accepted, and the refresh loop's ticker
// panicked once the lease was taken, crashing the process; a negative
// OwnershipTTL was accepted and written as Cassandra's least TTL, one
// second, so every session expired a second after its last write. Both are
// refused by New, naming the field and its bound.
func TestOutOfRangeTTLsAreRefusedNamingTheField(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{NodeID: "a", RefreshEvery: -time.Second}, "RefreshEvery -1s must be above 0"},
		{Config{NodeID: "a", OwnershipTTL: -time.Hour}, "OwnershipTTL -1h0m0s must be above 0"},
	} {
		_, err := New(tc.cfg, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want an error saying %q", tc.cfg, err, tc.want)
		}
	}
}
