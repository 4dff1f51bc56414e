package residency

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/holdover/holdover/internal/memstore"
	"github.com/holdover/holdover/internal/store"
)

// An adoption whose fence is on its way when its node fences (a Cassandra
// stall: the claim landed, then the lease lapsed) and which completes only
// after the node has renewed and recovered (the stall ends for both at
// once) must not leave the node holding the session: the recovery did not
// settle it (it was not held when the recovery looked), and a peer that saw
// the node's lease expired meanwhile may have adopted it. The adoption fails
// with ErrFenced instead. It used to hold the session whatever had happened
// since it began, so two nodes held it, unfenced both, and the one at the
// lower epoch acknowledged changes its fence-shadowed writes never showed
// (found only by a refresh, half an OwnershipTTL later).
func TestAdoptionAcrossAFenceAndRecoveryIsNotHeld(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	// A dead node's session with state.
	if ok, _, err := st.CreateOwner(ctx, "s", "dead", 0, time.Hour); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := st.WriteSession(ctx, &store.Write{Session: "s", Epoch: 1, Seq: 10, Items: []store.Item{{Key: "k", Value: []byte("v")}}}); err != nil {
		t.Fatal(err)
	}
	h := &fenceHog{Store: st, session: "s", entered: make(chan struct{}), release: make(chan struct{})}
	cfg := func(id string) Config {
		return Config{NodeID: id, LeaseTTL: 10 * time.Minute, MaxClockSkew: time.Millisecond}
	}
	a := started(t, cfg("a"), h)
	b := started(t, cfg("b"), st)

	type res struct {
		a   *Adopted
		err error
	}
	done := make(chan res, 1)
	go func() { ad, err := a.Adopt(ctx, "s", AdoptOptions{}); done <- res{ad, err} }()
	<-h.entered // a's claim landed (epoch 2); its fence is held up

	// a's lease lapses: it fences, and peers see its lease gone.
	a.fence()
	if err := st.DropLease(ctx, "a", a.incarnation); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past twice the skew
	bd, berr := b.Adopt(ctx, "s", AdoptOptions{})
	if berr != nil {
		t.Fatalf("b adopting s from a lapsed a: %v", berr)
	}
	// a renews and recovers (s is not held: nothing to settle), then its
	// adoption's fence lands.
	a.recover()
	if a.Fenced() {
		t.Fatal("a still fenced after recover")
	}
	close(h.release)
	r := <-done
	ea, heldA := a.Epoch("s")
	eb, heldB := b.Epoch("s")
	o, _ := st.Owner("s")
	if !errors.Is(r.err, ErrFenced) || !heldB {
		t.Errorf("a's adoption across its fence: %+v, %v (want ErrFenced); b holds s: %v", r.a, r.err, heldB)
	}
	if heldA && heldB {
		t.Fatalf("both nodes hold s: a at epoch %d (Adopt: %+v, %v), b at epoch %d (Adopt epoch %d); row %+v; a fenced=%v",
			ea, r.a, r.err, eb, bd.Epoch, o, a.Fenced())
	}
}
