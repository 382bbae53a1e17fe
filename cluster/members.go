package cluster

import (
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
)

// Status is a server's gossip status as seen by this node.
type Status uint8

// Statuses. memberlist (v0.6/v0.7) does not expose suspicion (its Node.State is
// never filled in and suspect messages reach no delegate), so a suspected
// server is reported Alive until it is declared failed.
const (
	// StatusAlive: the server is a live gossip member.
	StatusAlive Status = iota + 1
	// StatusLeaving: the server is alive but has announced a graceful leave.
	StatusLeaving
	// StatusLeft: the server left gracefully (Leave).
	StatusLeft
	// StatusFailed: the failure detector declared the server dead.
	StatusFailed
)

// String returns "alive", "leaving", "left" or "failed".
func (s Status) String() string {
	switch s {
	case StatusAlive:
		return "alive"
	case StatusLeaving:
		return "leaving"
	case StatusLeft:
		return "left"
	case StatusFailed:
		return "failed"
	default:
		return "unknown(" + strconv.Itoa(int(s)) + ")"
	}
}

// Member describes one server as seen through gossip.
type Member struct {
	Name       string // gossip node name
	ID         string // Raft server ID; "" if its metadata could not be decoded
	Datacenter string
	GossipAddr string // host:port
	RaftAddr   string
	GRPCAddr   string
	Status     Status
	// HasRaftState is what the server last gossiped about its Raft data dir.
	HasRaftState bool
}

// memberState is this node's record of one gossip member: a deep copy of
// what memberlist reported, decoded, plus when its status last changed.
type memberState struct {
	name       string
	ip         net.IP // copy of memberlist's
	port       uint16
	gossipAddr string
	meta       nodeMeta
	metaErr    error // meta is zero when set
	// leaveIntent: the server told us directly that it is leaving (see
	// Cluster.Leave). Sticky until it rejoins after leaving or failing.
	leaveIntent bool
	status      Status
	since       time.Time // when status last changed
}

func (m memberState) member() Member {
	return Member{
		Name:         m.name,
		ID:           m.meta.ID,
		Datacenter:   m.meta.Datacenter,
		GossipAddr:   m.gossipAddr,
		RaftAddr:     m.meta.RaftAddr,
		GRPCAddr:     m.meta.GRPCAddr,
		Status:       m.status,
		HasRaftState: m.meta.HasState,
	}
}

// live reports whether the member is currently a gossip member.
func (m memberState) live() bool { return m.status == StatusAlive || m.status == StatusLeaving }

// memberTable is memberlist's EventDelegate. memberlist calls it with its
// own node lock held, so it must never block: it copies the node into the
// table and posts a coalescing wake-up on notify (capacity 1). The reconcile
// loop then reads the whole table, so no event is lost by coalescing and a
// slow loop (e.g. waiting on a Raft commit) never stalls gossip, which a
// blocking memberlist.ChannelEventDelegate would.
type memberTable struct {
	logger hclog.Logger
	now    func() time.Time
	notify chan struct{}

	// mu protects byName. Lock order: memberlist's node lock, then mu;
	// never call into memberlist while holding mu.
	mu     sync.Mutex
	byName map[string]memberState
}

var _ memberlist.EventDelegate = (*memberTable)(nil)

func newMemberTable(logger hclog.Logger, now func() time.Time) *memberTable {
	return &memberTable{
		logger: logger,
		now:    now,
		notify: make(chan struct{}, 1),
		byName: make(map[string]memberState),
	}
}

// NotifyJoin implements memberlist.EventDelegate.
func (t *memberTable) NotifyJoin(n *memberlist.Node) { t.observe(n, false) }

// NotifyUpdate implements memberlist.EventDelegate.
func (t *memberTable) NotifyUpdate(n *memberlist.Node) { t.observe(n, false) }

// NotifyLeave implements memberlist.EventDelegate. memberlist calls it for
// both graceful leaves and failures and (v0.6/v0.7) does not say which: a
// server announces a graceful leave first (Leave: a direct message to
// every member plus its metadata), so a leaving server that disappears has
// left and any other has failed.
func (t *memberTable) NotifyLeave(n *memberlist.Node) { t.observe(n, true) }

// observe records a copy of n; gone is true for NotifyLeave.
func (t *memberTable) observe(n *memberlist.Node, gone bool) {
	meta, metaErr := decodeMeta(n.Meta) // copies; n is memberlist's and must not be kept
	st := memberState{
		name:       n.Name,
		ip:         append(net.IP(nil), n.Addr...),
		port:       n.Port,
		gossipAddr: net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port))),
		meta:       meta,
		metaErr:    metaErr,
	}
	now := t.now()

	t.mu.Lock()
	prev, known := t.byName[n.Name]
	// A join after a leave or failure is a fresh start; otherwise an
	// announced leave sticks even if an older metadata update arrives.
	rejoin := known && !gone && !prev.live()
	st.leaveIntent = known && prev.leaveIntent && !rejoin
	leaving := meta.Leaving || st.leaveIntent || (gone && known && prev.meta.Leaving)
	switch {
	case gone && leaving:
		st.status = StatusLeft
	case gone:
		st.status = StatusFailed
	case leaving:
		st.status = StatusLeaving
	default:
		st.status = StatusAlive
	}
	st.since = now
	if known && prev.status == st.status {
		st.since = prev.since
	}
	if gone && metaErr != nil && known {
		st.meta, st.metaErr = prev.meta, prev.metaErr // keep the last good identity
	}
	t.byName[n.Name] = st
	t.mu.Unlock()

	if st.metaErr != nil {
		t.logger.Warn("ignoring gossip member with undecodable metadata", "name", n.Name, "address", st.gossipAddr, "error", st.metaErr)
	}
	t.statusChanged(prev, st, known)
}

// markLeaving records a leave intent received from the server named name.
func (t *memberTable) markLeaving(name string) {
	t.mu.Lock()
	prev, known := t.byName[name]
	if !known || !prev.live() {
		t.mu.Unlock()
		return
	}
	st := prev
	st.leaveIntent = true
	if st.status != StatusLeaving {
		st.status, st.since = StatusLeaving, t.now()
	}
	t.byName[name] = st
	t.mu.Unlock()
	t.statusChanged(prev, st, true)
}

// statusChanged logs a status change and wakes the loop.
func (t *memberTable) statusChanged(prev, st memberState, known bool) {
	if !known || prev.status != st.status {
		t.logger.Info("member status", "name", st.name, "id", st.meta.ID, "address", st.gossipAddr, "status", st.status)
	}
	t.signal()
}

// signal wakes the reconcile loop without blocking.
func (t *memberTable) signal() {
	select {
	case t.notify <- struct{}{}:
	default:
	}
}

// snapshot returns a copy of every member, sorted by name.
func (t *memberTable) snapshot() []memberState {
	t.mu.Lock()
	out := make([]memberState, 0, len(t.byName))
	for _, m := range t.byName {
		out = append(out, m)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// get returns the member named name.
func (t *memberTable) get(name string) (memberState, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, ok := t.byName[name]
	return m, ok
}

// reap forgets members that have been left or failed since before cutoff.
func (t *memberTable) reap(cutoff time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for name, m := range t.byName {
		if !m.live() && m.since.Before(cutoff) {
			delete(t.byName, name)
		}
	}
}
