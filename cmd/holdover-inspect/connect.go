package main

import (
	"context"
	"io"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/inspect"
)

// inspector is what one command runs with: the configuration, where it writes
// its result, and the connection it opened, if any.
type inspector struct {
	cfg    adapter.Config
	stdout io.Writer
	conn   *inspect.Inspector
}

func newInspector(cfg adapter.Config, stdout io.Writer) *inspector {
	return &inspector{cfg: cfg, stdout: stdout}
}

func (in *inspector) close() {
	if in.conn != nil {
		in.conn.Close()
	}
}

// open connects to the configured keyspace, once per command. Its error tells
// a keyspace that does not exist from a Cassandra that cannot be reached.
func (in *inspector) open(ctx context.Context) (*inspect.Inspector, error) {
	if in.conn == nil {
		conn, err := inspect.Open(ctx, in.cfg)
		if err != nil {
			return nil, err
		}
		in.conn = conn
	}
	return in.conn, nil
}
