package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/inspect"
)

type ownedJSON struct {
	Node      string       `json:"node"`
	Sessions  []ownedEntry `json:"sessions"`
	Truncated bool         `json:"truncated"` // -limit stopped the listing; more entries exist
}

type ownedEntry struct {
	Session string `json:"session"`
	Epoch   uint64 `json:"epoch"`
	// With -verify: the ownership row as it is now.
	Current *currentOwner `json:"current,omitempty"`
}

type currentOwner struct {
	Found    bool   `json:"found"`
	Node     string `json:"node,omitempty"`
	Epoch    uint64 `json:"epoch,omitempty"`
	Released bool   `json:"released,omitempty"`
	Ended    bool   `json:"ended,omitempty"` // the row marks the session ended
	Stale    bool   `json:"stale"`           // the index entry no longer matches the row
}

func parseOwned(fs *flag.FlagSet, args []string) (job, error) {
	asJSON := fs.Bool("json", false, "print JSON")
	limit := fs.Int("limit", 100, "list at most this many sessions; 0 lists them all")
	verify := fs.Bool("verify", false, "read each session's ownership row (and its owner's lease) and flag index entries that are stale")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 1 || pos[0] == "" {
		return nil, usagef("want exactly one node ID, got %q", pos)
	}
	if err := adapter.CheckNodeID(pos[0]); err != nil {
		return nil, usagef("%v", err)
	}
	if *limit < 0 {
		return nil, usagef("-limit must be 0 or more, got %d", *limit)
	}
	node := pos[0]
	return func(ctx context.Context, in *inspector) error {
		conn, err := in.open(ctx)
		if err != nil {
			return err
		}
		owned, more, err := conn.OwnedBy(ctx, node, *limit)
		if err != nil {
			return err
		}
		out := ownedJSON{Node: node, Sessions: make([]ownedEntry, 0, len(owned)), Truncated: more}
		for _, o := range owned {
			out.Sessions = append(out.Sessions, ownedEntry{Session: o.Session, Epoch: o.Epoch})
		}
		if *verify {
			for i := range out.Sessions {
				e := &out.Sessions[i]
				row, err := conn.Owner(ctx, e.Session)
				if errors.Is(err, inspect.ErrNotFound) {
					e.Current = &currentOwner{Stale: true}
					continue
				}
				if err != nil {
					return err
				}
				e.Current = &currentOwner{Found: true, Node: row.Node, Epoch: row.Epoch, Released: row.Released, Ended: row.Ended,
					Stale: row.Node != node || row.Epoch != e.Epoch}
			}
		}
		if *asJSON {
			return writeJSON(in.stdout, out)
		}
		printOwned(in, out, *limit)
		return nil
	}, nil
}

func printOwned(in *inspector, out ownedJSON, limit int) {
	if len(out.Sessions) == 0 {
		fmt.Fprintf(in.stdout, "the owner index lists no sessions under node %q\n", out.Node)
		return
	}
	w := newTable(in.stdout)
	header := []string{"SESSION", "EPOCH"}
	if out.Sessions[0].Current != nil {
		header = append(header, "CURRENT")
	}
	w.row(header...)
	stale := 0
	for _, e := range out.Sessions {
		cells := []string{quote([]byte(e.Session), 0), fmt.Sprint(e.Epoch)}
		if c := e.Current; c != nil {
			cells = append(cells, currentText(c))
			if c.Stale {
				stale++
			}
		}
		w.row(cells...)
	}
	w.flush()
	fmt.Fprintf(in.stdout, "%d %s listed under node %q", len(out.Sessions), plural(len(out.Sessions), "session", "sessions"), out.Node)
	if out.Truncated {
		fmt.Fprintf(in.stdout, " (stopped at -limit %d; more exist)", limit)
	}
	if out.Sessions[0].Current != nil {
		fmt.Fprintf(in.stdout, "; %d stale", stale)
	}
	fmt.Fprintln(in.stdout)
	if out.Sessions[0].Current == nil {
		fmt.Fprintln(in.stdout, "the index is a hint: run with -verify to check each entry against its ownership row")
	}
}

func currentText(c *currentOwner) string {
	switch {
	case !c.Found:
		return "stale: no ownership row (ended or expired)"
	case c.Ended:
		return fmt.Sprintf("stale: the session ended (epoch %d)", c.Epoch)
	case c.Stale:
		return fmt.Sprintf("stale: now owned by %s at epoch %d", c.Node, c.Epoch)
	case c.Released:
		return "ok (released)"
	}
	return "ok"
}
