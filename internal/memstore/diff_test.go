package memstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/devtools/cassandratest"
	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// realStore opens the real store over a keyspace of its own, closed when
// the test ends.
func realStore(ctx context.Context, t *testing.T) *store.Store {
	t.Helper()
	hosts, port := cassandratest.Hosts(t)
	real, err := store.Open(ctx, store.Options{Hosts: hosts, Port: port, Keyspace: cassandratest.Keyspace(t), CreateSchema: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(real.Close)
	return real
}

// TestSameAsCassandra applies the same random sequences of store operations
// to the in-memory model and to a real Cassandra and compares every answer
// and every read: the randomized protocol tests are only as good as the
// model.
func TestSameAsCassandra(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	real := realStore(ctx, t)
	model := memstore.New()
	const rounds = 1500
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	seed := rng.Uint64()
	rng = rand.New(rand.NewPCG(seed, 2))
	sessions := []string{"d0", "d1", "d2"}
	nodes := []string{"a", "b", "c"}
	seq := uint64(1000)
	for i := range rounds {
		s := sessions[rng.IntN(len(sessions))]
		n := nodes[rng.IntN(len(nodes))]
		// Both stores answer from the same row: ask the model for a plausible
		// previous owner so that conditions sometimes hold.
		prev, _ := model.Owner(s)
		if rng.IntN(4) == 0 {
			prev.Epoch = uint64(max(int64(prev.Epoch)+int64(rng.IntN(3))-1, 0))
		}
		epoch := uint64(max(int64(prev.Epoch)-int64(rng.IntN(2)), 1))
		var op, got, want string
		switch r := rng.IntN(9); r {
		case 0:
			op = "create"
			c1, o1, e1 := real.CreateOwner(ctx, s, n, 0, time.Hour)
			c2, o2, e2 := model.CreateOwner(ctx, s, n, 0, time.Hour)
			got, want = fmt.Sprint(c1, owner(o1), e1), fmt.Sprint(c2, owner(o2), e2)
		case 1:
			op = fmt.Sprintf("claim from %s", owner(prev))
			w1, o1, e1 := real.Claim(ctx, s, prev, n, time.Hour)
			w2, o2, e2 := model.Claim(ctx, s, prev, n, time.Hour)
			got, want = fmt.Sprint(w1, owner(o1), e1), fmt.Sprint(w2, owner(o2), e2)
		case 2:
			op = fmt.Sprintf("release %s@%d", prev.Node, prev.Epoch)
			a1, e1 := real.Release(ctx, s, prev.Node, prev.Epoch, time.Hour)
			a2, e2 := model.Release(ctx, s, prev.Node, prev.Epoch, time.Hour)
			got, want = fmt.Sprint(a1, e1), fmt.Sprint(a2, e2)
		case 3:
			op = fmt.Sprintf("end %s@%d", prev.Node, prev.Epoch)
			a1, e1 := real.EndOwner(ctx, s, prev.Node, prev.Epoch, time.Hour)
			a2, e2 := model.EndOwner(ctx, s, prev.Node, prev.Epoch, time.Hour)
			got, want = fmt.Sprint(a1, e1), fmt.Sprint(a2, e2)
		case 4:
			op = fmt.Sprintf("refresh %s@%d", prev.Node, prev.Epoch)
			a1, e1 := real.RefreshOwner(ctx, s, prev.Node, prev.Epoch, time.Hour)
			a2, e2 := model.RefreshOwner(ctx, s, prev.Node, prev.Epoch, time.Hour)
			got, want = fmt.Sprint(a1, e1), fmt.Sprint(a2, e2)
		case 5, 6:
			seq += uint64(rng.IntN(5))
			w := &store.Write{Session: s, Epoch: epoch, Seq: seq - uint64(rng.IntN(3)), Ended: rng.IntN(6) == 0}
			for range rng.IntN(3) + 1 {
				k := fmt.Sprintf("k%d", rng.IntN(4))
				if rng.IntN(4) == 0 {
					w.Items = append(w.Items, store.Item{Key: k, Delete: true})
				} else {
					w.Items = append(w.Items, store.Item{Key: k, Value: []byte(fmt.Sprintf("v%d", rng.IntN(3)))})
				}
			}
			w.Items = dedupe(w.Items)
			op = fmt.Sprintf("write e%d s%d ended=%v %v", w.Epoch, w.Seq, w.Ended, w.Items)
			got, want = failed(real.WriteSession(ctx, w)), failed(model.WriteSession(ctx, w))
		case 7:
			items := []store.Item{{Key: "k0", Value: []byte("fenced")}}
			op = fmt.Sprintf("fence e%d", epoch)
			got, want = failed(real.Fence(ctx, s, epoch, items)), failed(model.Fence(ctx, s, epoch, items))
		default:
			op = "read"
		}
		if got != want {
			t.Fatalf("seed %d op %d on %s: %s: cassandra answered %s, the model %s", seed, i, s, op, got, want)
		}
		o1, f1, e1 := real.ReadOwner(ctx, s)
		o2, f2, e2 := model.ReadOwner(ctx, s)
		if a, b := fmt.Sprint(owner(o1), f1, e1), fmt.Sprint(owner(o2), f2, e2); a != b {
			t.Fatalf("seed %d op %d on %s after %s: owner row %s in cassandra, %s in the model", seed, i, s, op, a, b)
		}
		s1, e1 := real.ReadState(ctx, s)
		s2, e2 := model.ReadState(ctx, s)
		if a, b := fmt.Sprint(items(s1), e1), fmt.Sprint(items(s2), e2); a != b {
			t.Fatalf("seed %d op %d on %s after %s: state %s in cassandra, %s in the model", seed, i, s, op, a, b)
		}
	}
	t.Logf("seed %d: %d operations, every answer and read the same", seed, rounds)
}

func failed(err error) string { return fmt.Sprint("error: ", err != nil) }

func owner(o store.Owner) string {
	return fmt.Sprintf("%s@%d released=%v ended=%v", o.Node, o.Epoch, o.Released, o.Ended)
}

func items(its []store.Item) string {
	out := ""
	for _, it := range its {
		out += fmt.Sprintf("%s=%s ", it.Key, it.Value)
	}
	return out
}

func dedupe(its []store.Item) []store.Item {
	seen := map[string]bool{}
	var out []store.Item
	for _, it := range its {
		if !seen[it.Key] {
			seen[it.Key] = true
			out = append(out, it)
		}
	}
	return out
}
