package tlsutil

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"time"
)

// CertKind says what a certificate is for.
type CertKind uint8

// Certificate kinds.
const (
	KindServer CertKind = iota + 1
	KindClient
)

// CA is a loaded certificate authority that signs certificates.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is the CA certificate as written to ca.pem.
	CertPEM []byte
}

// CertOptions describes one certificate to create.
type CertOptions struct {
	Kind       CertKind
	Datacenter string
	// Node is the server's node name (servers only): the certificate then
	// also names <node>.server.<dc>.chainstore.
	Node string
	// NotBefore and NotAfter bound validity; zero NotBefore means now
	// minus a minute, zero NotAfter means NotBefore plus Days days.
	NotBefore, NotAfter time.Time
	Days                int
	// ExtraDNS and ExtraIPs are added to the subject alternative names.
	ExtraDNS []string
	ExtraIPs []net.IP
}

// GenerateCA creates a self-signed CA valid for days days.
func GenerateCA(commonName string, days int) (*CA, []byte, error) {
	if days <= 0 {
		return nil, nil, fmt.Errorf("CA validity must be positive, got %d days: %w", days, ErrInvalidConfig)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate CA key: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"chainstore"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(0, 0, days),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, keyPEM, nil
}

// LoadCA reads a CA certificate and its key from PEM files.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block: %w", certFile, ErrInvalidConfig)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate %s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate: %w", certFile, ErrInvalidConfig)
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return nil, fmt.Errorf("%s: no PEM key block: %w", keyFile, ErrInvalidConfig)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	if err != nil {
		if k, err = x509.ParseECPrivateKey(kblk.Bytes); err != nil {
			return nil, fmt.Errorf("parse CA key %s: %w", keyFile, err)
		}
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s cannot sign: %w", keyFile, ErrInvalidConfig)
	}
	return &CA{Cert: cert, Key: signer, CertPEM: cb}, nil
}

// GenerateCert creates a certificate signed by ca and returns it and its
// key as PEM.
func (ca *CA) GenerateCert(o CertOptions) (certPEM, keyPEM []byte, err error) {
	if o.Datacenter == "" {
		return nil, nil, fmt.Errorf("datacenter is empty: %w", ErrInvalidConfig)
	}
	tmpl := &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IPAddresses: append([]net.IP(nil), o.ExtraIPs...),
		DNSNames:    append([]string(nil), o.ExtraDNS...),
	}
	switch o.Kind {
	case KindServer:
		// Servers are clients of each other too (Raft, forwarding).
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = append(tmpl.DNSNames, ServerName(o.Datacenter), "localhost")
		tmpl.Subject.CommonName = ServerName(o.Datacenter)
		if o.Node != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, NodeServerName(o.Node, o.Datacenter))
			tmpl.Subject.CommonName = NodeServerName(o.Node, o.Datacenter)
		}
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
	case KindClient:
		tmpl.DNSNames = append(tmpl.DNSNames, ClientName(o.Datacenter))
		tmpl.Subject.CommonName = ClientName(o.Datacenter)
	default:
		return nil, nil, errors.New("certificate kind must be server or client")
	}
	tmpl.NotBefore, tmpl.NotAfter = o.NotBefore, o.NotAfter
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Minute)
	}
	if tmpl.NotAfter.IsZero() {
		if o.Days <= 0 {
			return nil, nil, fmt.Errorf("certificate validity must be positive, got %d days: %w", o.Days, ErrInvalidConfig)
		}
		tmpl.NotAfter = tmpl.NotBefore.AddDate(0, 0, o.Days)
	}
	if tmpl.SerialNumber, err = serialNumber(); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	if tmpl.SubjectKeyId, err = keyID(key.Public()); err != nil {
		return nil, nil, err
	}
	tmpl.AuthorityKeyId = ca.Cert.SubjectKeyId
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return encodeCert(der), keyPEM, nil
}

// WriteFiles writes a certificate (mode 0644) and its key (mode 0600),
// refusing to overwrite either.
func WriteFiles(certFile string, certPEM []byte, keyFile string, keyPEM []byte) error {
	if err := writeNew(certFile, certPEM, 0o644); err != nil {
		return err
	}
	if keyFile == "" {
		return nil
	}
	return writeNew(keyFile, keyPEM, 0o600)
}

func writeNew(name string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", name, err)
	}
	return nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("generate serial number: %w", err)
	}
	return n, nil
}

func keyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:20], nil
}

func encodeCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
