package adapter

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	gocql "github.com/apache/cassandra-gocql-driver/v2"

	"github.com/holdover/holdover/internal/store"
)

const testPassword = "Opt-pa55word;never-in-errors"

// storeProblem asserts that err is a *ConfigError with a problem for v
// containing want, and that it does not show the password.
func storeProblem(t *testing.T, err error, v, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("storeOptions() succeeded, want a problem for %s", v)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("error shows the password: %v", err)
	}
	for _, p := range problemsOf(t, err) {
		if p.Var == v && strings.Contains(p.Problem, want) {
			return
		}
	}
	t.Errorf("no problem for %s containing %q in:\n%v", v, want, err)
}

func TestStoreOptionsMapsEveryField(t *testing.T) {
	c := DefaultConfig()
	c.Hosts = []string{"10.0.0.1", "10.0.0.2:9142"}
	c.Port = 9142
	c.LocalDC = "dc2"
	c.Keyspace = "Sessions_v2"
	c.ReplicationClass = NetworkTopologyStrategy
	c.ReplicationDCs = map[string]int{"dc2": 5, "dc1": 3}
	c.CreateSchema = false
	c.Consistency = "EACH_QUORUM"
	c.SerialConsistency = "SERIAL"
	c.ConnectTimeout = 7 * time.Second
	c.Timeout = 750 * time.Millisecond
	c.TLS = true
	c.TLSServerName = "cassandra.internal"
	c.Username = "holdover"
	c.Password = testPassword
	c.StateTTL = 720 * time.Hour
	c.RebaseDeletes = 25000
	c.MaxSessionIDBytes = 200
	c.MaxKeyBytes = 512
	c.MaxValueBytes = 3 * MiB

	got, err := c.storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	if got.TLS == nil {
		t.Fatal("TLS is nil with HOLDOVER_TLS=true")
	}
	if got.TLS.ServerName != "cassandra.internal" || got.TLS.MinVersion != tls.VersionTLS12 ||
		got.TLS.InsecureSkipVerify || got.TLS.RootCAs != nil || len(got.TLS.Certificates) != 0 {
		t.Errorf("TLS = %+v, want server name cassandra.internal, TLS 1.2 or later, system roots, no client certificate", got.TLS)
	}
	got.TLS = nil
	want := store.Options{
		Hosts:                []string{"10.0.0.1", "10.0.0.2:9142"},
		Port:                 9142,
		LocalDC:              "dc2",
		Keyspace:             "Sessions_v2",
		Replication:          "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 5}",
		CreateSchema:         false,
		Consistency:          gocql.EachQuorum,
		SerialConsistency:    gocql.Serial,
		SerialConsistencyVar: "HOLDOVER_SERIAL_CONSISTENCY",
		ConnectTimeout:       7 * time.Second,
		Timeout:              750 * time.Millisecond,
		Username:             "holdover",
		Password:             testPassword,
		StateTTL:             720 * time.Hour,
		RebaseDeletes:        25000,
		Limits:               store.Limits{MaxSessionIDBytes: 200, MaxKeyBytes: 512, MaxValueBytes: 3 << 20},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("storeOptions() =\n%+v\nwant\n%+v", got, want)
	}

	// The hosts are copied, not shared.
	got.Hosts[0] = "changed"
	if c.Hosts[0] != "10.0.0.1" {
		t.Error("storeOptions() shares Hosts with the Config")
	}
}

// Every store option is either filled from Config or deliberately left to
// the store's defaults, so a field added to store.Options is not forgotten.
func TestStoreOptionsCoverStoreFields(t *testing.T) {
	// PasswordFunc is set instead of Password when the password comes from
	// HOLDOVER_PASSWORD_FILE (TestPasswordFileReachesStore).
	leftToStore := map[string]bool{"Tables": true, "NumConns": true, "Logger": true, "PasswordFunc": true, "TTLFor": true, "SharedTable": true}
	// CreateSchema and TLS are on here so that no field is zero by chance.
	c := DefaultConfig()
	c.LocalDC = "dc1"
	c.TLS = true
	c.Username, c.Password = "u", "p"
	o, err := c.storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(o)
	for i := range v.NumField() {
		name := v.Type().Field(i).Name
		if zero := v.Field(i).IsZero(); zero != leftToStore[name] {
			t.Errorf("store.Options.%s zero = %v; want it filled from Config unless left to the store's defaults", name, zero)
		}
	}
}

func TestStoreOptionsDefaults(t *testing.T) {
	o, err := DefaultConfig().storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS != nil {
		t.Errorf("TLS = %+v, want nil (plain connections) by default", o.TLS)
	}
	if o.Consistency != gocql.LocalQuorum || o.SerialConsistency != gocql.Serial {
		t.Errorf("consistency = %v/%v, want LOCAL_QUORUM/SERIAL", o.Consistency, o.SerialConsistency)
	}
	if o.Replication != "{'class': 'SimpleStrategy', 'replication_factor': 1}" || !o.CreateSchema {
		t.Errorf("replication = %q, create schema = %v", o.Replication, o.CreateSchema)
	}
	if want := (store.Limits{MaxSessionIDBytes: 128, MaxKeyBytes: 256, MaxValueBytes: 1 << 20}); o.Limits != want {
		t.Errorf("Limits = %+v, want %+v", o.Limits, want)
	}
	if o.Password != "" || o.Username != "" {
		t.Errorf("credentials %q/%q set by default", o.Username, o.Password)
	}
}

func TestStoreOptionsRejectsInvalidConfig(t *testing.T) {
	c := DefaultConfig()
	c.Password = testPassword // without a username
	c.Keyspace = "x; DROP KEYSPACE y"
	_, err := c.storeOptions()
	storeProblem(t, err, "HOLDOVER_PASSWORD", "HOLDOVER_USERNAME is empty")
	storeProblem(t, err, "HOLDOVER_KEYSPACE", identifierPattern)
}

func TestStoreOptionsConsistency(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want gocql.Consistency
	}{
		{"ONE", gocql.One},
		{"TWO", gocql.Two},
		{"THREE", gocql.Three},
		{"QUORUM", gocql.Quorum},
		{"ALL", gocql.All},
		{"LOCAL_QUORUM", gocql.LocalQuorum},
		{"EACH_QUORUM", gocql.EachQuorum},
		{"LOCAL_ONE", gocql.LocalOne},
	} {
		c := DefaultConfig()
		c.Consistency = tc.s
		o, err := c.storeOptions()
		if err != nil {
			t.Errorf("%s: %v", tc.s, err)
			continue
		}
		if o.Consistency != tc.want {
			t.Errorf("HOLDOVER_CONSISTENCY=%s gives %v, want %v", tc.s, o.Consistency, tc.want)
		}
	}
	for _, tc := range []struct {
		s    string
		want gocql.Consistency
	}{
		{"SERIAL", gocql.Serial},
		{"LOCAL_SERIAL", gocql.LocalSerial},
	} {
		c := DefaultConfig()
		c.SerialConsistency = tc.s
		o, err := c.storeOptions()
		if err != nil {
			t.Errorf("%s: %v", tc.s, err)
			continue
		}
		if o.SerialConsistency != tc.want {
			t.Errorf("HOLDOVER_SERIAL_CONSISTENCY=%s gives %v, want %v", tc.s, o.SerialConsistency, tc.want)
		}
	}
	// Every level Validate accepts maps to the gocql level of that name.
	for _, s := range append(consistencyLevels, serialConsistencyLevels...) {
		if got := gocql.ParseConsistency(s).String(); got != s {
			t.Errorf("gocql names %s %s", s, got)
		}
	}

	// Levels gocql knows but the adapter does not accept are refused even
	// if Validate is bypassed.
	for _, tc := range []struct{ v, s string }{
		{"HOLDOVER_CONSISTENCY", "ANY"},
		{"HOLDOVER_CONSISTENCY", "SERIAL"},
		{"HOLDOVER_CONSISTENCY", "local_quorum"},
		{"HOLDOVER_SERIAL_CONSISTENCY", "QUORUM"},
		{"HOLDOVER_SERIAL_CONSISTENCY", ""},
	} {
		allowed := consistencyLevels
		if tc.v == "HOLDOVER_SERIAL_CONSISTENCY" {
			allowed = serialConsistencyLevels
		}
		var k checker
		if got := parseConsistency(&k, tc.v, tc.s, allowed); got != 0 || len(k.probs) != 1 || k.probs[0].Var != tc.v {
			t.Errorf("parseConsistency(%s=%q) = %v, problems %v; want a problem for %s", tc.v, tc.s, got, k.probs, tc.v)
		}
	}
}

// testPKI is a CA with a server and a client certificate, as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string // CA, client certificate and key
	serverCert                tls.Certificate
	clientCert                *x509.Certificate
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	now := time.Now()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "holdover test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(serial int64, cn string, usage x509.ExtKeyUsage, dns []string) ([]byte, *ecdsa.PrivateKey) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial),
			Subject:      pkix.Name{CommonName: cn},
			DNSNames:     dns,
			NotBefore:    now.Add(-time.Hour),
			NotAfter:     now.Add(time.Hour),
			KeyUsage:     x509.KeyUsageDigitalSignature,
			ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, key
	}
	pkcs8 := func(key *ecdsa.PrivateKey) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return der
	}

	var pki testPKI
	pki.caFile = writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)
	clientDER, clientKey := issue(2, "holdover-client", x509.ExtKeyUsageClientAuth, nil)
	pki.certFile = writePEM(t, dir, "client.pem", "CERTIFICATE", clientDER)
	pki.keyFile = writePEM(t, dir, "client-key.pem", "PRIVATE KEY", pkcs8(clientKey))
	if pki.clientCert, err = x509.ParseCertificate(clientDER); err != nil {
		t.Fatal(err)
	}
	serverDER, serverKey := issue(3, "cassandra", x509.ExtKeyUsageServerAuth, []string{"cassandra.test"})
	pki.serverCert = tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
	return pki
}

func TestStoreOptionsMutualTLS(t *testing.T) {
	pki := newTestPKI(t)
	c := DefaultConfig()
	c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = pki.caFile, pki.certFile, pki.keyFile
	c.TLSServerName = "cassandra.test"
	c.Username, c.Password = "holdover", testPassword
	o, err := c.storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	conf := o.TLS
	if conf == nil {
		t.Fatal("TLS is nil with a CA and a client certificate")
	}
	if conf.MinVersion != tls.VersionTLS12 || conf.ServerName != "cassandra.test" || conf.InsecureSkipVerify {
		t.Errorf("MinVersion %x, ServerName %q, InsecureSkipVerify %v", conf.MinVersion, conf.ServerName, conf.InsecureSkipVerify)
	}
	if len(conf.Certificates) != 1 || !reflect.DeepEqual(conf.Certificates[0].Certificate[0], pki.clientCert.Raw) {
		t.Fatalf("Certificates do not hold the client certificate")
	}
	if _, err := pki.clientCert.Verify(x509.VerifyOptions{
		Roots: conf.RootCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("RootCAs do not hold the CA: %v", err)
	}

	// A handshake with a server that requires the client certificate.
	clientCAs := x509.NewCertPool()
	caPEM, err := os.ReadFile(pki.caFile)
	if err != nil {
		t.Fatal(err)
	}
	clientCAs.AppendCertsFromPEM(caPEM)
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	server := tls.Server(sc, &tls.Config{
		Certificates: []tls.Certificate{pki.serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	})
	serverErr := make(chan error, 1)
	go func() { serverErr <- server.Handshake() }()
	client := tls.Client(cc, conf)
	if err := client.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	if peers := server.ConnectionState().PeerCertificates; len(peers) == 0 || peers[0].Subject.CommonName != "holdover-client" {
		t.Errorf("server saw client certificates %v", peers)
	}
}

func TestStoreOptionsTLSInsecureSkipVerify(t *testing.T) {
	c := DefaultConfig()
	c.TLS, c.TLSInsecureSkipVerify = true, true
	o, err := c.storeOptions()
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS == nil || !o.TLS.InsecureSkipVerify {
		t.Errorf("TLS = %+v, want InsecureSkipVerify", o.TLS)
	}
}

func TestStoreOptionsTLSFileProblems(t *testing.T) {
	pki := newTestPKI(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"+testPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherKey := writePEM(t, dir, "other-key.pem", "EC PRIVATE KEY", func() []byte {
		der, err := x509.MarshalECPrivateKey(newKey(t))
		if err != nil {
			t.Fatal(err)
		}
		return der
	}())
	badCert := writePEM(t, dir, "bad-cert.pem", "CERTIFICATE", []byte("garbage"))

	cases := []struct {
		name             string
		ca, cert, key, v string
		want             string
	}{
		{"garbage CA", garbage, "", "", "HOLDOVER_TLS_CA_FILE", "PEM certificate"},
		{"key as CA", pki.keyFile, "", "", "HOLDOVER_TLS_CA_FILE", "PEM certificate"},
		{"unparsable CA", badCert, "", "", "HOLDOVER_TLS_CA_FILE", "PEM certificate"},
		{"garbage cert", pki.caFile, garbage, pki.keyFile, "HOLDOVER_TLS_CERT_FILE", "no CERTIFICATE block"},
		{"unparsable cert", "", badCert, pki.keyFile, "HOLDOVER_TLS_CERT_FILE", "does not parse"},
		{"garbage key", "", pki.certFile, garbage, "HOLDOVER_TLS_KEY_FILE", "private key of HOLDOVER_TLS_CERT_FILE"},
		{"key of another certificate", "", pki.certFile, otherKey, "HOLDOVER_TLS_KEY_FILE", "does not match"},
		{"cert and key swapped", "", pki.keyFile, pki.certFile, "HOLDOVER_TLS_CERT_FILE", "no CERTIFICATE block"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.TLSCAFile, c.TLSCertFile, c.TLSKeyFile = tc.ca, tc.cert, tc.key
			c.Username, c.Password = "holdover", testPassword
			_, err := c.storeOptions()
			storeProblem(t, err, tc.v, tc.want)
			if len(problemsOf(t, err)) != 1 {
				t.Errorf("want one problem, got:\n%v", err)
			}
			t.Log(err)
		})
	}
}

// A file that disappears between Validate and loading is reported, not
// passed on as an empty pool.
func TestStoreOptionsTLSFileUnreadable(t *testing.T) {
	var k checker
	if pool := loadCAs(&k, filepath.Join(t.TempDir(), "gone.pem")); pool != nil || len(k.probs) != 1 ||
		k.probs[0].Var != "HOLDOVER_TLS_CA_FILE" || !strings.Contains(k.probs[0].Problem, "no such file") {
		t.Errorf("loadCAs of a missing file = %v, problems %v", pool, k.probs)
	}
}
