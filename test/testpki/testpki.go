// Package testpki makes certificate authorities and the certificates
// issued by them, as PEM files, for tests of TLS and mTLS on loopback.
package testpki

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
	"sync/atomic"
	"testing"
	"time"
)

var serial atomic.Int64

// CA is a certificate authority valid for the next hour.
type CA struct {
	Cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	File   string // the CA certificate, PEM
	Pool   *x509.CertPool
	dir    string
	tester testing.TB
}

// Issued is a certificate with its key: as files and as a tls.Certificate.
type Issued struct {
	CertFile, KeyFile string
	TLS               tls.Certificate
}

// NewCA makes a CA named name whose files live in the test's temporary
// directory.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Cert: cert, key: k, Pool: x509.NewCertPool(), dir: t.TempDir(), tester: t}
	ca.Pool.AddCert(cert)
	ca.File = ca.write(name+"-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return ca
}

// Server issues a server certificate for name and 127.0.0.1.
func (ca *CA) Server(name string) Issued { return ca.issue(name, x509.ExtKeyUsageServerAuth) }

// Client issues a client certificate with common name name.
func (ca *CA) Client(name string) Issued { return ca.issue(name, x509.ExtKeyUsageClientAuth) }

func (ca *CA) issue(name string, usage x509.ExtKeyUsage) Issued {
	t := ca.tester
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: []string{name}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &k.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(k)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	n := serial.Load()
	return Issued{CertFile: ca.write(name+"-"+big.NewInt(n).String()+".pem", certPEM), KeyFile: ca.write(name+"-"+big.NewInt(n).String()+".key", keyPEM), TLS: pair}
}

func (ca *CA) write(name string, data []byte) string {
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		ca.tester.Fatal(err)
	}
	return p
}
