package store

import (
	"context"
	"errors"
	"fmt"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// Sentinel errors of the store.
var (
	// ErrInvalidInput marks a session ID, key or value outside the configured
	// limits, or a session ID or key that is not valid UTF-8; the *LimitError
	// that carries it names the field and the limit or the reason.
	ErrInvalidInput = errors.New("invalid input")
	// ErrCorrupt marks a stored row that cannot be decoded; it is reported for
	// that session only.
	ErrCorrupt = errors.New("stored row cannot be decoded")
)

// LimitError is an input the store refuses. Field names what was wrong
// ("session ID", "key", "value"), Limit and Got are its limit and length in
// bytes. Reason is empty when the length is at fault; otherwise it says what
// the field must be ("must be valid UTF-8": session IDs and keys are CQL text).
type LimitError struct {
	Field  string
	Limit  int
	Got    int
	Reason string
}

func (e *LimitError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s %s", e.Field, e.Reason)
	}
	if e.Got == 0 {
		return fmt.Sprintf("%s is empty; it must be 1 to %d bytes", e.Field, e.Limit)
	}
	return fmt.Sprintf("%s is %d bytes, over the limit of %d bytes", e.Field, e.Got, e.Limit)
}

// Unwrap makes errors.Is(err, ErrInvalidInput) true.
func (e *LimitError) Unwrap() error { return ErrInvalidInput }

// Permanent reports that retrying the request cannot succeed.
func (e *LimitError) Permanent() bool { return true }

// Error wraps a driver error with the operation and the session it concerns,
// and classifies it: Permanent reports whether a retry can never succeed
// (invalid request, syntax, schema or authorisation errors, over-sized
// mutations); everything else (timeouts, unavailable replicas, overload, lost
// connections) is transient.
type Error struct {
	Op      string
	Session string
	Err     error
	perm    bool
}

func (e *Error) Error() string {
	if e.Session == "" {
		return fmt.Sprintf("cassandra %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("cassandra %s of session %q: %v", e.Op, e.Session, e.Err)
}

func (e *Error) Unwrap() error   { return e.Err }
func (e *Error) Permanent() bool { return e.perm }

func wrap(op, session string, err error) error {
	if err == nil {
		return nil
	}
	var p interface{ Permanent() bool }
	if errors.As(err, &p) {
		return &Error{Op: op, Session: session, Err: err, perm: p.Permanent()}
	}
	return &Error{Op: op, Session: session, Err: err, perm: isPermanent(err)}
}

type permanentError struct{ error }

func (e permanentError) Unwrap() error   { return e.error }
func (e permanentError) Permanent() bool { return true }

func permanent(err error) error { return permanentError{err} }

// isPermanent classifies a driver error.
func isPermanent(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, gocql.ErrTooManyStmts) {
		return true // a batch of more statements than the protocol carries
	}
	var req gocql.RequestError
	if errors.As(err, &req) {
		switch req.Code() {
		case gocql.ErrCodeSyntax, gocql.ErrCodeInvalid, gocql.ErrCodeUnauthorized,
			gocql.ErrCodeConfig, gocql.ErrCodeCredentials, gocql.ErrCodeProtocol:
			return true
		}
		return false
	}
	return false
}
