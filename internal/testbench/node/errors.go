package node

import (
	"errors"
	"fmt"

	"github.com/holdover/holdover/adapter"
)

// Errors of the node, besides the adapter's sentinels it passes on.
var (
	// ErrResident: a create event named a session this node already holds.
	ErrResident = errors.New("session already exists on this node")
	// ErrNotResident: a read without adoption named a session this node
	// does not hold.
	ErrNotResident = errors.New("session not resident on this node")
	// ErrNotReady: the adapter is not open yet, or the node is shutting down.
	ErrNotReady = errors.New("node not ready")
	// ErrBadInput: the request is malformed or over a limit; the error is an
	// *InputError saying which.
	ErrBadInput = errors.New("bad input")
)

// InputError is a rejected request. Var and Limit are set when a configured
// limit was exceeded.
type InputError struct {
	Msg   string
	Var   string // the variable setting the limit, e.g. HOLDOVER_MAX_VALUE_BYTES
	Limit int    // the limit, in bytes
}

func (e *InputError) Error() string { return e.Msg }

// Unwrap makes errors.Is(err, ErrBadInput) true.
func (e *InputError) Unwrap() error { return ErrBadInput }

func badInput(format string, args ...any) *InputError {
	return &InputError{Msg: fmt.Sprintf(format, args...)}
}

// overLimit reports what (e.g. `attribute "k" value`) being n bytes over
// limit bytes set by variable v.
func overLimit(what string, n, limit int, v, note string) *InputError {
	msg := fmt.Sprintf("%s is %d bytes, over the limit of %d bytes (%s%s)", what, n, limit, v, note)
	if n == 0 {
		msg = fmt.Sprintf("%s is empty; it must be 1 to %d bytes (%s%s)", what, limit, v, note)
	}
	return &InputError{Msg: msg, Var: v, Limit: limit}
}

// notFoundError names the session an adoption did not find.
type notFoundError struct{ id string }

func (e notFoundError) Error() string { return fmt.Sprintf("session %q not found", e.id) }
func (e notFoundError) Unwrap() error { return adapter.ErrNotFound }

// residentError names the session a create found resident.
type residentError struct{ id, node string }

func (e residentError) Error() string {
	return fmt.Sprintf("session %q already exists on node %q", e.id, e.node)
}
func (e residentError) Unwrap() error { return ErrResident }

// notResidentError names the session a read without adoption did not find.
type notResidentError struct{ id, node string }

func (e notResidentError) Error() string {
	return fmt.Sprintf("session %q is not resident on node %q", e.id, e.node)
}
func (e notResidentError) Unwrap() error { return ErrNotResident }

// sessionError names the session in an error of the adapter; the adapter's
// own error types stay visible to errors.Is and errors.As.
func sessionError(id, op string, err error) error {
	var owned *adapter.OwnedElsewhereError
	switch {
	case errors.Is(err, adapter.ErrNotFound):
		return notFoundError{id}
	case errors.As(err, &owned):
		return err // it names the session and the owner
	}
	return fmt.Errorf("session %q: %s: %w", id, op, err)
}
