package residency

import (
	"fmt"
	"testing"
	"time"
)

// The negative cache holds as many absent IDs as its size says. Before,
// ristretto counted its own bookkeeping (tens of bytes an entry) against
// the size, so a cache of 100 held one ID and one of 10 none.
func TestNegativeCacheHoldsItsSize(t *testing.T) {
	for _, size := range []int{10, 100} {
		n, err := newNegativeCache(size, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for i := range size / 2 {
			n.remember(fmt.Sprintf("absent-%d", i))
		}
		held := 0
		for i := range size / 2 {
			if n.absent(fmt.Sprintf("absent-%d", i)) {
				held++
			}
		}
		n.close()
		if held != size/2 {
			t.Errorf("a cache of %d holds %d of the %d IDs remembered", size, held, size/2)
		}
	}
}
