package buffer

import (
	"context"
	"testing"
	"time"
)

// SinceSnapshot tells, from inside a flush, the changes committed during the
// flight (which wait for the next flush) from those the snapshot carries:
// shared families mark their own writes landed by it (adapter/shared.go).
func TestSinceSnapshotNamesTheChangesCommittedDuringAFlight(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	type seen struct {
		ended   bool
		changed []bool
	}
	got := make(chan seen, 1)
	var b *Buffer
	b, err := New(Config{Delay: time.Hour}, func(_ context.Context, s *Snapshot) error {
		if s.Session != "s" || len(s.Items) != 2 {
			return nil
		}
		close(inFlight)
		<-release
		e, c := b.SinceSnapshot("s", []string{"a", "b", "c"})
		got <- seen{e, c}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	if err := b.Commit("s", Change{Key: "a", Value: []byte("1")}, Change{Key: "b", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- b.Flush(context.Background()) }()
	<-inFlight
	// During the flight: a again with the same value, c new; b untouched.
	if err := b.Commit("s", Change{Key: "a", Value: []byte("1")}, Change{Key: "c", Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	close(release)
	r := <-got
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if r.ended || !r.changed[0] || r.changed[1] || !r.changed[2] {
		t.Fatalf("SinceSnapshot during the flight: ended %v, changed a,b,c %v; want false, [true false true]", r.ended, r.changed)
	}
	if e, c := b.SinceSnapshot("other", []string{"a"}); e || c[0] {
		t.Fatalf("a session the buffer holds nothing of: %v %v", e, c)
	}
	if err := b.End("s"); err != nil {
		t.Fatal(err)
	}
	if e, _ := b.SinceSnapshot("s", nil); !e {
		t.Fatal("an End not yet flushed is not reported")
	}
}
