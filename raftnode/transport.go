package raftnode

import (
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is the raft.StreamLayer under our NetworkTransport: plain TCP
// today, and the place where mutual TLS and the check that a peer's
// certificate names the expected server ID will go (not implemented yet:
// docs/reliability.md, G13). It also implements the test-only dial override used
// by the fault suite to route each directed link through a proxy.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	// override is Config.DialOverride; nil means dial the address as given.
	override func(addr string) string
	// conns are the open connections, both ways, for fence.
	conns connSet
}

var _ raft.StreamLayer = (*streamLayer)(nil)

// newStreamLayer binds bindAddr. advertise may be empty, in which case the
// bound address is advertised (it must then be a specific IP).
func newStreamLayer(bindAddr, advertise string, override func(string) string) (*streamLayer, error) {
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", bindAddr, err)
	}
	s := &streamLayer{ln: ln, override: override}
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
	return tc, nil
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
		if s.conns.add(tc) {
			return tc, nil
		}
	}
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
