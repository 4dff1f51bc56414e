package adapter

import (
	"context"
	"errors"
	"testing"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
)

// ResidencyStats.NegativeHits is documented as "of those [NotFound:
// adoptions of unknown sessions], answered by the negative cache", and
// exported as holdover.adoption.negative_cache_hits, "Adoptions answered
// not-found by the negative cache". Peek is no adoption: a Peek answered by
// the cache must not count as an adoption's hit (and NegativeHits must never
// exceed NotFound).
func TestAPeekDoesNotCountAsAnAdoptionNegativeHit(t *testing.T) {
	a := openNode(t, testConfig(t, "peekstats", cassandratest.Keyspace(t)))
	ctx := context.Background()
	for range 3 {
		if _, err := a.Peek(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("peek: %v, want ErrNotFound", err)
		}
	}
	r := a.Stats().Residency
	if r.NegativeHits > r.NotFound {
		t.Fatalf("after 3 Peeks and no Adopt: NotFound %d, NegativeHits %d (\"of those\": at most NotFound)", r.NotFound, r.NegativeHits)
	}
}
