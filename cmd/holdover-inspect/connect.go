package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/adapter"
	"github.com/holdover/holdover/internal/store"
)

// inspector connects to Cassandra on behalf of one command and holds what the
// command writes to.
type inspector struct {
	cfg    adapter.Config
	stdout io.Writer
	stderr io.Writer
	opened []*store.Store
}

func newInspector(cfg adapter.Config, stdout, stderr io.Writer) *inspector {
	return &inspector{cfg: cfg, stdout: stdout, stderr: stderr}
}

func (in *inspector) close() {
	for _, st := range in.opened {
		st.Close()
	}
}

// open connects to the configured keyspace. When that fails it tells apart a
// keyspace that does not exist from a Cassandra that cannot be reached.
func (in *inspector) open(ctx context.Context) (*store.Store, error) {
	st, err := in.openKeyspace(ctx, in.cfg.Keyspace)
	if err == nil {
		return st, nil
	}
	if sys, serr := in.openSystem(ctx); serr == nil {
		if exists, kerr := keyspaceExists(ctx, sys, in.cfg.Keyspace); kerr == nil && !exists {
			return nil, fmt.Errorf("keyspace %q does not exist on %s (HOLDOVER_KEYSPACE): no node has run with it yet, or HOLDOVER_CREATE_SCHEMA=false and it was never created",
				in.cfg.Keyspace, in.where())
		}
	}
	return nil, fmt.Errorf("connect to cassandra at %s, keyspace %q: %w", in.where(), in.cfg.Keyspace, err)
}

// openSystem connects without touching the configured keyspace, for checks
// that must work before it exists.
func (in *inspector) openSystem(ctx context.Context) (*store.Store, error) {
	st, err := in.openKeyspace(ctx, "system")
	if err != nil {
		return nil, fmt.Errorf("connect to cassandra at %s: %w", in.where(), err)
	}
	return st, nil
}

func (in *inspector) openKeyspace(ctx context.Context, keyspace string) (*store.Store, error) {
	o, err := storeOptions(in.cfg)
	if err != nil {
		return nil, err
	}
	o.Keyspace = keyspace
	o.Logger = slog.New(slog.NewTextHandler(in.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := store.Open(ctx, o)
	if err != nil {
		return nil, err
	}
	in.opened = append(in.opened, st)
	return st, nil
}

// where names the contact points for error messages.
func (in *inspector) where() string {
	return fmt.Sprintf("%s (port %d)", strings.Join(in.cfg.Hosts, ","), in.cfg.Port)
}

// keyspaceExists reports whether Cassandra knows keyspace. Unquoted names are
// folded to lower case, as Cassandra does.
func keyspaceExists(ctx context.Context, sys *store.Store, keyspace string) (bool, error) {
	var name string
	err := sys.Session().Query(`SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?`,
		strings.ToLower(keyspace)).ScanContext(ctx, &name)
	if errors.Is(err, gocql.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up keyspace %q: %w", keyspace, err)
	}
	return true, nil
}

// storeOptions turns a validated configuration into read-only store options:
// the same hosts, TLS, credentials, consistency and timeouts a node uses, but
// CreateSchema off, whatever HOLDOVER_CREATE_SCHEMA says.
//
// It mirrors the adapter's unexported Config.storeOptions, which a command
// cannot call; ConfigFromEnv has already validated every field, so the
// conversions below only fail if the files changed since.
func storeOptions(c adapter.Config) (store.Options, error) {
	var cons, serial gocql.Consistency
	if err := cons.UnmarshalText([]byte(c.Consistency)); err != nil {
		return store.Options{}, fmt.Errorf("HOLDOVER_CONSISTENCY: %w", err)
	}
	if err := serial.UnmarshalText([]byte(c.SerialConsistency)); err != nil {
		return store.Options{}, fmt.Errorf("HOLDOVER_SERIAL_CONSISTENCY: %w", err)
	}
	tlsConf, err := tlsConfig(c)
	if err != nil {
		return store.Options{}, err
	}
	return store.Options{
		Hosts:             slices.Clone(c.Hosts),
		Port:              c.Port,
		LocalDC:           c.LocalDC,
		Keyspace:          c.Keyspace,
		CreateSchema:      false,
		Consistency:       cons,
		SerialConsistency: serial,
		ConnectTimeout:    c.ConnectTimeout,
		Timeout:           c.Timeout,
		NumConns:          1,
		TLS:               tlsConf,
		Username:          c.Username,
		Password:          c.Password,
		StateTTL:          c.StateTTL,
		Limits: store.Limits{
			MaxSessionIDBytes: c.MaxSessionIDBytes,
			MaxKeyBytes:       c.MaxKeyBytes,
			MaxValueBytes:     int(c.MaxValueBytes),
		},
	}, nil
}

// tlsConfig builds the client TLS configuration from the HOLDOVER_TLS_*
// variables, or returns nil when TLS is off.
func tlsConfig(c adapter.Config) (*tls.Config, error) {
	if !c.TLSEnabled() {
		return nil, nil
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify,
	}
	if c.TLSCAFile != "" {
		pem, err := os.ReadFile(c.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("HOLDOVER_TLS_CA_FILE: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("HOLDOVER_TLS_CA_FILE: %q holds no PEM certificate that parses", c.TLSCAFile)
		}
	}
	if c.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("HOLDOVER_TLS_CERT_FILE/HOLDOVER_TLS_KEY_FILE: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
