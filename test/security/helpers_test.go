package security_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/internal/tlstest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func serviceDefaults(name string) string {
	return fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":"http"}`, name)
}

// put writes service-defaults name through c and fails unless it was
// applied.
func put(t *testing.T, c *api.Client, name string) {
	t.Helper()
	if _, err := c.Apply(ctxFor(t, 15*time.Second), &chainstorev1.ApplyRequest{Entry: []byte(serviceDefaults(name))}); err != nil {
		t.Fatalf("put %s: %v", name, err)
	}
}

// stored reports whether srv's own store holds service-defaults name.
func stored(srv *server.Server, name string) bool {
	e, _, _ := srv.FSM().Store().Get(chain.KeyOf("service-defaults", name))
	return e != nil
}

// secureCluster starts a three-node cluster in secure mode and returns
// it with its PKI and a client (client certificate) of every node.
func secureCluster(t *testing.T) (*servertest.Cluster, *tlstest.PKI) {
	t.Helper()
	pki := tlstest.New(t, "dc1")
	c := servertest.NewCluster(t, 3, servertest.Secure(pki, nil))
	return c, pki
}

// clientOf returns a TLS client of nodes.
func clientOf(t *testing.T, pki *tlstest.PKI, nodes ...*servertest.Node) *api.Client {
	t.Helper()
	var addrs []string
	for _, nd := range nodes {
		addrs = append(addrs, nd.GRPCAddr())
	}
	return servertest.NewTLSClient(t, servertest.ClientTLS(pki), addrs...)
}

// claim is what an attacker's gossip node says about itself: the fields
// of chainstore's node metadata (version 1, cluster/meta.go), which an
// attacker can read from the source or from the wire.
type claim struct {
	ID, Datacenter, RaftAddr, GRPCAddr string
}

func (c claim) encode() []byte {
	b := []byte{1, 0}
	b = binary.AppendUvarint(b, 0)
	b = binary.BigEndian.AppendUint64(b, 0)
	for _, s := range []string{c.ID, c.Datacenter, c.RaftAddr, c.GRPCAddr} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// metaDelegate gossips a fixed claim.
type metaDelegate struct{ meta []byte }

func (d metaDelegate) NodeMeta(int) []byte           { return d.meta }
func (metaDelegate) NotifyMsg([]byte)                {}
func (metaDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (metaDelegate) LocalState(bool) []byte          { return nil }
func (metaDelegate) MergeRemoteState([]byte, bool)   {}

// attacker starts a memberlist node called name with the test cluster's
// label, gossiping c; key (base64) is its gossip key, "" for none. It is
// shut down when the test ends.
func attacker(t *testing.T, name, key string, c claim) *memberlist.Memberlist {
	t.Helper()
	cfg := memberlist.DefaultLocalConfig()
	cfg.Name = name
	cfg.BindAddr, cfg.BindPort, cfg.AdvertisePort = "127.0.0.1", 0, 0
	cfg.Label = "chainstore-test"
	cfg.Delegate = metaDelegate{meta: c.encode()}
	cfg.LogOutput = nil
	cfg.Logger = log.New(io.Discard, "", 0)
	if key != "" {
		k, err := base64.StdEncoding.DecodeString(key)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Keyring, err = memberlist.NewKeyring(nil, k); err != nil {
			t.Fatal(err)
		}
	}
	ml, err := memberlist.Create(cfg)
	if err != nil {
		t.Fatalf("create attacker memberlist: %v", err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	return ml
}

// knows reports whether srv's gossip lists a member called name.
// gossipAddrs returns every running server's gossip address. Attackers
// contact them all (an intruder can), so each server learns of them by a
// direct push/pull rather than through gossip dissemination, which under
// load can take longer than a test waits.
func gossipAddrs(c *servertest.Cluster) []string {
	var all []string
	for _, n := range c.Running() {
		all = append(all, n.Server().GossipAddr())
	}
	return all
}

func knows(srv *server.Server, name string) bool {
	for _, m := range srv.Members() {
		if m.Name == name {
			return true
		}
	}
	return false
}

// countingListener accepts TCP connections, counts them and closes them:
// the attacker's fake Raft or gRPC port.
type countingListener struct {
	ln       net.Listener
	accepted atomic.Int64
	done     chan struct{}
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{ln: ln, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-l.done })
	return l
}

func (l *countingListener) addr() string { return l.ln.Addr().String() }

// voterAddrs returns the leader's Raft configuration, ID -> address.
func voterAddrs(t *testing.T, srv *server.Server) map[string]string {
	t.Helper()
	servers, err := srv.Raft().Servers()
	if err != nil {
		t.Fatalf("Servers: %v", err)
	}
	out := map[string]string{}
	for _, s := range servers {
		out[s.ID] = s.Address
	}
	return out
}

// waitRefused waits until the leader has refused the member called name.
func waitRefused(t *testing.T, c *servertest.Cluster, name string) string {
	t.Helper()
	var why string
	testutil.Poll(t, 20*time.Second, "leader refuses "+name, func() bool {
		var ok bool
		why, ok = c.Leader().Server().RefusedMembers()[name]
		return ok
	})
	return why
}
