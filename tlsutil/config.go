package tlsutil

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

var (
	// ErrInvalidConfig reports a Config that cannot work (a missing file
	// name, an empty datacenter).
	ErrInvalidConfig = errors.New("invalid TLS config")
	// ErrPeerIdentity reports a peer whose certificate is valid but does
	// not name what it claims to be (not a server, or another node).
	ErrPeerIdentity = errors.New("peer certificate does not match its identity")
)

// Domain is the DNS suffix of every certificate name.
const Domain = "chainstore"

// ServerName is the DNS name every server certificate of datacenter dc
// carries, and the name servers and clients verify: server.<dc>.chainstore.
func ServerName(dc string) string { return "server." + dc + "." + Domain }

// NodeServerName is the DNS name that proves a server certificate belongs
// to node: <node>.server.<dc>.chainstore.
func NodeServerName(node, dc string) string { return node + "." + ServerName(dc) }

// ClientName is the DNS name of client certificates: client.<dc>.chainstore.
func ClientName(dc string) string { return "client." + dc + "." + Domain }

// Config names the PEM files of one server and its datacenter. Build it
// with DefaultConfig and check it with Validate (NewConfigurator does).
type Config struct {
	// CAFile holds the CA certificate(s) every peer certificate must chain
	// to. CertFile and KeyFile are this server's certificate and key.
	CAFile, CertFile, KeyFile string
	// VerifyIncoming requires a client certificate from the CA on
	// incoming gRPC and HTTPS connections. Raft always requires one.
	VerifyIncoming bool
	// Datacenter gives the server name verified on server-to-server
	// connections (server.<Datacenter>.chainstore).
	Datacenter string
	// HandshakeTimeout bounds a TLS handshake on the Raft transport and
	// in VerifyServerAt.
	HandshakeTimeout time.Duration
}

// DefaultConfig returns a Config that requires client certificates.
func DefaultConfig() Config {
	return Config{VerifyIncoming: true, Datacenter: "dc1", HandshakeTimeout: 5 * time.Second}
}

// Validate reports the first missing field.
func (c Config) Validate() error {
	switch {
	case c.CAFile == "":
		return fmt.Errorf("CA file (--ca-file) is not set: %w", ErrInvalidConfig)
	case c.CertFile == "" || c.KeyFile == "":
		return fmt.Errorf("certificate and key files (--cert-file, --key-file) must both be set: %w", ErrInvalidConfig)
	case c.Datacenter == "":
		return fmt.Errorf("datacenter is empty: %w", ErrInvalidConfig)
	case c.HandshakeTimeout <= 0:
		return fmt.Errorf("HandshakeTimeout must be positive: %w", ErrInvalidConfig)
	}
	return nil
}

// Configurator holds the loaded certificate and CA pool of one server and
// builds the *tls.Config of each transport. Safe for concurrent use.
type Configurator struct {
	cfg Config

	mu   sync.RWMutex // protects cert and pool; Reload swaps both at once
	cert *tls.Certificate
	pool *x509.CertPool
}

// NewConfigurator validates cfg and loads its files.
func NewConfigurator(cfg Config) (*Configurator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Configurator{cfg: cfg}
	if err := c.Reload(); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload reads the CA, certificate and key files again. On any error the
// previous ones stay in use. New connections use the reloaded files.
func (c *Configurator) Reload() error {
	pool, err := LoadCAPool(c.cfg.CAFile)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(c.cfg.CertFile, c.cfg.KeyFile)
	if err != nil {
		return fmt.Errorf("load certificate %q and key %q: %w", c.cfg.CertFile, c.cfg.KeyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("parse certificate %q: %w", c.cfg.CertFile, err)
		}
	}
	c.mu.Lock()
	c.cert, c.pool = &cert, pool
	c.mu.Unlock()
	return nil
}

// Datacenter returns the configured datacenter.
func (c *Configurator) Datacenter() string { return c.cfg.Datacenter }

// Leaf returns the current certificate (tests and logs).
func (c *Configurator) Leaf() *x509.Certificate {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert.Leaf
}

func (c *Configurator) current() (*tls.Certificate, *x509.CertPool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.cert, c.pool
}

// LoadCAPool reads a PEM file of one or more CA certificates.
func LoadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %q holds no PEM certificate: %w", file, ErrInvalidConfig)
	}
	return pool, nil
}

// base is the common part of every config: TLS 1.2 at least (1.3 is
// negotiated whenever both sides have it, which ours always do).
func base() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12}
}

// incoming builds a server-side config whose certificate and client CA
// pool are read at each handshake.
func (c *Configurator) incoming(clientAuth tls.ClientAuthType, verify func(tls.ConnectionState) error, protos []string) *tls.Config {
	cfg := base()
	cfg.NextProtos = protos
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cert, pool := c.current()
		out := base()
		out.Certificates = []tls.Certificate{*cert}
		out.ClientCAs = pool
		out.ClientAuth = clientAuth
		out.VerifyConnection = verify
		out.NextProtos = protos
		return out, nil
	}
	return cfg
}

// IncomingGRPC is the config of the gRPC listener: any certificate of the
// CA is accepted from clients, and required when VerifyIncoming is set.
func (c *Configurator) IncomingGRPC() *tls.Config {
	return c.incoming(c.clientAuth(), nil, []string{"h2"})
}

// IncomingHTTPS is the config of an HTTPS listener, with the same client
// certificate rule as gRPC.
func (c *Configurator) IncomingHTTPS() *tls.Config {
	return c.incoming(c.clientAuth(), nil, []string{"h2", "http/1.1"})
}

func (c *Configurator) clientAuth() tls.ClientAuthType {
	if c.cfg.VerifyIncoming {
		return tls.RequireAndVerifyClientCert
	}
	return tls.VerifyClientCertIfGiven
}

// IncomingRaft is the config of the Raft listener: the peer must present
// a server certificate of this datacenter (mutual TLS).
func (c *Configurator) IncomingRaft() *tls.Config {
	dc := c.cfg.Datacenter
	return c.incoming(tls.RequireAndVerifyClientCert, func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("raft peer sent no certificate: %w", ErrPeerIdentity)
		}
		if err := cs.PeerCertificates[0].VerifyHostname(ServerName(dc)); err != nil {
			return fmt.Errorf("raft peer is not a server of %s: %w: %w", dc, ErrPeerIdentity, err)
		}
		return nil
	}, nil)
}

// OutgoingServer is the config for dialling another server (Raft and
// forwarded gRPC): it presents this server's certificate and accepts only
// a server certificate of this datacenter from the CA.
func (c *Configurator) OutgoingServer() *tls.Config {
	return c.outgoing(ServerName(c.cfg.Datacenter))
}

// OutgoingServerNamed is OutgoingServer, but the peer must also prove the
// given DNS name (NodeServerName of the node expected at the address).
func (c *Configurator) OutgoingServerNamed(name string) *tls.Config {
	return c.outgoing(ServerName(c.cfg.Datacenter), name)
}

func (c *Configurator) outgoing(names ...string) *tls.Config {
	cfg := base()
	cfg.ServerName = names[0]
	// The chain is verified in VerifyConnection against the current pool
	// (so Reload applies); the standard verification would pin the pool
	// of the moment this config was built.
	cfg.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		cert, _ := c.current()
		return cert, nil
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		_, pool := c.current()
		return verifyServerChain(cs, pool, names)
	}
	return cfg
}

// verifyServerChain verifies the peer's chain against pool for server
// authentication and checks that its leaf carries every name.
func verifyServerChain(cs tls.ConnectionState, pool *x509.CertPool, names []string) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("server sent no certificate: %w", ErrPeerIdentity)
	}
	inter := x509.NewCertPool()
	for _, ic := range cs.PeerCertificates[1:] {
		inter.AddCert(ic)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		DNSName:       names[0],
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return fmt.Errorf("verify server certificate: %w", err)
	}
	for _, n := range names[1:] {
		if err := leaf.VerifyHostname(n); err != nil {
			return fmt.Errorf("server certificate does not name %s: %w: %w", n, ErrPeerIdentity, err)
		}
	}
	return nil
}

// VerifyServerAt dials addr with mutual TLS and checks that the server
// there presents a certificate of this datacenter naming node
// (NodeServerName). It is how the leader checks a gossip member's claimed
// identity before making it a Raft voter.
func (c *Configurator) VerifyServerAt(ctx context.Context, node, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.HandshakeTimeout)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: c.OutgoingServerNamed(NodeServerName(node, c.cfg.Datacenter))}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("verify server %s at %s: %w", node, addr, err)
	}
	return conn.Close()
}

// HandshakeTimeout returns the configured handshake bound.
func (c *Configurator) HandshakeTimeout() time.Duration { return c.cfg.HandshakeTimeout }

// ClientConfig is the *tls.Config of a client (storectl, storeagent, the
// api package): it trusts caFile and presents the certificate in
// certFile/keyFile when both are set. The server must present a server
// certificate of any datacenter's servers signed by the CA; serverName,
// when not empty, is the name verified instead (e.g. server.dc1.chainstore).
func ClientConfig(caFile, certFile, keyFile, serverName string) (*tls.Config, error) {
	if caFile == "" {
		return nil, fmt.Errorf("a CA file (--ca-file, STORE_CACERT) is needed to verify the servers: %w", ErrInvalidConfig)
	}
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("--cert-file and --key-file go together: %w", ErrInvalidConfig)
	}
	pool, err := LoadCAPool(caFile)
	if err != nil {
		return nil, err
	}
	cfg := base()
	cfg.RootCAs = pool
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("load client certificate %q and key %q: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if serverName != "" {
		cfg.ServerName = serverName
		return cfg, nil
	}
	// Servers are dialled by address; accept any server certificate the
	// CA signed whose names include a server.<dc>.chainstore name.
	cfg.InsecureSkipVerify = true //nolint:gosec // verified in VerifyConnection
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("server sent no certificate: %w", ErrPeerIdentity)
		}
		leaf := cs.PeerCertificates[0]
		for _, n := range leaf.DNSNames {
			if isServerName(n) {
				return verifyServerChain(cs, pool, []string{n})
			}
		}
		return fmt.Errorf("certificate of %v is not a chainstore server certificate: %w", leaf.DNSNames, ErrPeerIdentity)
	}
	return cfg, nil
}

// isServerName reports whether n is server.<dc>.chainstore.
func isServerName(n string) bool {
	const pre, suf = "server.", "." + Domain
	return len(n) > len(pre)+len(suf) && n[:len(pre)] == pre && n[len(n)-len(suf):] == suf
}
