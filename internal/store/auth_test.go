package store

import (
	"bytes"
	"crypto/tls"
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

func TestConnectHint(t *testing.T) {
	withCert := &tls.Config{Certificates: []tls.Certificate{{}}}
	for _, tc := range []struct {
		tls       *tls.Config
		err, want string
	}{
		{&tls.Config{}, "remote error: tls: certificate required", "requires a client certificate"},
		{withCert, "remote error: tls: certificate required", "signed by a CA in the cluster's truststore"},
		{withCert, "remote error: tls: expired certificate", "it has expired"},
		{nil, "read: connection reset by peer", "if it requires TLS"},
		{&tls.Config{}, "read: connection reset by peer", ""},
		{nil, "Provided username u and/or password are incorrect", ""},
	} {
		base := errors.New(tc.err)
		got := Options{TLS: tc.tls}.connectHint(base)
		if !errors.Is(got, base) {
			t.Errorf("%q: the hint hides the driver's error", tc.err)
		}
		if tc.want == "" && got != base || tc.want != "" && !strings.Contains(got.Error(), tc.want) {
			t.Errorf("%q: got %q, want a hint containing %q", tc.err, got, tc.want)
		}
	}
}
