// Package tlstest creates throw-away PKIs (a CA plus server and client
// certificates in a test's temporary directory) for tests of the TLS
// layers. Test support only.
package tlstest

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/tlsutil"
)

// PKI is a CA in a temporary directory.
type PKI struct {
	tb  testing.TB
	dir string
	dc  string
	CA  *tlsutil.CA
	// CAFile is the CA certificate's path.
	CAFile string
	n      atomic.Int64
}

// Files names one certificate and its key.
type Files struct{ Cert, Key string }

// New creates a CA for datacenter dc.
func New(tb testing.TB, dc string) *PKI {
	tb.Helper()
	ca, _, err := tlsutil.GenerateCA("chainstore test CA", 1)
	if err != nil {
		tb.Fatalf("GenerateCA: %v", err)
	}
	p := &PKI{tb: tb, dir: tb.TempDir(), dc: dc, CA: ca}
	p.CAFile = filepath.Join(p.dir, "ca.pem")
	if err := tlsutil.WriteFiles(p.CAFile, ca.CertPEM, "", nil); err != nil {
		tb.Fatalf("write CA: %v", err)
	}
	return p
}

// Cert creates a certificate with o (its Datacenter and Days default to
// the PKI's and 1) and writes it.
func (p *PKI) Cert(o tlsutil.CertOptions) Files {
	p.tb.Helper()
	if o.Datacenter == "" {
		o.Datacenter = p.dc
	}
	if o.Days == 0 && o.NotAfter.IsZero() {
		o.Days = 1
	}
	c, k, err := p.CA.GenerateCert(o)
	if err != nil {
		p.tb.Fatalf("GenerateCert: %v", err)
	}
	i := p.n.Add(1)
	f := Files{Cert: filepath.Join(p.dir, fmt.Sprintf("cert-%d.pem", i)), Key: filepath.Join(p.dir, fmt.Sprintf("key-%d.pem", i))}
	if err := tlsutil.WriteFiles(f.Cert, c, f.Key, k); err != nil {
		p.tb.Fatalf("write certificate: %v", err)
	}
	return f
}

// Server creates a server certificate for node.
func (p *PKI) Server(node string) Files {
	p.tb.Helper()
	return p.Cert(tlsutil.CertOptions{Kind: tlsutil.KindServer, Node: node})
}

// Client creates a client certificate.
func (p *PKI) Client() Files {
	p.tb.Helper()
	return p.Cert(tlsutil.CertOptions{Kind: tlsutil.KindClient})
}

// Expired creates a client certificate that expired an hour ago.
func (p *PKI) Expired() Files {
	p.tb.Helper()
	now := time.Now()
	return p.Cert(tlsutil.CertOptions{Kind: tlsutil.KindClient, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
}

// Configurator returns a server Configurator for node with a fresh
// server certificate.
func (p *PKI) Configurator(node string) *tlsutil.Configurator {
	p.tb.Helper()
	f := p.Server(node)
	cfg := tlsutil.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile, cfg.Datacenter = p.CAFile, f.Cert, f.Key, p.dc
	c, err := tlsutil.NewConfigurator(cfg)
	if err != nil {
		p.tb.Fatalf("NewConfigurator: %v", err)
	}
	return c
}
