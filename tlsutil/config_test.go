package tlsutil_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/tlstest"
	"github.com/chainstore/chainstore/tlsutil"
)

// handshake runs a TLS handshake over loopback TCP between a server with
// srv and a client with cli and returns the first error of either side.
func handshake(t *testing.T, srv, cli *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	serverErr := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			serverErr <- err
			return
		}
		defer func() { _ = conn.Close() }()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		serverErr <- tls.Server(conn, srv).Handshake()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(conn, cli)
	clientErr := c.Handshake()
	if clientErr == nil {
		// TLS 1.3: the server's verdict on our certificate arrives after
		// our side of the handshake; read it.
		_, clientErr = c.Read(make([]byte, 1))
		if errors.Is(clientErr, os.ErrDeadlineExceeded) || errors.Is(clientErr, io.EOF) {
			clientErr = nil
		}
	}
	return errors.Join(<-serverErr, clientErr)
}

func clientConfig(t *testing.T, pki *tlstest.PKI, f tlstest.Files) *tls.Config {
	t.Helper()
	cfg, err := tlsutil.ClientConfig(pki.CAFile, f.Cert, f.Key, "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestHandshakeRules(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t, "dc1")
	other := tlstest.New(t, "dc1")
	n1, n2 := pki.Configurator("n1"), pki.Configurator("n2")
	clientSrv := pki.Client() // a client certificate served as if it were a server's
	clientAsServer, err := tls.LoadX509KeyPair(clientSrv.Cert, clientSrv.Key)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		srv, cli *tls.Config
		ok       bool
	}{
		"gRPC: client certificate":          {n1.IncomingGRPC(), clientConfig(t, pki, pki.Client()), true},
		"gRPC: no client certificate":       {n1.IncomingGRPC(), clientConfig(t, pki, tlstest.Files{}), false},
		"gRPC: another CA's client":         {n1.IncomingGRPC(), clientConfig(t, pki, other.Client()), false},
		"gRPC: expired client":              {n1.IncomingGRPC(), clientConfig(t, pki, pki.Expired()), false},
		"gRPC: client distrusts server":     {n1.IncomingGRPC(), clientConfig(t, other, other.Client()), false},
		"raft: server to server":            {n1.IncomingRaft(), n2.OutgoingServer(), true},
		"raft: client certificate refused":  {n1.IncomingRaft(), clientConfig(t, pki, pki.Client()), false},
		"raft: another CA's server":         {n1.IncomingRaft(), other.Configurator("n2").OutgoingServer(), false},
		"named: the right node":             {n1.IncomingRaft(), n2.OutgoingServerNamed(tlsutil.NodeServerName("n1", "dc1")), true},
		"named: another node":               {n1.IncomingRaft(), n2.OutgoingServerNamed(tlsutil.NodeServerName("n3", "dc1")), false},
		"outgoing: peer serves client cert": {&tls.Config{Certificates: []tls.Certificate{clientAsServer}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}, n2.OutgoingServer(), false},
		"https: client certificate":         {n1.IncomingHTTPS(), clientConfig(t, pki, pki.Client()), true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := handshake(t, tc.srv, tc.cli)
			if tc.ok && err != nil {
				t.Fatalf("handshake: %v, want success", err)
			}
			if !tc.ok && err == nil {
				t.Fatal("handshake succeeded, want refused")
			}
		})
	}
}

// TestReload: Reload swaps the certificate used by configs built before
// it, and a failed reload keeps the old one.
func TestReload(t *testing.T) {
	t.Parallel()
	pki := tlstest.New(t, "dc1")
	f := pki.Server("n1")
	cfg := tlsutil.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = pki.CAFile, f.Cert, f.Key
	c, err := tlsutil.NewConfigurator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	incoming := c.IncomingGRPC()
	before := c.Leaf().SerialNumber
	fresh := pki.Server("n1")
	for _, p := range [][2]string{{fresh.Cert, f.Cert}, {fresh.Key, f.Key}} {
		b, err := os.ReadFile(p[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p[1], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if c.Leaf().SerialNumber.Cmp(before) == 0 {
		t.Fatal("Reload kept the old certificate")
	}
	got, err := incoming.GetConfigForClient(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Certificates[0].Leaf.SerialNumber.Cmp(c.Leaf().SerialNumber) != 0 {
		t.Fatal("a config built before Reload does not serve the new certificate")
	}
	if err := os.WriteFile(f.Key, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Reload(); err == nil {
		t.Fatal("Reload of a junk key succeeded")
	}
	if c.Leaf().SerialNumber.Cmp(got.Certificates[0].Leaf.SerialNumber) != 0 {
		t.Fatal("a failed Reload changed the certificate")
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	if _, err := tlsutil.NewConfigurator(tlsutil.DefaultConfig()); !errors.Is(err, tlsutil.ErrInvalidConfig) {
		t.Errorf("NewConfigurator without files = %v, want ErrInvalidConfig", err)
	}
	if _, err := tlsutil.ClientConfig("", "", "", ""); !errors.Is(err, tlsutil.ErrInvalidConfig) {
		t.Errorf("ClientConfig without a CA = %v, want ErrInvalidConfig", err)
	}
	if _, err := tlsutil.ClientConfig("ca.pem", "cert.pem", "", ""); !errors.Is(err, tlsutil.ErrInvalidConfig) {
		t.Errorf("ClientConfig with a cert but no key = %v, want ErrInvalidConfig", err)
	}
	pki := tlstest.New(t, "dc1")
	if _, _, err := pki.CA.GenerateCert(tlsutil.CertOptions{Kind: tlsutil.KindServer, Days: 1}); !errors.Is(err, tlsutil.ErrInvalidConfig) {
		t.Errorf("GenerateCert without a datacenter = %v, want ErrInvalidConfig", err)
	}
	if _, _, err := pki.CA.GenerateCert(tlsutil.CertOptions{Datacenter: "dc1", Days: 1}); err == nil {
		t.Error("GenerateCert without a kind succeeded")
	}
}
