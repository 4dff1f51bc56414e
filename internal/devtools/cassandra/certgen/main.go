// Command certgen writes the certificates of the local secured Cassandra node
// (cassandra.sh start-secure) and of the tests that run against it.
//
//	certgen -dir DIR -ip 127.0.0.21 -dns cassandra-secure.holdover.test
//
// Every run makes new keys (ECDSA P-256) and certificates valid from an hour
// ago for 30 days, so nothing secret is ever committed or reused across runs:
//
//	ca.pem                          the test CA (the node's truststore: it verifies client certificates)
//	server-keystore.pem             the node's private key, its certificate (the IP and DNS names given) and the CA
//	client.pem, client-key.pem      a client certificate signed by the CA (mutual TLS)
//	expired-client.pem, ...-key.pem a client certificate signed by the CA that expired yesterday
//	other-ca.pem                    a CA that signed nothing the node presents (a wrong CA)
//	other-client.pem, ...-key.pem   a client certificate signed by the other CA
//
// Keys are written with mode 0600, the directory with 0700. The CA keys are
// not written: nothing can be signed by them after the run.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory to write the files into (created with mode 0700)")
	ip := flag.String("ip", "127.0.0.21", "IP address the server certificate is valid for")
	dns := flag.String("dns", "cassandra-secure.holdover.test", "DNS name the server certificate is valid for")
	flag.Parse()
	if *dir == "" || net.ParseIP(*ip) == nil {
		fmt.Fprintln(os.Stderr, "usage: certgen -dir DIR [-ip 127.0.0.21] [-dns NAME]")
		os.Exit(2)
	}
	if err := run(*dir, net.ParseIP(*ip), *dns); err != nil {
		fmt.Fprintln(os.Stderr, "certgen:", err)
		os.Exit(1)
	}
}

// issuer is a CA: its certificate and key.
type issuer struct {
	cert *x509.Certificate
	der  []byte
	key  *ecdsa.PrivateKey
}

func run(dir string, ip net.IP, dns string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	now := time.Now()
	valid := [2]time.Time{now.Add(-time.Hour), now.Add(30 * 24 * time.Hour)}

	ca, err := newCA("holdover test CA", valid)
	if err != nil {
		return err
	}
	other, err := newCA("holdover other CA", valid)
	if err != nil {
		return err
	}
	if err := writePEM(dir, "ca.pem", 0o644, block("CERTIFICATE", ca.der)); err != nil {
		return err
	}
	if err := writePEM(dir, "other-ca.pem", 0o644, block("CERTIFICATE", other.der)); err != nil {
		return err
	}

	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: dns},
		IPAddresses: []net.IP{ip},
		DNSNames:    []string{dns},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, key, err := ca.sign(server, valid)
	if err != nil {
		return err
	}
	// PEMBasedSslContextFactory's keystore: the private key, then the chain.
	if err := writePEM(dir, "server-keystore.pem", 0o600, key, block("CERTIFICATE", der), block("CERTIFICATE", ca.der)); err != nil {
		return err
	}

	clients := []struct {
		name  string
		by    *issuer
		valid [2]time.Time
	}{
		{"client", ca, valid},
		{"expired-client", ca, [2]time.Time{now.Add(-30 * 24 * time.Hour), now.Add(-24 * time.Hour)}},
		{"other-client", other, valid},
	}
	for _, c := range clients {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: "holdover " + c.name},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		der, key, err := c.by.sign(tmpl, c.valid)
		if err != nil {
			return err
		}
		if err := writePEM(dir, c.name+".pem", 0o644, block("CERTIFICATE", der)); err != nil {
			return err
		}
		if err := writePEM(dir, c.name+"-key.pem", 0o600, key); err != nil {
			return err
		}
	}
	return nil
}

func newCA(name string, valid [2]time.Time) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             valid[0],
		NotAfter:              valid[1],
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &issuer{cert: cert, der: der, key: key}, nil
}

// sign issues tmpl with a new key; it returns the certificate and the key as
// a PKCS #8 PEM block.
func (ca *issuer) sign(tmpl *x509.Certificate, valid [2]time.Time) ([]byte, *pem.Block, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = valid[0], valid[1]
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return der, block("PRIVATE KEY", pkcs8), nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n
}

func block(typ string, der []byte) *pem.Block { return &pem.Block{Type: typ, Bytes: der} }

// writePEM writes the blocks to dir/name with the given mode, replacing any
// file there (a new file, so a stricter mode is never widened).
func writePEM(dir, name string, mode os.FileMode, blocks ...*pem.Block) error {
	path := filepath.Join(dir, name)
	tmp := path + ".tmp"
	_ = os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	for _, b := range blocks {
		if err := pem.Encode(f, b); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
