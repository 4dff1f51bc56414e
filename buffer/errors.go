package buffer

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBufferFull is returned by Commit and End when applying the change would push the
	// buffer's pending bytes above Config.MaxPendingBytes. Nothing of the call was
	// applied; the refusal is counted in Stats.Refusals. Retrying after flushes catch up
	// (or after Flush) may succeed.
	ErrBufferFull = errors.New("buffer: full: pending bytes would exceed MaxPendingBytes")

	// ErrOverloaded is returned by Commit and End while flushes cannot keep the
	// durability window under Config.MaxWindow (a backlog, a slow or unreachable
	// store): a change accepted now would likely stay unwritten longer than that.
	// Nothing of the call was applied; the refusal is counted in Stats.Overloads. It
	// is retryable: the refusal lifts once the oldest unwritten change plus the
	// recent flush latency is back under the Delay plus three quarters of
	// MaxWindow − Delay.
	ErrOverloaded = errors.New("buffer: overloaded: unwritten changes would outlive MaxWindow")

	// ErrSessionTooLarge is wrapped by the error with which Commit refuses a change
	// that would make a session's unflushed items count more bytes than its
	// family's MaxSessionBytes (Family.MaxSessionBytes); the error names the
	// session, the family, the size it would reach and the limit. Nothing of the
	// call was applied; the refusal is counted in FamilyStats.SessionTooLarge.
	// Retrying may succeed once what the session holds has been written (it is
	// flushed early at the bound), unless the change alone exceeds the bound:
	// then the error (a *SessionTooLargeError, Alone) matches ErrInvalid too.
	ErrSessionTooLarge = errors.New("buffer: session too large")

	// ErrClosed is returned by Commit and End once Close has been called, and by Flush
	// when Close ended with state left unwritten.
	ErrClosed = errors.New("buffer: closed")

	// ErrInvalid is wrapped by the errors that reject bad input (an empty session ID or
	// key, an oversized value); the message names the field.
	ErrInvalid = errors.New("buffer: invalid input")

	// ErrSeqExhausted is the permanent error with which a snapshot is dropped when its
	// Seq would reach 1<<SeqBits (around the year 2080, or earlier with a clock far in
	// the future).
	ErrSeqExhausted error = permanentError{errors.New("buffer: Seq would reach 1<<SeqBits")}

	// ErrEarlierPartFailed is wrapped by the error with which the later parts of a
	// split snapshot are dropped, unwritten, after an earlier part failed permanently;
	// that error also wraps the earlier part's error and names the part ("part 1 of
	// 3"). It is permanent.
	ErrEarlierPartFailed error = permanentError{errors.New("buffer: an earlier part of the snapshot failed permanently")}
)

// Permanent wraps err so that IsPermanent reports true for it: a FlushFunc returns
// Permanent(err) for failures that retrying cannot fix (a value over the store's
// limits, a schema error). Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err is permanent: errors.As finds in its chain a value
// with a Permanent() bool method, and that method returns true. Every other error is
// transient.
func IsPermanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }
