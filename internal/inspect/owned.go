package inspect

import (
	"context"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/internal/storeconf"
)

// Owned is one entry of the owner index: the session and the epoch at which
// the node took it.
type Owned struct {
	Session string
	Epoch   uint64
}

// OwnedBy lists the sessions the owner index holds under node, in session ID
// order, at most limit of them (0: all); more is true when limit stopped the
// listing before the end. An unknown node has an empty list, not
// ErrNotFound. The index is a hint: an entry may be stale (the session ended
// or was adopted since), so check it with Owner.
func (i *Inspector) OwnedBy(ctx context.Context, node string, limit int) (owned []Owned, more bool, err error) {
	owned = []Owned{}
	err = i.st.OwnedBy(ctx, node, func(o store.Owned) bool {
		if limit > 0 && len(owned) == limit {
			more = true
			return false
		}
		owned = append(owned, Owned{Session: o.Session, Epoch: o.Epoch})
		return true
	})
	if err != nil {
		return nil, false, storeconf.Errors(err)
	}
	return owned, more, nil
}
