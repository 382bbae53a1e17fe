package raftnode

import (
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/testutil"
)

// TestCommitNudgeDeliversIsolatedWrite: with CommitTimeout far beyond the
// wait, the idle-leader tick cannot tell the followers about an isolated
// write, and heartbeats never carry the commit index, so only the commit
// nudge can get the entry applied on both followers within the wait.
// (Run with DisableCommitNudge set and this test fails.)
func TestCommitNudgeDeliversIsolatedWrite(t *testing.T) {
	t.Parallel()
	const tick = time.Minute
	c := newTestCluster(t, 3, func(c *Config) { c.CommitTimeout = tick }, testHooks{})
	l := c.waitReadyLeader()
	for i, kv := range []string{"a", "b", "c"} {
		idx := c.apply(kv, kv)
		for _, f := range c.followers(l) {
			testutil.Poll(t, waitTimeout, "follower "+f.cfg.NodeID+" applies write "+kv, func() bool {
				return f.fsm.appliedIndex() >= idx
			})
		}
		if got := l.node.nudge.nudgesSent(); got < uint64(i+1) {
			t.Fatalf("leader sent %d accepted nudges after %d writes, want at least %d", got, i+1, i+1)
		}
	}
}

// TestNudgeRequestShape pins the request the safety argument (nudge.go)
// rests on: no entries, and PrevLogEntry equal to LeaderCommitIndex.
func TestNudgeRequestShape(t *testing.T) {
	t.Parallel()
	h := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("l"), Addr: []byte("l:1")}
	req := nudgeRequest(h, 7, 42, 5)
	if req.Term != 7 || req.PrevLogEntry != 42 || req.PrevLogTerm != 5 || req.LeaderCommitIndex != 42 || len(req.Entries) != 0 {
		t.Fatalf("nudgeRequest(term 7, index 42, entry term 5) = %+v, want Term 7, PrevLogEntry 42, PrevLogTerm 5, LeaderCommitIndex 42, no entries", req)
	}
}

// recordFSM records the highest index applied.
type recordFSM struct {
	mu   sync.Mutex
	last uint64
}

func (f *recordFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = max(f.last, l.Index)
	return nil
}

func (f *recordFSM) lastApplied() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func (f *recordFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, raft.ErrNothingNewToSnapshot }

func (f *recordFSM) Restore(rc io.ReadCloser) error { return rc.Close() }

// TestCommitNudgeNeverCommitsDivergentTail builds a follower whose log has
// an uncommitted tail (4, 5 of term 1) that the leader's log does not share
// (the leader has 4 of term 2; 1..3 are committed and common), and drives a
// real nudger at it over an in-memory transport:
//   - a nudge for committed 3 makes it commit exactly 3, not its tail;
//   - a nudge for 4 (the leader's term-2 entry) is refused;
//   - a nudge from an earlier term is refused;
//   - control: an AppendEntries whose PrevLogEntry is below its
//     LeaderCommitIndex (the shape nudgeRequest never builds) does commit the
//     divergent entry 4, so this test would see an unsafe nudge.
func TestCommitNudgeNeverCommitsDivergentTail(t *testing.T) {
	t.Parallel()
	fAddr, fTrans := raft.NewInmemTransport("follower")
	lAddr, lTrans := raft.NewInmemTransport("leader")
	lTrans.Connect(fAddr, fTrans)
	conf := raft.Configuration{Servers: []raft.Server{
		{Suffrage: raft.Voter, ID: "f", Address: fAddr},
		{Suffrage: raft.Voter, ID: "l", Address: lAddr},
	}}

	entries := func(last uint64, termOf func(uint64) uint64) []*raft.Log {
		logs := []*raft.Log{{Index: 1, Term: 1, Type: raft.LogConfiguration, Data: raft.EncodeConfiguration(conf)}}
		for i := uint64(2); i <= last; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: termOf(i), Type: raft.LogCommand, Data: []byte{byte(i)}})
		}
		return logs
	}
	fLogs := raft.NewInmemStore()
	if err := fLogs.StoreLogs(entries(5, func(uint64) uint64 { return 1 })); err != nil {
		t.Fatal(err)
	}
	if err := fLogs.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	lLogs := raft.NewInmemStore()
	if err := lLogs.StoreLogs(entries(4, func(i uint64) uint64 { return map[bool]uint64{true: 2, false: 1}[i == 4] })); err != nil {
		t.Fatal(err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = "f"
	rc.HeartbeatTimeout, rc.ElectionTimeout = time.Minute, time.Minute // never campaigns during the test
	rc.Logger = hclog.NewNullLogger()
	fsm := &recordFSM{}
	r, err := raft.NewRaft(rc, fsm, fLogs, fLogs, raft.NewInmemSnapshotStore(), fTrans)
	if err != nil {
		t.Fatalf("NewRaft: %v", err)
	}
	t.Cleanup(func() { _ = r.Shutdown().Error() })

	n := &nudger{logs: lLogs, send: lTrans, logger: hclog.NewNullLogger(), peers: map[raft.ServerID]*nudgePeer{}}
	t.Cleanup(func() { _ = n.close() })
	header := raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("l"), Addr: lTrans.EncodePeer("l", lAddr)}
	// The library's replication in term 2 got a success matching up to 3.
	n.observe("f", fAddr,
		&raft.AppendEntriesRequest{RPCHeader: header, Term: 2, PrevLogEntry: 3},
		&raft.AppendEntriesResponse{Term: 2, Success: true})

	// 4 is applied on the leader but the follower is not known to hold it:
	// the nudge is for 3, what the follower is known to match.
	n.applied(4, 4)
	testutil.Poll(t, waitTimeout, "the follower accepts the nudge", func() bool { return n.nudgesSent() == 1 })
	if got := r.CommitIndex(); got != 3 {
		t.Fatalf("follower commit index after a nudge for 3 = %d, want 3 (its tail 4, 5 is not the leader's)", got)
	}
	testutil.Poll(t, waitTimeout, "the follower applies 3", func() bool { return fsm.lastApplied() == 3 })

	send := func(req *raft.AppendEntriesRequest) *raft.AppendEntriesResponse {
		t.Helper()
		var resp raft.AppendEntriesResponse
		if err := lTrans.AppendEntries("f", fAddr, req, &resp); err != nil {
			t.Fatalf("AppendEntries: %v", err)
		}
		return &resp
	}
	if resp := send(nudgeRequest(header, 2, 4, 2)); resp.Success {
		t.Fatalf("nudge for the leader's entry 4 (term 2) accepted by a follower whose 4 is term 1")
	}
	if resp := send(nudgeRequest(header, 1, 3, 1)); resp.Success || resp.Term != 2 {
		t.Fatalf("nudge from term 1 answered %+v, want a refusal in term 2", resp)
	}
	if got := r.CommitIndex(); got != 3 {
		t.Fatalf("follower commit index after refused nudges = %d, want 3", got)
	}

	// Control: the unsafe shape commits the divergent entry.
	send(&raft.AppendEntriesRequest{RPCHeader: header, Term: 2, PrevLogEntry: 3, PrevLogTerm: 1, LeaderCommitIndex: 4})
	if got := r.CommitIndex(); got != 4 {
		t.Fatalf("control: commit index after PrevLogEntry 3 < LeaderCommitIndex 4 = %d, want 4", got)
	}
}
