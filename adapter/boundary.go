package adapter

import (
	"errors"

	"github.com/holdover/holdover/buffer"
	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/residency"
)

// This file translates the building blocks' errors into the adapter's own
// (errors.go), at the boundary: every error the adapter returns or hands to a
// hook has passed through translate, so errors.Is and errors.As against the
// adapter's values always work, and a host never imports buffer or residency
// to test an error.

// sentinels pairs each building-block sentinel with the adapter's.
var sentinels = []struct{ inner, outer error }{
	{residency.ErrNotFound, ErrNotFound},
	{residency.ErrOwnedElsewhere, ErrOwnedElsewhere},
	{residency.ErrAlreadyOwned, ErrAlreadyOwned},
	{residency.ErrReplaced, ErrReplaced}, // before ErrFenced, which it matches too
	{residency.ErrFenced, ErrFenced},
	{residency.ErrClosed, ErrClosed},
	{residency.ErrNodeIDInUse, ErrNodeIDInUse},
	{buffer.ErrBufferFull, ErrBufferFull},
	{buffer.ErrOverloaded, ErrOverloaded},
	{buffer.ErrSessionTooLarge, ErrSessionTooLarge},
	{buffer.ErrClosed, ErrClosed},
	{buffer.ErrInvalid, ErrInvalidInput},
	{store.ErrInvalidInput, ErrInvalidInput},
	{store.ErrCorrupt, ErrCorrupt},
}

// translate returns err expressed in the adapter's errors. An error that is
// exactly a building block's sentinel or typed error becomes the adapter's
// counterpart itself; a wrapped one (a message around it, an errors.Join)
// keeps its message and its chain and also matches the adapter's
// counterparts. Other errors (context errors, Cassandra driver errors) are
// returned unchanged. It costs nothing when err is nil.
func translate(err error) error {
	if err == nil {
		return nil
	}
	t := &translated{err: err}
	var (
		oe *residency.OwnedElsewhereError
		ne *residency.NodeIDInUseError
		le *store.LimitError
	)
	if errors.As(err, &oe) && !errors.As(err, new(*OwnedElsewhereError)) {
		o := &OwnedElsewhereError{Session: oe.Session, Owner: oe.Owner, Epoch: oe.Epoch, Live: oe.Live, Raced: oe.Raced, Stored: oe.Stored}
		if error(oe) == err {
			return o
		}
		t.outer = append(t.outer, o)
	}
	if errors.As(err, &ne) && !errors.As(err, new(*NodeIDInUseError)) {
		n := &NodeIDInUseError{Node: ne.Node, Incarnation: ne.Incarnation, RenewedAt: ne.RenewedAt, Err: ne.Err}
		if error(ne) == err {
			return n
		}
		t.outer = append(t.outer, n)
	}
	if errors.As(err, &le) && !errors.As(err, new(*LimitError)) {
		l := &LimitError{Field: le.Field, Limit: le.Limit, Got: le.Got, Reason: le.Reason}
		if error(le) == err {
			return l
		}
		t.outer = append(t.outer, l)
	}
	for _, s := range sentinels {
		if err == s.inner {
			return s.outer
		}
		if errors.Is(err, s.inner) && !errors.Is(t, s.outer) {
			t.outer = append(t.outer, s.outer)
		}
	}
	if len(t.outer) == 0 {
		return err
	}
	return t
}

// translated is a building block's error that also matches the adapter's
// counterparts (outer): the message is the original's.
type translated struct {
	err   error
	outer []error
}

func (e *translated) Error() string { return e.err.Error() }

// Unwrap lists the adapter's counterparts first, then the original (for
// context errors and driver errors deeper in its chain).
func (e *translated) Unwrap() []error { return append(e.outer[:len(e.outer):len(e.outer)], e.err) }
