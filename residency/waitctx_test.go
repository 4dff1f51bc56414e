package residency

import (
	"context"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// stalledBurst hangs the grouped state reads (op "read") or the grouped
// fences (op "fence") of woken adoptions until their context ends, as on a
// stalled Cassandra.
type stalledBurst struct {
	*memstore.Store
	op string
}

func (s *stalledBurst) ReadStates(ctx context.Context, sessions []string, items [][]store.Item, errs []error) {
	if s.op == "read" {
		<-ctx.Done()
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return
	}
	s.Store.ReadStates(ctx, sessions, items, errs)
}

// ReadState fails once its context has ended, as the driver's requests do.
func (s *stalledBurst) ReadState(ctx context.Context, session string) ([]store.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.Store.ReadState(ctx, session)
}

func (s *stalledBurst) FenceSessions(ctx context.Context, fs []store.Fencing, errs []error) {
	if s.op == "fence" {
		<-ctx.Done()
		for i := range errs {
			errs[i] = ctx.Err()
		}
		return
	}
	s.Store.FenceSessions(ctx, fs, errs)
}

// An adoption that waited for a dead owner's lease reads the state and
// writes the fence together with the other adoptions woken with it, on
// requests no one caller's context bounds. It waited for them regardless
// of its own context: on a stalled Cassandra, an Adopt whose deadline had
// passed went on until the store gave up (here, until Close). It now
// returns when its context ends; its claim stays, and a retry claims again.
func TestAWokenAdoptionEndsWithItsContext(t *testing.T) {
	for _, op := range []string{"read", "fence"} {
		t.Run(op, func(t *testing.T) {
			ctx := context.Background()
			st := &stalledBurst{Store: memstore.New(), op: op}
			if ok, _, err := st.CreateOwner(ctx, "s", "x", 0, time.Hour); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if err := st.RenewLease(ctx, "x", 100*time.Millisecond, 10*time.Millisecond, time.Now(), "incx"); err != nil {
				t.Fatal(err)
			}
			m := started(t, Config{NodeID: "b", LeaseTTL: 10 * time.Minute, MaxClockSkew: 10 * time.Millisecond}, st)
			actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := m.Adopt(actx, "s", AdoptOptions{Wait: 5 * time.Second})
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("adopted although the store never answered")
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("an Adopt whose 500ms context ended during its grouped %s had not returned 3s later", op)
			}
		})
	}
}
