package residency

import "context"

// Prepare starts recording session as this node's in the background (what
// EnsureOwned does: a lightweight transaction), unless this node owns it, a
// recording of it is under way, or StopPreparing (or Close) was called. A host calls it
// when it has accepted the first change of a session it does not own: the
// recording then runs while the change waits for its flush delay, and the
// flush's EnsureOwned joins it, instead of starting it only once the delay
// has passed. A new session's first write so lands a flush delay sooner when
// the recording takes longer than the delay, and as soon as an owned
// session's when it takes less: its changes are exposed to a crash of the
// node for that much less (its window). A recording that fails is not
// retried here: the flush's EnsureOwned, which gets its error, is retried by
// the flush's own rules.
func (m *Manager) Prepare(session string) {
	if _, ok := m.Epoch(session); ok {
		return
	}
	p := &preparation{done: make(chan struct{})}
	if _, running := m.preparing.LoadOrStore(session, p); running {
		return
	}
	m.indexMu.Lock() // StopPreparing waits for preparations: join them, unless it has begun
	stopped := m.prepStopped
	if !stopped {
		m.preparations.Add(1)
	}
	m.indexMu.Unlock()
	if stopped {
		m.prepared(session, p, 0, ErrClosed)
		return
	}
	// Counted as queued for creation now, not once the goroutine runs: on a
	// busy node that can be milliseconds, and a burst admitted meanwhile was
	// judged against a queue without it.
	if m.creating.Add(1) == 1 {
		m.createMoved.Store(int64(m.elapsed()))
	}
	go func() {
		defer m.preparations.Done()
		e, err := m.ensureOwned(m.prepCtx, session, true)
		m.prepared(session, p, e, err)
	}()
}

// prepared ends the recording p of session with its outcome. It leaves
// preparing before the outcome is given: an EnsureOwned that comes later
// starts afresh (an error here is not for it), and one that joined gets the
// outcome.
func (m *Manager) prepared(session string, p *preparation, epoch uint64, err error) {
	p.epoch, p.err = epoch, err
	m.preparing.CompareAndDelete(session, p)
	close(p.done)
}

// StopPreparing cancels the recordings Prepare started and waits for them to
// end; Prepare starts no more. A host closing calls it once it has flushed
// what it could, before it forgets the sessions left unwritten and releases
// the others: a recording that landed after that would leave a session
// recorded as this node's, and neither forgotten nor released. Close calls
// it too.
func (m *Manager) StopPreparing() {
	m.indexMu.Lock()
	m.prepStopped = true
	m.indexMu.Unlock()
	m.prepCancel()
	m.preparations.Wait()
}

// Preparing reports whether a recording of session is under way (one
// Prepare started, or an EnsureOwned's). See Unsettled for what a flush of an
// ended session must check.
func (m *Manager) Preparing(session string) bool {
	_, ok := m.preparing.Load(session)
	return ok
}

// A preparation is a recording of a new session that Prepare started.
type preparation struct {
	done  chan struct{} // closed when epoch and err are set
	epoch uint64
	err   error
}

// wait returns the preparation's outcome once it has one, or ctx's error.
func (p *preparation) wait(ctx context.Context) (uint64, error) {
	select {
	case <-p.done:
		return p.epoch, p.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
