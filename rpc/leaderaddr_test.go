package rpc

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/api"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"

	"github.com/chainstore/chainstore/internal/testutil"
)

func TestLeaderAddrCache(t *testing.T) {
	t.Parallel()
	c := leaderAddrCache{ttl: time.Second}
	t0 := time.Unix(1000, 0)
	if _, ok := c.get("L", "raft-L", t0); ok {
		t.Fatal("get on an empty cache found an address")
	}
	c.put("L", "raft-L", "10.0.0.1:8502", t0)
	for name, tc := range map[string]struct {
		id, raftAddr string
		at           time.Time
		want         string
		wantOK       bool
	}{
		"same leader, fresh":       {"L", "raft-L", t0.Add(999 * time.Millisecond), "10.0.0.1:8502", true},
		"same leader, expired":     {"L", "raft-L", t0.Add(time.Second), "", false},
		"other ID":                 {"M", "raft-L", t0, "", false},
		"same ID, other Raft addr": {"L", "raft-L2", t0, "", false},
	} {
		if got, ok := c.get(tc.id, tc.raftAddr, tc.at); got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: get(%q, %q) = %q, %v; want %q, %v", name, tc.id, tc.raftAddr, got, ok, tc.want, tc.wantOK)
		}
	}
	c.forget("10.0.0.9:8502") // another address: kept
	if _, ok := c.get("L", "raft-L", t0); !ok {
		t.Error("forget of another address dropped the entry")
	}
	c.forget("10.0.0.1:8502")
	if got, ok := c.get("L", "raft-L", t0); ok {
		t.Errorf("get after forget = %q, want nothing", got)
	}
}

// TestForwardingCachesTheLeaderAddress: a follower resolves the leader's
// gRPC address once for many forwarded writes, and again (finding the
// new one) when the leader it cached cannot be reached.
func TestForwardingCachesTheLeaderAddress(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	leader := startESNode(t, "L", true, cl, nil)
	follower := startESNode(t, "F", false, cl, nil)
	follower.raft.set(func(r *esRaft) { r.leaderID = "L" })

	put(t, follower.client, webHTTP)
	put(t, follower.client, apiHTTP)
	put(t, follower.client, webGRPC)
	if applies, _ := leader.raft.counts(); applies != 3 {
		t.Fatalf("leader applied %d writes, want 3", applies)
	}
	if n := cl.lookups.Load(); n != 1 {
		t.Errorf("leader address looked up %d times for 3 forwarded writes, want 1", n)
	}

	// The leader restarts at another address (same ID): the cached address
	// refuses connections, so the follower drops it and resolves again.
	// (Wait until the follower's connection has noticed the stop: a write
	// sent on a connection still marked ready is an unknown outcome, as
	// TestLostConnectionToTheLeaderIsAnUnknownOutcome shows.)
	leader.grpc.Stop()
	old, err := follower.srv.router.fwd.conn(leader.addr)
	if err != nil {
		t.Fatalf("forwarder connection to %s: %v", leader.addr, err)
	}
	testutil.Poll(t, 10*time.Second, "the follower's connection to the stopped leader is no longer ready", func() bool {
		return old.GetState() != connectivity.Ready
	})
	moved := startESNode(t, "L", true, cl, nil)
	put(t, follower.client, webHTTP)
	if applies, _ := moved.raft.counts(); applies != 1 {
		t.Errorf("moved leader applied %d writes, want 1", applies)
	}
	if n := cl.lookups.Load(); n != 2 {
		t.Errorf("leader address looked up %d times in all, want 2 (once more after the move)", n)
	}
}

// TestFollowerForwardsEntriesUndecoded: a follower that knows the leader
// forwards an Apply without decoding it, and an invalid entry is refused
// with exactly the status the leader gives; a follower without a leader
// decodes the entry itself and refuses it at once, instead of holding it
// for a leader.
func TestFollowerForwardsEntriesUndecoded(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	leader := startESNode(t, "L", true, cl, nil)
	follower := startESNode(t, "F", false, cl, nil)
	follower.raft.set(func(r *esRaft) { r.leaderID = "L" })
	alone := startESNode(t, "A", false, newESCluster(), func(c *ServerConfig) { c.HoldTimeout = 10 * time.Second })
	ctx := testCtx(t)

	for name, input := range map[string]string{
		"decode error":     `{"Kind":"service-defaults","Name":"web","cornfig":1}`,
		"validation error": `{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathExact":"x"}}}]}`,
		"bad name":         `{"Kind":"service-defaults","Name":"a\u0007b"}`,
		"too large":        `{"Kind":"service-defaults","Name":"web","Meta":{"a":"` + strings.Repeat("x", DefaultMaxEntrySize) + `"}}`,
	} {
		req := &chainstorev1.ApplyRequest{Entry: []byte(input)}
		_, want := leader.client.Apply(ctx, req)
		if status.Code(want) != codes.InvalidArgument && status.Code(want) != codes.ResourceExhausted {
			t.Fatalf("%s: Apply on the leader = %v, want it refused", name, want)
		}
		for server, c := range map[string]*api.Client{"follower": follower.client, "follower without a leader": alone.client} {
			_, err := c.Apply(ctx, req)
			// Compare the unpacked ErrorInfo: a packed Any holds its map
			// fields in random order.
			if status.Code(err) != status.Code(want) || status.Convert(err).Message() != status.Convert(want).Message() ||
				!proto.Equal(api.ErrorInfo(err), api.ErrorInfo(want)) {
				t.Errorf("%s: Apply on the %s = %v (%v), want the leader's %v (%v)", name, server, err, api.ErrorInfo(err), want, api.ErrorInfo(want))
			}
		}
	}
	if applies, _ := leader.raft.counts(); applies != 0 {
		t.Errorf("leader applied %d writes, want 0", applies)
	}
	w := put(t, follower.client, webHTTP)
	if applies, _ := leader.raft.counts(); !w.GetApplied() || applies != 1 {
		t.Errorf("valid write through the follower = %v, leader applies %d; want applied once", w, applies)
	}
}
