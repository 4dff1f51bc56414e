package adapter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// Every building-block sentinel, returned as is, wrapped with a message or
// joined with another error, matches the adapter's counterpart after
// translate, keeps its message and chain, and is not the adapter's value
// under another name (two ErrClosed that do not match each other).
func TestTranslateSentinels(t *testing.T) {
	for _, s := range sentinels {
		if s.inner == s.outer || errors.Is(s.inner, s.outer) {
			t.Errorf("%v: the building block's sentinel is the adapter's; they must be distinct values", s.outer)
		}
		for name, in := range map[string]error{
			"exact":   s.inner,
			"wrapped": fmt.Errorf("doing something: %w", s.inner),
			"joined":  errors.Join(io.EOF, fmt.Errorf("x: %w", s.inner)),
		} {
			got := translate(in)
			if !errors.Is(got, s.outer) {
				t.Errorf("%s %q: translated %q does not match the adapter's %q", name, in, got, s.outer)
			}
			if name == "exact" && got != s.outer {
				t.Errorf("exact %q: translated to %q, want the adapter's sentinel itself", in, got)
			}
			if name != "exact" && got.Error() != in.Error() {
				t.Errorf("%s: message %q changed to %q", name, in, got)
			}
			if name == "joined" && !errors.Is(got, io.EOF) {
				t.Errorf("joined %q: the rest of the chain is lost", in)
			}
			if again := translate(got); again.Error() != got.Error() || !errors.Is(again, s.outer) {
				t.Errorf("%s %q: translating twice gives %q", name, in, again)
			}
		}
	}
	// Replaced matches Fenced, as in residency.
	if got := translate(residency.ErrReplaced); !errors.Is(got, ErrReplaced) || !errors.Is(got, ErrFenced) {
		t.Errorf("ErrReplaced translated to %v: want it to match ErrReplaced and ErrFenced", got)
	}
	if translate(nil) != nil {
		t.Error("translate(nil) is not nil")
	}
	if other := errors.New("unrelated"); translate(other) != other {
		t.Error("an unrelated error was changed")
	}
	if got := translate(fmt.Errorf("claim: %w", context.DeadlineExceeded)); !errors.Is(got, context.DeadlineExceeded) {
		t.Errorf("context error lost: %v", got)
	}
}

// The building blocks' typed errors come out as the adapter's, with every
// field, exact or wrapped.
func TestTranslateTypedErrors(t *testing.T) {
	renewed := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		in    error
		check func(t *testing.T, got error)
	}{
		{&residency.OwnedElsewhereError{Session: "s", Owner: "b", Epoch: 7, Live: true, Raced: true}, func(t *testing.T, got error) {
			var oe *OwnedElsewhereError
			if !errors.As(got, &oe) || *oe != (OwnedElsewhereError{Session: "s", Owner: "b", Epoch: 7, Live: true, Raced: true}) || !errors.Is(got, ErrOwnedElsewhere) {
				t.Errorf("%v: got %#v", got, oe)
			}
		}},
		{&residency.NodeIDInUseError{Node: "n", Incarnation: "i", RenewedAt: renewed, Err: context.DeadlineExceeded}, func(t *testing.T, got error) {
			var ne *NodeIDInUseError
			if !errors.As(got, &ne) || ne.Node != "n" || ne.Incarnation != "i" || !ne.RenewedAt.Equal(renewed) ||
				!errors.Is(got, ErrNodeIDInUse) || !errors.Is(got, context.DeadlineExceeded) {
				t.Errorf("%v: got %#v", got, ne)
			}
		}},
		{&store.LimitError{Field: "key", Limit: 10, Got: 11, Reason: "r"}, func(t *testing.T, got error) {
			var le *LimitError
			if !errors.As(got, &le) || *le != (LimitError{Field: "key", Limit: 10, Got: 11, Reason: "r"}) || !errors.Is(got, ErrInvalidInput) {
				t.Errorf("%v: got %#v", got, le)
			}
		}},
	}
	for _, c := range cases {
		exact := translate(c.in)
		c.check(t, exact)
		if exact.Error() != c.in.Error() {
			t.Errorf("message %q changed to %q", c.in, exact)
		}
		wrapped := translate(buffer.Permanent(fmt.Errorf("change 1: %w", c.in)))
		c.check(t, wrapped)
		if !buffer.IsPermanent(wrapped) {
			t.Errorf("%v: no longer permanent", wrapped)
		}
	}
}
