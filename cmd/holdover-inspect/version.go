package main

import (
	"context"
	"flag"
	"fmt"
)

type versionJSON struct {
	ReleaseVersion string `json:"release_version"`
	ClusterName    string `json:"cluster_name"`
	DataCenter     string `json:"data_center"`
	Keyspace       string `json:"keyspace"`
	KeyspaceExists bool   `json:"keyspace_exists"`
}

func parseVersion(fs *flag.FlagSet, args []string) (job, error) {
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) != 0 {
		return nil, usagef("takes no arguments, got %q", pos)
	}
	return func(ctx context.Context, in *inspector) error {
		// The system keyspace always exists, so this works before any node
		// has created HOLDOVER_KEYSPACE, and says whether one has.
		sys, err := in.openSystem(ctx)
		if err != nil {
			return err
		}
		v := versionJSON{Keyspace: in.cfg.Keyspace}
		err = sys.Session().Query(`SELECT release_version, cluster_name, data_center FROM system.local`).
			ScanContext(ctx, &v.ReleaseVersion, &v.ClusterName, &v.DataCenter)
		if err != nil {
			return fmt.Errorf("read system.local: %w", err)
		}
		if v.KeyspaceExists, err = keyspaceExists(ctx, sys, in.cfg.Keyspace); err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(in.stdout, v)
		}
		ks := "present"
		if !v.KeyspaceExists {
			ks = "absent (no node has created it yet)"
		}
		w := newTable(in.stdout)
		w.row("release_version", v.ReleaseVersion)
		w.row("cluster_name", v.ClusterName)
		w.row("data_center", v.DataCenter)
		w.row("keyspace", fmt.Sprintf("%s: %s", v.Keyspace, ks))
		w.flush()
		return nil
	}, nil
}
