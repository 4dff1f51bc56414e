package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/holdover/holdover/internal/inspect"
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
	if err := parseNoArgs(fs, args); err != nil {
		return nil, err
	}
	return func(ctx context.Context, in *inspector) error {
		// It needs no keyspace, so it works before any node has created
		// HOLDOVER_KEYSPACE, and says whether one has.
		c, err := inspect.DescribeCluster(ctx, in.cfg)
		if err != nil {
			return err
		}
		v := versionJSON{ReleaseVersion: c.ReleaseVersion, ClusterName: c.ClusterName, DataCenter: c.DataCenter,
			Keyspace: in.cfg.Keyspace, KeyspaceExists: c.KeyspaceExists}
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
