package buffer

import "fmt"

// verify checks the scheduling structures of every shard: each session is in the
// oldest heap of its own family, in heap order; each due list holds only sessions
// of its family that are due, linked both ways, urgent ones first and the others
// in due order (the FIFO property a pass relies on to look at heads only).
func (b *Buffer) verify() error {
	for i := range b.shards {
		sh := &b.shards[i]
		sh.mu.Lock()
		err := sh.verify(b)
		sh.mu.Unlock()
		if err != nil {
			return fmt.Errorf("shard %d: %w", i, err)
		}
	}
	return nil
}

func (sh *shard) verify(b *Buffer) error {
	inHeaps := 0
	for f := range sh.fams {
		fs := &sh.fams[f]
		for j, s := range fs.oldest {
			if int(s.fam) != f || int(s.heapIdx) != j || sh.sessions[s.id] != s {
				return fmt.Errorf("family %d heap[%d]: session %q of family %d at index %d", f, j, s.id, s.fam, s.heapIdx)
			}
			if p := (j - 1) / 2; j > 0 && fs.oldest[p].oldestKey() > s.oldestKey() {
				return fmt.Errorf("family %d heap out of order at %d", f, j)
			}
		}
		inHeaps += len(fs.oldest)
		var prev *session
		for s := fs.due.head; s != nil; prev, s = s, s.next {
			switch {
			case int(s.fam) != f || s.where != placeDue || s.prev != prev:
				return fmt.Errorf("family %d due list: session %q of family %d, place %d", f, s.id, s.fam, s.where)
			case prev != nil && prev.due > s.due:
				return fmt.Errorf("family %d due list out of order: %q due %d before %q due %d", f, prev.id, prev.due, s.id, s.due)
			case s.due != minDue && s.due != s.first+b.fams[f].delay:
				return fmt.Errorf("family %d: %q due %d, first %d + Delay %d", f, s.id, s.due, s.first, b.fams[f].delay)
			}
		}
		if fs.due.tail != prev {
			return fmt.Errorf("family %d due list: tail is not the last session", f)
		}
	}
	if inHeaps != len(sh.sessions) {
		return fmt.Errorf("%d sessions in the heaps, %d in the table", inHeaps, len(sh.sessions))
	}
	return nil
}
