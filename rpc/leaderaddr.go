package rpc

import (
	"sync/atomic"
	"time"
)

// leaderAddrTTL is how long a follower reuses the gRPC address it resolved
// for the leader Raft reports before it asks the member list again.
const leaderAddrTTL = time.Second

// leaderAddrCache remembers the gRPC address last resolved for one leader
// (Raft ID and Raft address, as Raft reports them). Resolving it
// (Members.ServerGRPCAddr) reads the Raft configuration through the Raft
// goroutine and copies and sorts the whole member list: about 5 % of a
// follower's CPU when it resolved once per forwarded request. An entry is
// used only for the same ID and Raft address, for at most leaderAddrTTL,
// and is dropped as soon as a connection to it fails, so a leader that
// moved or stopped being an admitted member is resolved again. Safe for
// concurrent use (one atomic pointer to an immutable value).
type leaderAddrCache struct {
	ttl time.Duration
	cur atomic.Pointer[leaderAddr]
}

// leaderAddr is one resolution; never modified once stored.
type leaderAddr struct {
	id, raftAddr, grpcAddr string
	expires                time.Time
}

// get returns the cached gRPC address of the leader (id, raftAddr) if it
// was resolved less than ttl before now.
func (c *leaderAddrCache) get(id, raftAddr string, now time.Time) (string, bool) {
	a := c.cur.Load()
	if a == nil || a.id != id || a.raftAddr != raftAddr || !now.Before(a.expires) {
		return "", false
	}
	return a.grpcAddr, true
}

// put remembers grpcAddr as the address of the leader (id, raftAddr).
func (c *leaderAddrCache) put(id, raftAddr, grpcAddr string, now time.Time) {
	c.cur.Store(&leaderAddr{id: id, raftAddr: raftAddr, grpcAddr: grpcAddr, expires: now.Add(c.ttl)})
}

// forget drops the entry if it still names grpcAddr (a newer resolution
// stored meanwhile is kept).
func (c *leaderAddrCache) forget(grpcAddr string) {
	a := c.cur.Load()
	if a != nil && a.grpcAddr == grpcAddr {
		c.cur.CompareAndSwap(a, nil)
	}
}
