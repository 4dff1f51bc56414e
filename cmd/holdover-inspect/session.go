package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/holdover/holdover/internal/inspect"
)

type sessionJSON struct {
	Session string     `json:"session"`
	Status  string     `json:"status"` // an inspect.Status
	Owner   *ownerJSON `json:"owner"`
	Items   []itemJSON `json:"items"`
	Bytes   int        `json:"item_bytes"`
}

type ownerJSON struct {
	Node        string    `json:"node"`
	Epoch       uint64    `json:"epoch"`
	Released    bool      `json:"released"`
	ClaimedAt   time.Time `json:"claimed_at"`
	LeaseLive   bool      `json:"lease_live"`
	RemainingMS int64     `json:"lease_remaining_ms,omitempty"`
}

type itemJSON struct {
	Key   string  `json:"key"`
	Size  int     `json:"size"`
	Value []byte  `json:"value"`          // base64, lossless
	Text  *string `json:"text,omitempty"` // the value when it is valid UTF-8
}

func parseSession(fs *flag.FlagSet, args []string) (job, error) {
	asJSON := fs.Bool("json", false, "print JSON: values as base64 (\"value\") and, when valid UTF-8, as text (\"text\")")
	maxValue := fs.Int("max-value-bytes", 256, "show at most this many bytes of each value in text output; 0 shows them whole")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 {
		return nil, usagef("want exactly one session ID, got %d arguments", len(pos))
	}
	if pos[0] == "" {
		return nil, usagef("the session ID is empty")
	}
	if *maxValue < 0 {
		return nil, usagef("-max-value-bytes must be 0 or more, got %d", *maxValue)
	}
	id := pos[0]
	return func(ctx context.Context, in *inspector) error {
		s, err := readSession(ctx, in, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(in.stdout, s)
		}
		printSession(in, s, *maxValue)
		return nil
	}, nil
}

// readSession reads the session as package inspect shows it. Only a session
// with neither a row nor items is an error.
func readSession(ctx context.Context, in *inspector, id string) (*sessionJSON, error) {
	conn, err := in.open(ctx)
	if err != nil {
		return nil, err
	}
	info, err := conn.Session(ctx, id)
	if errors.Is(err, inspect.ErrNotFound) {
		return nil, fmt.Errorf("session %q not found in keyspace %q: it was never persisted, it ended, or it expired", id, in.cfg.Keyspace)
	}
	if err != nil {
		return nil, err
	}
	s := &sessionJSON{Session: id, Status: string(info.Status), Items: make([]itemJSON, 0, len(info.Items))}
	for _, it := range info.Items {
		j := itemJSON{Key: it.Key, Size: len(it.Value), Value: it.Value}
		if j.Value == nil {
			j.Value = []byte{}
		}
		if utf8.Valid(it.Value) {
			text := string(it.Value)
			j.Text = &text
		}
		s.Items = append(s.Items, j)
		s.Bytes += len(it.Value)
	}
	if o := info.Owner; o != nil {
		s.Owner = &ownerJSON{Node: o.Node, Epoch: o.Epoch, Released: o.Released, ClaimedAt: o.ClaimedAt.UTC()}
		if o.Lease != nil {
			s.Owner.LeaseLive = true
			s.Owner.RemainingMS = o.Lease.Remaining.Milliseconds()
		}
	}
	return s, nil
}

func printSession(in *inspector, s *sessionJSON, maxValue int) {
	w := newTable(in.stdout)
	w.row("session", quote([]byte(s.Session), 0))
	w.row("status", statusText(s))
	if o := s.Owner; o != nil {
		lease := "no live lease"
		if o.LeaseLive {
			lease = fmt.Sprintf("lease live, %s left", time.Duration(o.RemainingMS)*time.Millisecond)
		}
		owner := fmt.Sprintf("%s (%s)", o.Node, lease)
		if s.Status == string(inspect.StatusEnded) {
			owner = "(none: the session ended at claimed_at)"
		}
		w.row("owner", owner)
		w.row("epoch", fmt.Sprint(o.Epoch))
		w.row("released", fmt.Sprint(o.Released))
		w.row("claimed_at", timeAndAge(o.ClaimedAt))
	} else {
		w.row("owner", "(no ownership row)")
	}
	w.row("items", fmt.Sprintf("%d (%d value bytes)", len(s.Items), s.Bytes))
	w.flush()
	if len(s.Items) == 0 {
		return
	}
	fmt.Fprintln(in.stdout)
	w = newTable(in.stdout)
	w.row("KEY", "SIZE", "VALUE")
	for _, it := range s.Items {
		w.row(quote([]byte(it.Key), 0), fmt.Sprint(it.Size), quote(it.Value, maxValue))
	}
	w.flush()
}

func statusText(s *sessionJSON) string {
	switch inspect.Status(s.Status) {
	case inspect.StatusResident:
		return "resident: owned by a live node"
	case inspect.StatusReleased:
		return "released: its owner shut down gracefully; any node may adopt it at once"
	case inspect.StatusNonResident:
		return "non-resident: its owner's lease has expired; any node may adopt it"
	case inspect.StatusEnded:
		return "ended: nobody owns it; Adopt reports it not found, and a new session with its ID starts afresh"
	case inspect.StatusNoOwner:
		return "no ownership row (ended or expired while items remain); Adopt reports it not found"
	}
	return s.Status
}
