package security_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	"github.com/chainstore/chainstore/internal/tlstest"
)

// TestGossipWithoutKeyCannotJoin: a memberlist node with the cluster's
// label but not its gossip key cannot join, so it is never seen by any
// server (issue 10: such a node became a Raft voter within a second).
func TestGossipWithoutKeyCannotJoin(t *testing.T) {
	c, _ := secureCluster(t)
	ml := attacker(t, "intruder", "", claim{ID: "intruder-id", Datacenter: "dc1", RaftAddr: listen(t).addr(), GRPCAddr: listen(t).addr()})
	var addrs []string
	for _, nd := range c.Running() {
		addrs = append(addrs, nd.Server().GossipAddr())
	}
	if n, err := ml.Join(addrs); err == nil || n != 0 {
		t.Fatalf("join without the gossip key: contacted %d, err %v; want refused by every server", n, err)
	}
	if got := len(ml.Members()); got != 1 {
		t.Fatalf("intruder sees %d members, want only itself", got)
	}
	for _, nd := range c.Running() {
		if knows(nd.Server(), "intruder") {
			t.Errorf("%s lists the intruder as a gossip member", nd.Name())
		}
	}
	if n := len(voterAddrs(t, c.Leader().Server())); n != 3 {
		t.Fatalf("raft configuration has %d servers, want 3", n)
	}
}

// TestGossipKeyWithoutServerCertNeverVoter: with the gossip key (a leaked
// key, or a compromised client machine) a node joins gossip, but it cannot
// prove a server certificate for its own name at its Raft address, so the
// leader refuses to make it a voter: "n9" serves TLS there with a client
// certificate of the cluster's own CA, "n8" with a real server certificate
// stolen from n2 (its gossip identity does not match the certificate).
func TestGossipKeyWithoutServerCertNeverVoter(t *testing.T) {
	c, pki := secureCluster(t)
	attackers := map[string]tlstest.Files{"n9": pki.Client(), "n8": pki.Server("n2")}
	for name, files := range attackers {
		raftAddr := serveTLS(t, files)
		ml := attacker(t, name, servertest.TestGossipKey, claim{ID: name + "-id", Datacenter: "dc1", RaftAddr: raftAddr, GRPCAddr: listen(t).addr()})
		if _, err := ml.Join(gossipAddrs(c)); err != nil {
			t.Fatalf("%s: join with the gossip key: %v", name, err)
		}
	}
	for name := range attackers {
		why := waitRefused(t, c, name)
		t.Logf("leader refused %s: %s", name, why)
		if !strings.Contains(why, "certificate") {
			t.Errorf("%s refused because %q, want the certificate check", name, why)
		}
	}
	// A real server joining later is still added: the refusal is per
	// member, not a stuck reconcile loop.
	c.AddNode("n4", 0)
	c.WaitStable(4)
	for name := range attackers {
		if _, ok := voterAddrs(t, c.Leader().Server())[name+"-id"]; ok {
			t.Fatalf("%s (no server certificate for its name) is in the Raft configuration", name)
		}
	}
}

// serveTLS listens on loopback and completes a TLS handshake with the
// certificate in files on every connection, then closes it: an
// attacker's Raft port.
func serveTLS(t *testing.T, files tlstest.Files) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			_ = conn.(*tls.Conn).Handshake()
			_ = conn.Close()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); <-done })
	return ln.Addr().String()
}

// TestImpostors runs three gossip impostors against a cluster, in plain
// mode (the identity rules hold without TLS) and in secure mode:
//   - "evil-a" claims the leader's node ID and its Raft address, with its
//     own gRPC address;
//   - "evil-b" claims the leader's node ID with its own Raft and gRPC
//     addresses;
//   - "evil-c" claims a follower's node ID with its own addresses.
//
// In issue 10, the first made followers forward writes (and their bodies)
// to the impostor, and the last made the leader rewrite the follower's
// Raft address. Here the leader refuses all three, the follower keeps its
// address, and writes through every follower reach the real leader.
func TestImpostors(t *testing.T) {
	for _, mode := range []string{"plain", "secure"} {
		t.Run(mode, func(t *testing.T) {
			var c *servertest.Cluster
			key := ""
			var clientOfNodes func(nodes ...*servertest.Node) func(*testing.T, string)
			if mode == "secure" {
				cl, p := secureCluster(t)
				c, key = cl, servertest.TestGossipKey
				clientOfNodes = func(nodes ...*servertest.Node) func(*testing.T, string) {
					cli := clientOf(t, p, nodes...)
					return func(t *testing.T, name string) { t.Helper(); put(t, cli, name) }
				}
			} else {
				c = servertest.NewCluster(t, 3, nil)
				clientOfNodes = func(nodes ...*servertest.Node) func(*testing.T, string) {
					cli := c.Client(nodes...)
					return func(t *testing.T, name string) { t.Helper(); put(t, cli, name) }
				}
			}
			leader := c.Leader()
			followers := c.Followers()
			victim := followers[0]
			victimAddr := victim.Server().RaftAddr()

			grpcA, grpcB, grpcC := listen(t), listen(t), listen(t)
			raftB, raftC := listen(t), listen(t)
			impostors := map[string]claim{
				"evil-a": {ID: leader.Server().NodeID(), Datacenter: "dc1", RaftAddr: leader.Server().RaftAddr(), GRPCAddr: grpcA.addr()},
				"evil-b": {ID: leader.Server().NodeID(), Datacenter: "dc1", RaftAddr: raftB.addr(), GRPCAddr: grpcB.addr()},
				"evil-c": {ID: victim.Server().NodeID(), Datacenter: "dc1", RaftAddr: raftC.addr(), GRPCAddr: grpcC.addr()},
			}
			for name, cl := range impostors {
				ml := attacker(t, name, key, cl)
				if _, err := ml.Join(gossipAddrs(c)); err != nil {
					t.Fatalf("%s: join: %v", name, err)
				}
			}
			for name := range impostors {
				t.Logf("leader refused %s: %s", name, waitRefused(t, c, name))
			}
			testutil.Poll(t, 20*time.Second, "followers see the impostors", func() bool {
				for _, f := range followers {
					for name := range impostors {
						if !knows(f.Server(), name) {
							return false
						}
					}
				}
				return true
			})
			// Writes and linearizable reads through every follower reach
			// the real leader.
			for i, f := range followers {
				write := clientOfNodes(f)
				name := fmt.Sprintf("via-%s-%d", f.Name(), i)
				write(t, name)
				if !stored(leader.Server(), name) {
					t.Errorf("write %s through %s acknowledged but not on the leader", name, f.Name())
				}
			}
			for _, l := range []*countingListener{grpcA, grpcB, grpcC} {
				if n := l.accepted.Load(); n != 0 {
					t.Errorf("an impostor's gRPC port %s got %d connections, want none", l.addr(), n)
				}
			}
			if got := voterAddrs(t, leader.Server())[victim.Server().NodeID()]; got != victimAddr {
				t.Errorf("follower %s's Raft address = %s, want %s (unchanged)", victim.Name(), got, victimAddr)
			}
			if got := len(voterAddrs(t, leader.Server())); got != 3 {
				t.Errorf("raft configuration has %d servers, want 3", got)
			}
			assertLeader(t, c, leader)
		})
	}
}

// assertLeader checks that every running node still follows want.
func assertLeader(t *testing.T, c *servertest.Cluster, want *servertest.Node) {
	t.Helper()
	for _, nd := range c.Running() {
		if id, _ := nd.Server().Raft().Leader(); id != want.Server().NodeID() {
			t.Errorf("%s follows %q, want %s", nd.Name(), id, want.Name())
		}
	}
}
