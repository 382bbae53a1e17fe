package security_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/tlstest"
	"github.com/chainstore/chainstore/tlsutil"
)

// tlsStream is an attacker's raft.StreamLayer that dials with cfg.
type tlsStream struct {
	net.Listener
	cfg *tls.Config
}

func (s tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", string(addr), s.cfg)
}

// forger returns a Raft transport an attacker controls: plain TCP when
// cfg is nil, TLS with cfg otherwise.
func forger(t *testing.T, cfg *tls.Config) *raft.NetworkTransport {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stream raft.StreamLayer = tlsStream{Listener: ln, cfg: cfg}
	if cfg == nil {
		stream = plainStream{ln}
	}
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: stream, MaxPool: 1, Timeout: 2 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard}),
	})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

type plainStream struct{ net.Listener }

func (s plainStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

// TestForgedAppendEntriesRefused sends a follower the AppendEntries that
// erased acknowledged writes in issue 10 (a higher term, a forged entry,
// a commit index covering it) over plain TCP, over TLS with a client (not
// server) certificate of the cluster's CA, and over TLS with a server
// certificate of another CA. Each is refused: the follower's term does not
// move, nothing forged is applied, and every acknowledged write survives.
func TestForgedAppendEntriesRefused(t *testing.T) {
	c, pki := secureCluster(t)
	leader := c.Leader()
	cl := clientOf(t, pki, c.Running()...)
	for i := range 5 {
		put(t, cl, fmt.Sprintf("acked-%d", i))
	}
	c.WaitConverged()

	other := tlstest.New(t, "dc1")
	otherServer := other.Server("n2")
	otherCert, err := tls.LoadX509KeyPair(otherServer.Cert, otherServer.Key)
	if err != nil {
		t.Fatal(err)
	}
	client := pki.Client()
	clientCert, err := tls.LoadX509KeyPair(client.Cert, client.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := tlsutil.LoadCAPool(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	attacks := map[string]*tls.Config{
		"plain TCP": nil,
		"TLS with a client certificate": {
			Certificates: []tls.Certificate{clientCert}, RootCAs: pool,
			ServerName: tlsutil.ServerName("dc1"), MinVersion: tls.VersionTLS12,
		},
		"TLS with a server certificate of another CA": {
			Certificates: []tls.Certificate{otherCert}, InsecureSkipVerify: true, //nolint:gosec // the attacker does not care
			MinVersion: tls.VersionTLS12,
		},
	}
	for name, cfg := range attacks {
		t.Run(name, func(t *testing.T) {
			f := c.Followers()[0].Server()
			before := f.Raft().Stats()
			forgedTerm := before.Term + 10
			req := &raft.AppendEntriesRequest{
				RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader.Server().NodeID()), Addr: []byte(leader.Server().RaftAddr())},
				Term:         forgedTerm,
				PrevLogEntry: before.LastLogIndex,
				PrevLogTerm:  before.Term,
				Entries: []*raft.Log{{
					Index: before.LastLogIndex + 1, Term: forgedTerm, Type: raft.LogCommand, Data: []byte("forged"),
				}},
				LeaderCommitIndex: before.LastLogIndex + 1,
			}
			var resp raft.AppendEntriesResponse
			tr := forger(t, cfg)
			err := tr.AppendEntries(raft.ServerID(f.NodeID()), raft.ServerAddress(f.RaftAddr()), req, &resp)
			if err == nil {
				t.Fatalf("forged AppendEntries over %s: accepted (success=%v, term=%d), want refused", name, resp.Success, resp.Term)
			}
			if got := f.Raft().Stats().Term; got >= forgedTerm {
				t.Fatalf("follower term = %d after the forged RPC, want below %d", got, forgedTerm)
			}
			// The cluster still works, and every acknowledged write is
			// on every server.
			put(t, cl, "after-"+name)
			c.WaitConverged()
			for _, nd := range c.Running() {
				for i := range 5 {
					if !stored(nd.Server(), fmt.Sprintf("acked-%d", i)) {
						t.Errorf("%s lost acknowledged write acked-%d", nd.Name(), i)
					}
				}
			}
		})
	}
}

// TestRaftTLSConfigRefusesClientCertificate checks the Raft listener's
// rule directly: a certificate of the CA that does not name
// server.<dc>.chainstore (a client certificate) fails the handshake.
func TestRaftTLSConfigRefusesClientCertificate(t *testing.T) {
	pki := tlstest.New(t, "dc1")
	srv := pki.Configurator("n1")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.IncomingRaft())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	errs := make(chan error, 2)
	go func() {
		for range 2 {
			conn, err := ln.Accept()
			if err != nil {
				errs <- err
				return
			}
			errs <- conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}
	}()
	dial := func(cfg *tls.Config) error {
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer func() { _ = conn.Close() }()
		_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the client's handshake
		return err
	}
	// A server certificate passes.
	_ = dial(pki.Configurator("n2").OutgoingServer())
	if err := <-errs; err != nil {
		t.Fatalf("server certificate refused by the Raft listener: %v", err)
	}
	cf := pki.Client()
	cert, err := tls.LoadX509KeyPair(cf.Cert, cf.Key)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pki.CA.Cert)
	_ = dial(&tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: tlsutil.ServerName("dc1"), MinVersion: tls.VersionTLS12})
	if err := <-errs; err == nil {
		t.Fatal("client certificate accepted by the Raft listener, want refused")
	}
}

// TestForgedAppendEntriesControl is the control of
// TestForgedAppendEntriesRefused: without TLS the very same forged RPC is
// accepted by the follower (its term jumps), which is the hole secure
// mode closes. If this ever fails, the forgery above no longer tests
// anything.
func TestForgedAppendEntriesControl(t *testing.T) {
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	put(t, c.Client(c.Running()...), "acked")
	c.WaitConverged()
	f := c.Followers()[0].Server()
	before := f.Raft().Stats()
	forgedTerm := before.Term + 10
	req := &raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(leader.Server().NodeID()), Addr: []byte(leader.Server().RaftAddr())},
		Term:              forgedTerm,
		PrevLogEntry:      before.LastLogIndex,
		PrevLogTerm:       before.Term,
		LeaderCommitIndex: before.LastLogIndex,
	}
	var resp raft.AppendEntriesResponse
	if err := forger(t, nil).AppendEntries(raft.ServerID(f.NodeID()), raft.ServerAddress(f.RaftAddr()), req, &resp); err != nil {
		t.Fatalf("forged AppendEntries without TLS: %v, want accepted", err)
	}
	if resp.Term != forgedTerm {
		t.Fatalf("follower answered term %d, want the forged term %d", resp.Term, forgedTerm)
	}
}
