package store

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	gocql "github.com/apache/cassandra-gocql-driver/v2"
)

// rereadAuthenticator answers exactly as gocql's PasswordAuthenticator with
// the password of the moment, and reports a failure to get it by user name.
func TestRereadAuthenticator(t *testing.T) {
	const class = "org.apache.cassandra.auth.PasswordAuthenticator"
	pw := "first"
	a := rereadAuthenticator{username: "app", password: func() (string, error) { return pw, nil }}
	for _, p := range []string{"first", "second"} {
		pw = p
		got, next, err := a.Challenge([]byte(class))
		want, _, _ := gocql.PasswordAuthenticator{Username: "app", Password: p}.Challenge([]byte(class))
		if err != nil || next != nil || !bytes.Equal(got, want) {
			t.Fatalf("Challenge with password %q = %q, %v, %v; want %q", p, got, next, err, want)
		}
	}
	bad := rereadAuthenticator{username: "app", password: func() (string, error) {
		return "", errors.New(`HOLDOVER_PASSWORD_FILE: must name a readable file, "/x": no such file or directory`)
	}}
	if _, _, err := bad.Challenge([]byte(class)); err == nil || !strings.Contains(err.Error(), "password for user app: HOLDOVER_PASSWORD_FILE") {
		t.Fatalf("Challenge with an unreadable file: %v", err)
	}
	o := Options{Username: "app", Password: "p", PasswordFunc: func() (string, error) { return "q", nil }}
	if _, ok := o.cluster().Authenticator.(rereadAuthenticator); !ok {
		t.Fatal("cluster() ignores PasswordFunc")
	}
}
