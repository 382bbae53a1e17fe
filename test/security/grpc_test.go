package security_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/internal/tlstest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/tlsutil"
)

// TestGRPCRefusesClientsWithoutValidCertificate: with client certificates
// required, a client without one, with one from another CA, or with an
// expired one is refused before any RPC runs; a plain-text client too.
// A client with a valid certificate writes and reads.
func TestGRPCRefusesClientsWithoutValidCertificate(t *testing.T) {
	c, pki := secureCluster(t)
	addr := c.Leader().GRPCAddr()
	other := tlstest.New(t, "dc1")
	otherClient := other.Client()
	expired := pki.Expired()
	cases := map[string]api.TLSConfig{
		"plain text":                    {},
		"no client certificate":         {CAFile: pki.CAFile},
		"another CA's client":           {CAFile: pki.CAFile, CertFile: otherClient.Cert, KeyFile: otherClient.Key},
		"expired client":                {CAFile: pki.CAFile, CertFile: expired.Cert, KeyFile: expired.Key},
		"server trusted via another CA": servertest.ClientTLS(other),
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cl := servertest.NewTLSClient(t, tc, addr)
			_, err := cl.Apply(ctxFor(t, 10*time.Second), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults("should-not-exist"))})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Apply with %s = %v, want Unavailable (TLS refused)", name, err)
			}
			_, err = cl.Status(ctxFor(t, 10*time.Second), &chainstorev1.StatusRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Status with %s = %v, want Unavailable (TLS refused)", name, err)
			}
		})
	}
	for _, nd := range c.Running() {
		if stored(nd.Server(), "should-not-exist") {
			t.Fatalf("%s stored a write from a refused client", nd.Name())
		}
	}
	good := servertest.NewTLSClient(t, servertest.ClientTLS(pki), addr)
	put(t, good, "allowed")
}

// TestCertificateReload: a server picks up new certificate and key files
// on ReloadTLS (SIGHUP in stored) without a restart: new connections see
// the new certificate, and the cluster keeps working.
func TestCertificateReload(t *testing.T) {
	pki := tlstest.New(t, "dc1")
	var n1Files tlstest.Files
	c := servertest.NewCluster(t, 3, servertest.Secure(pki, func(cfg *server.Config) {
		if cfg.NodeName == "n1" {
			n1Files = tlstest.Files{Cert: cfg.TLS.CertFile, Key: cfg.TLS.KeyFile}
		}
	}))
	n1 := c.Node("n1")
	served := func() *x509.Certificate {
		t.Helper()
		f := pki.Client()
		cfg, err := tlsutil.ClientConfig(pki.CAFile, f.Cert, f.Key, tlsutil.ServerName("dc1"))
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", n1.GRPCAddr(), cfg)
		if err != nil {
			t.Fatalf("dial n1: %v", err)
		}
		defer func() { _ = conn.Close() }()
		return conn.ConnectionState().PeerCertificates[0]
	}
	old := served()
	fresh := pki.Server("n1")
	for _, p := range [][2]string{{fresh.Cert, n1Files.Cert}, {fresh.Key, n1Files.Key}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := served(); got.SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Fatalf("certificate changed before the reload")
	}
	if err := n1.Server().ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	got := served()
	want, err := os.ReadFile(fresh.Cert)
	if err != nil {
		t.Fatal(err)
	}
	if got.SerialNumber.Cmp(old.SerialNumber) == 0 || !certMatches(got, want) {
		t.Fatalf("after ReloadTLS n1 serves serial %v, want the new certificate", got.SerialNumber)
	}
	// A broken file is refused and the current certificate stays.
	if err := os.WriteFile(n1Files.Cert, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := n1.Server().ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS of a garbage certificate succeeded")
	}
	if s := served(); s.SerialNumber.Cmp(got.SerialNumber) != 0 {
		t.Fatal("a failed reload replaced the certificate")
	}
	// Raft and forwarding keep working with the new certificate.
	cl := clientOf(t, pki, c.Running()...)
	put(t, cl, "after-reload")
	testutil.Poll(t, 10*time.Second, "write replicated to n1", func() bool { return stored(n1.Server(), "after-reload") })
}

// certMatches reports whether c is the certificate in pemBytes.
func certMatches(c *x509.Certificate, pemBytes []byte) bool {
	blk, _ := pem.Decode(pemBytes)
	return blk != nil && bytes.Equal(blk.Bytes, c.Raw)
}
