package raftnode

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is the raft.StreamLayer under our NetworkTransport: plain TCP,
// or mutual TLS when Config.TLS is set (both sides must present a server
// certificate of the datacenter, so a process without one cannot send a
// single Raft RPC; docs/security.md). It also implements the test-only dial
// override used by the fault suite to route each directed link through a
// proxy.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	// override is Config.DialOverride; nil means dial the address as given.
	override func(addr string) string
	// conns are the open connections, both ways, for fence.
	conns connSet
	// tls is nil for plain TCP.
	tls TransportTLS
}

// TransportTLS supplies the Raft transport's TLS configurations
// (*tlsutil.Configurator implements it). Each returned config must verify
// that the peer holds a server certificate.
type TransportTLS interface {
	IncomingRaft() *tls.Config
	OutgoingServer() *tls.Config
	HandshakeTimeout() time.Duration
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer binds bindAddr. advertise may be empty, in which case the
// bound address is advertised (it must then be a specific IP).
func newStreamLayer(bindAddr, advertise string, override func(string) string, tlsCfg TransportTLS) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", bindAddr, err)
	}
	s := &streamLayer{ln: ln, override: override, tls: tlsCfg}
	if advertise == "" {
		tcp, ok := ln.Addr().(*net.TCPAddr)
		if !ok || tcp.IP == nil || tcp.IP.IsUnspecified() {
			_ = ln.Close()
			return nil, fmt.Errorf("bound address %s is not advertisable: %w", ln.Addr(), ErrInvalidConfig)
		}
		s.advertise = tcp
		return s, nil
	}
	addr, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("resolve advertise address %q: %w", advertise, err)
	}
	s.advertise = addr
	return s, nil
}

// Dial implements raft.StreamLayer. The transport passes its
// TransportTimeout as the dial timeout.
func (s *streamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	target := string(address)
	if s.override != nil {
		if o := s.override(target); o != "" {
			target = o
		}
	}
	if s.conns.isFenced() {
		return nil, fmt.Errorf("dial raft peer %s: %w", address, ErrFenced)
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial("tcp", target)
	if err != nil {
		return nil, fmt.Errorf("dial raft peer %s via %s: %w", address, target, err)
	}
	tc := &trackedConn{Conn: conn, set: &s.conns}
	if !s.conns.add(tc) {
		return nil, fmt.Errorf("dial raft peer %s: %w", address, ErrFenced)
	}
	if s.tls == nil {
		return tc, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(timeout, s.tls.HandshakeTimeout()))
	defer cancel()
	tlsConn := tls.Client(tc, s.tls.OutgoingServer())
	if err := tlsConn.HandshakeContext(ctx); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("TLS handshake with raft peer %s: %w", address, err)
	}
	return tlsConn, nil
}

// Accept implements net.Listener. Once fenced, it closes every connection
// it accepts.
func (s *streamLayer) Accept() (net.Conn, error) {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: conn, set: &s.conns}
		if !s.conns.add(tc) {
			continue
		}
		if s.tls == nil {
			return tc, nil
		}
		// The handshake runs on the transport's per-connection goroutine
		// (first Read or Write), never here: one slow peer must not hold
		// up the accept loop.
		return &serverTLSConn{Conn: tls.Server(tc, s.tls.IncomingRaft()), timeout: s.tls.HandshakeTimeout()}, nil
	}
}

// serverTLSConn runs the server side of the TLS handshake, bounded by
// timeout, before the first Read or Write. A peer that fails it (no
// certificate, another CA, not a server certificate) gets its connection
// closed by the transport without one byte of Raft decoded.
type serverTLSConn struct {
	*tls.Conn
	timeout time.Duration
	once    sync.Once
	err     error
}

func (c *serverTLSConn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		if err := c.HandshakeContext(ctx); err != nil {
			c.err = fmt.Errorf("raft TLS handshake with %s: %w", c.RemoteAddr(), err)
		}
	})
	return c.err
}

func (c *serverTLSConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *serverTLSConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// fence closes every Raft connection and refuses new ones: the node can no
// longer lead, vote or replicate.
func (s *streamLayer) fence() { s.conns.fence() }

// trackedConn removes itself from its connSet when closed.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.set.remove(c) })
	return c.Conn.Close()
}

// Close implements net.Listener; the transport calls it on shutdown.
func (s *streamLayer) Close() error { return s.ln.Close() }

// Addr implements net.Listener and returns the advertised address, which is
// what the transport reports as this server's address.
func (s *streamLayer) Addr() net.Addr { return s.advertise }
