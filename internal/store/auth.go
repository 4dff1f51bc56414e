package store

import (
	"fmt"

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
