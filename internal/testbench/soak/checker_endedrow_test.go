package soak

import "testing"

// generation 1 was ended, the ID
// was started afresh (generation 2, never ended), and the final read finds
// generation 2's items under an ownership row marked ended. That is
// ended_row_with_items (an adoption would answer not found and lose the
// live generation). Before, final() looked for an End anywhere on the line
// back to the root and found generation 1's.
func TestEndedRowWithItemsAfterRecreate(t *testing.T) {
	b := newBuilder()
	b.create("s", "A", 0)
	b.end("s", "A", 100)
	b.create("s", "B", 200)
	b.update("s", "B", 300, "k", "1")
	o := b.obs("s", 2, true) // generation 2's version 2
	o.Ended = true
	b.final("s", 20000, o)
	expect(t, Check(b.recs), map[string]int{I4: 1, "ended_row_with_items": 1})
}
