package buffer

import (
	"context"
	"testing"
)

// A Close whose drain is complete reports success, even when its context has
// ended by then: with nothing left to write, it chose at random between the
// drain's end and the context's and so failed about one call in two, with an
// empty report. Flush likewise returns nil once everything committed before
// it is written, whatever its context.
func TestCloseAndFlushWithNothingLeftSucceedAfterTheirContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 20 {
		h := newHarness(t, Config{})
		if err := h.b.Flush(ctx); err != nil {
			t.Fatalf("Flush of an empty buffer with an ended context: %v, want nil", err)
		}
		if r, err := h.b.Close(ctx); err != nil || len(r.Sessions) != 0 {
			t.Fatalf("Close of an empty buffer with an ended context: %v %+v, want nil", err, r)
		}
	}
}
