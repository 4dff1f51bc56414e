package buffer

import (
	"strings"
	"testing"
	"time"
)

// Validate names the field the caller set out of range, not a default
// derived from it: a RetryMin over an hour used to be reported as the
// default RetryMax (which follows RetryMin) being out of a range no value
// could meet, and a MaxPendingBytes too small as the default
// MaxSessionBytes (which follows MaxPendingBytes).
func TestValidateNamesTheFieldSetNotADerivedDefault(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cfg         Config
		want, other string
	}{
		{"RetryMin 2h", Config{RetryMin: 2 * time.Hour}, "Config.RetryMin is 2h0m0s; must be between 1ms and 1h0m0s", "RetryMax"},
		{"RetryMax 500µs", Config{RetryMax: 500 * time.Microsecond}, "Config.RetryMax is 500µs; must be between 1ms and 1h0m0s", "RetryMin"},
		{"MaxPendingBytes 100", Config{MaxPendingBytes: 100}, "Config.MaxPendingBytes is 100; must be between 65536 and", "MaxSessionBytes"},
	} {
		err := tc.cfg.Validate()
		if err == nil {
			t.Errorf("%s: validated", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.other) {
			t.Errorf("%s: got %q, want %q and nothing about %s", tc.name, err, tc.want, tc.other)
		}
	}
}
