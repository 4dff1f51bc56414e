package main

import (
	"context"
	"flag"
	"fmt"
	"time"
)

type leaseJSON struct {
	Node        string    `json:"node"`
	RenewedAt   time.Time `json:"renewed_at"`
	TTLMS       int64     `json:"ttl_ms"`
	RemainingMS int64     `json:"remaining_ms"`
}

func parseLeases(fs *flag.FlagSet, args []string) (job, error) {
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := parseNoArgs(fs, args); err != nil {
		return nil, err
	}
	return func(ctx context.Context, in *inspector) error {
		conn, err := in.open(ctx)
		if err != nil {
			return err
		}
		leases, err := conn.Leases(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]leaseJSON, 0, len(leases))
			for _, l := range leases {
				out = append(out, leaseJSON{Node: l.Node, RenewedAt: l.RenewedAt.UTC(), TTLMS: l.TTL.Milliseconds(), RemainingMS: l.Remaining.Milliseconds()})
			}
			return writeJSON(in.stdout, out)
		}
		if len(leases) == 0 {
			fmt.Fprintf(in.stdout, "no live leases in keyspace %q: no node is running\n", in.cfg.Keyspace)
			return nil
		}
		w := newTable(in.stdout)
		w.row("NODE", "RENEWED_AT", "TTL", "REMAINING")
		for _, l := range leases {
			w.row(l.Node, timeAndAge(l.RenewedAt), l.TTL.String(), l.Remaining.String())
		}
		w.flush()
		fmt.Fprintf(in.stdout, "%d live %s\n", len(leases), plural(len(leases), "lease", "leases"))
		return nil
	}, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
