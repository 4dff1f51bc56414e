package adapter

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/store"
	"github.com/holdover/holdover/internal/storeconf"
)

// Lend the store's readers (internal/inspect) the adapter's boundary: see
// package storeconf.
func init() {
	storeconf.FromConfig = func(c any) (store.Options, error) { return c.(Config).storeOptions() }
	storeconf.Errors = translate
}

// storeOptions converts c into the options of the Cassandra store. It
// validates c first, so it never hands the store a field Validate would
// reject, and then loads the TLS files. Every error is a *ConfigError whose
// problems name the variable at fault; none holds the password.
//
// Options the Config does not set (table names, connections per host, the
// logger) are left zero for the store's defaults.
func (c Config) storeOptions() (store.Options, error) {
	if err := c.Validate(); err != nil {
		return store.Options{}, err
	}
	var k checker
	cons := parseConsistency(&k, "HOLDOVER_CONSISTENCY", c.Consistency, consistencyLevels)
	serial := parseConsistency(&k, "HOLDOVER_SERIAL_CONSISTENCY", c.SerialConsistency, serialConsistencyLevels)
	tlsConf := c.tlsConfig(&k)
	if len(k.probs) > 0 {
		return store.Options{}, &ConfigError{Problems: k.probs}
	}
	return store.Options{
		Hosts:             slices.Clone(c.Hosts),
		Port:              c.Port,
		LocalDC:           c.LocalDC,
		Keyspace:          c.Keyspace,
		Replication:       c.ReplicationCQL(),
		CreateSchema:      c.CreateSchema,
		Consistency:       cons,
		SerialConsistency: serial,
		// The store checks LOCAL_SERIAL against the keyspace's data centers
		// when it connects, after Validate; its refusal names the variable.
		SerialConsistencyVar: "HOLDOVER_SERIAL_CONSISTENCY",
		ConnectTimeout:       c.ConnectTimeout,
		Timeout:              c.Timeout,
		TLS:                  tlsConf,
		Username:             c.Username,
		Password:             c.Password,
		PasswordFunc:         c.passwordSource(),
		StateTTL:             c.StateTTL,
		RebaseDeletes:        c.RebaseDeletes,
		Limits: store.Limits{
			MaxSessionIDBytes: c.MaxSessionIDBytes,
			MaxKeyBytes:       c.MaxKeyBytes,
			MaxValueBytes:     int(c.MaxValueBytes), // at most 15MiB after Validate
		},
	}, nil
}

// parseConsistency returns the gocql level named s, which must be one of
// allowed. gocql also knows levels the adapter does not accept (ANY, and the
// serial levels as ordinary ones), so allowed is checked first.
func parseConsistency(k *checker, v, s string, allowed []string) gocql.Consistency {
	var level gocql.Consistency
	if !slices.Contains(allowed, s) || level.UnmarshalText([]byte(s)) != nil {
		k.add(v, "must be one of %s, got %q", strings.Join(allowed, ", "), s)
		return 0
	}
	return level
}

// tlsConfig builds the client TLS configuration, or returns nil when TLS is
// off. Without HOLDOVER_TLS_CA_FILE the system roots verify the servers.
func (c Config) tlsConfig(k *checker) *tls.Config {
	if !c.TLSEnabled() {
		return nil
	}
	conf := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         c.TLSServerName,
		InsecureSkipVerify: c.TLSInsecureSkipVerify,
	}
	if c.TLSCAFile != "" {
		conf.RootCAs = loadCAs(k, c.TLSCAFile)
	}
	if c.TLSCertFile != "" {
		if cert, ok := loadKeyPair(k, c.TLSCertFile, c.TLSKeyFile); ok {
			conf.Certificates = []tls.Certificate{cert}
		}
	}
	return conf
}

// loadCAs reads the PEM CA certificates in path, or reports the problem
// under HOLDOVER_TLS_CA_FILE and returns nil.
func loadCAs(k *checker, path string) *x509.CertPool {
	const v = "HOLDOVER_TLS_CA_FILE"
	data, err := readFile(k, v, path)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		k.add(v, "must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----), %q holds none that parses", path)
		return nil
	}
	return pool
}

// loadKeyPair reads the client certificate and its key. A problem with the
// certificate itself is reported under HOLDOVER_TLS_CERT_FILE; a key that is
// missing, malformed or not the certificate's under HOLDOVER_TLS_KEY_FILE.
// It reads each file once and then does what tls.LoadX509KeyPair does.
func loadKeyPair(k *checker, certPath, keyPath string) (tls.Certificate, bool) {
	const certVar, keyVar = "HOLDOVER_TLS_CERT_FILE", "HOLDOVER_TLS_KEY_FILE"
	certPEM, certErr := readFile(k, certVar, certPath)
	keyPEM, keyErr := readFile(k, keyVar, keyPath)
	if certErr != nil || keyErr != nil {
		return tls.Certificate{}, false
	}
	if err := checkCertPEM(certPEM); err != nil {
		k.add(certVar, "must hold a PEM client certificate, %q: %v", certPath, err)
		return tls.Certificate{}, false
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		k.add(keyVar, "must hold the PEM private key of HOLDOVER_TLS_CERT_FILE, %q: %v", keyPath, err)
		return tls.Certificate{}, false
	}
	return cert, true
}

// checkCertPEM reports whether data starts a certificate chain that parses:
// its first CERTIFICATE block must be a valid X.509 certificate.
func checkCertPEM(data []byte) error {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return errors.New("no CERTIFICATE block")
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return fmt.Errorf("certificate does not parse: %w", err)
			}
			return nil
		}
	}
}

// readFile reads path, reporting a failure under v.
func readFile(k *checker, v, path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		k.unreadable(v, path, err)
	}
	return data, err
}
