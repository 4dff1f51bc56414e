package store

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// rereadAuthenticator is gocql's PasswordAuthenticator with the password
// asked for at every login. The driver calls Challenge once for each
// connection it opens (the first ones, a pool refilling after a connection
// dropped, a reconnection to a host that was down), so a password read from
// a secret file that has since been rotated is the new one there, without a
// restart. Connections already open stay logged in: Cassandra never asks
// them again.
type rereadAuthenticator struct {
	username string
	password func() (string, error)
}

// Challenge answers the server's first challenge with the SASL PLAIN
// response PasswordAuthenticator sends: NUL, user name, NUL, password.
func (a rereadAuthenticator) Challenge(req []byte) ([]byte, gocql.Authenticator, error) {
	p, err := a.password()
	if err != nil {
		return nil, nil, fmt.Errorf("password for user %s: %w", a.username, err)
	}
	return gocql.PasswordAuthenticator{Username: a.username, Password: p}.Challenge(req)
}

// Success accepts the server's verdict; there is nothing to check.
func (a rereadAuthenticator) Success([]byte) error { return nil }

// connectHint adds to a failure to connect what the TLS library's words
// leave out, when the likely cause is the connection's security settings:
// "certificate required" also answers a client certificate of a CA the
// cluster does not trust, and a TLS-only cluster resets a plain connection
// without a word. Other errors are returned as they are.
func (o Options) connectHint(err error) error {
	msg := err.Error()
	// The driver sometimes misses the alert a TLS 1.3 server sends after
	// the handshake when it refuses the client certificate, and reports a
	// timeout instead; a probe of the first host reads that alert.
	if o.TLS != nil && strings.Contains(msg, "no response to connection startup") {
		if addr, perr := o.probeTLS(); perr != nil {
			err = fmt.Errorf("%w; a TLS probe of %s: %v", err, addr, perr)
			msg = perr.Error()
		}
	}
	var hint string
	switch {
	case strings.Contains(msg, "tls: certificate required") && (o.TLS == nil || len(o.TLS.Certificates) == 0):
		hint = "the cluster requires a client certificate (require_client_auth); give one"
	case strings.Contains(msg, "tls: certificate required"):
		hint = "the cluster refused the client certificate: it must be signed by a CA in the cluster's truststore"
	case strings.Contains(msg, "tls: expired certificate"):
		hint = "the cluster refused the client certificate: it has expired"
	case o.TLS == nil && strings.Contains(msg, "connection reset by peer"):
		hint = "the cluster closed the connection at once: if it requires TLS (client_encryption_options), turn TLS on"
	default:
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// probeTLS opens one TLS connection to the first host as the driver would
// (verifying the host name unless verification is off), and reads from it
// briefly: a server that refuses the client certificate answers with an
// alert, which it returns; nil means nothing was learnt.
func (o Options) probeTLS() (string, error) {
	if len(o.Hosts) == 0 {
		return "", nil
	}
	addr := gocql.JoinHostPort(o.Hosts[0], o.Port)
	conf := o.TLS.Clone()
	if !conf.InsecureSkipVerify && conf.ServerName == "" {
		conf.ServerName, _, _ = net.SplitHostPort(addr)
	}
	timeout := min(max(o.ConnectTimeout, time.Second), 5*time.Second)
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, conf)
	if err != nil {
		return addr, err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(timeout))
	if _, err := conn.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "remote error: tls:") {
		return addr, err
	}
	return addr, nil
}
