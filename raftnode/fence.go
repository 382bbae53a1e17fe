package raftnode

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"
)

// The vote fence (docs/recovery.md, "Why a node that lost its log must not
// vote").
//
// When CheckDataDir discards a log that no longer continues the newest
// usable snapshot, the node keeps its ID, its current term and the vote it
// cast in that term (they live in the stable store, which is kept), so it
// can never vote twice in one term. But its log is now shorter than it was,
// and Raft's election restriction (a voter grants only to a candidate whose
// log is at least as up to date as its own) assumes logs never lose
// committed entries. Example: A, B, C; entry X committed on A and C; C loses
// its log; B, which lacks X, asks C for a vote; C (now with an empty log)
// grants it, B wins with B+C, and X is lost. So a fenced node, until its log
// reaches the last index it had before the discard (the fence):
//
//   - refuses every RequestVote and RequestPreVote it receives (answering
//     "not granted" in the requester's term, so nobody steps down);
//   - sends no RequestVote or RequestPreVote itself (they fail locally), so
//     it can never collect a quorum; with pre-vote on (the default) it does
//     not even raise its term, so it cannot disturb the leader;
//   - ignores TimeoutNow (a leadership transfer to it).
//
// Once its last index reaches the fence it has received, from a legitimate
// leader, a log prefix that holds every entry committed up to the fence
// (leader completeness), so it is at least as up to date as before the
// discard; the fence is then cleared, also in the stable store.
//
// A single-server cluster has no one to catch up from: its fenced node would
// never elect itself, so for one voter the fence is not set (the older
// snapshot is all the data there is; docs/recovery.md says so).

// fencedTransport wraps the NetworkTransport to enforce the vote fence.
type fencedTransport struct {
	*raft.NetworkTransport

	fence     atomic.Uint64             // 0: not fenced
	raft      atomic.Pointer[raft.Raft] // whose LastIndex is checked; nil until set
	clear     func() error              // persists the cleared fence
	consumer  chan raft.RPC             // what Raft reads
	onClear   sync.Once
	done      chan struct{} // closed by Close: ends forwardLoop
	closeOnce sync.Once
	wg        sync.WaitGroup // forwardLoop
}

var errVoteFenced = errors.New("raftnode: vote fenced until this node has caught up after discarding its log")

func newFencedTransport(t *raft.NetworkTransport, fence uint64, persistLift func() error) *fencedTransport {
	f := &fencedTransport{
		NetworkTransport: t,
		clear:            persistLift,
		consumer:         make(chan raft.RPC),
		done:             make(chan struct{}),
	}
	f.fence.Store(fence)
	f.wg.Add(1)
	go f.forwardLoop()
	return f
}

// setRaft gives the transport the Raft instance whose LastIndex it checks.
func (f *fencedTransport) setRaft(r *raft.Raft) { f.raft.Store(r) }

// fenced reports whether the fence still holds, clearing it once the log
// has caught up.
func (f *fencedTransport) fenced() bool {
	fence := f.fence.Load()
	if fence == 0 {
		return false
	}
	r := f.raft.Load()
	if r == nil || r.LastIndex() < fence {
		return true
	}
	f.lift()
	return false
}

// lift clears the fence, in memory and in the stable store.
func (f *fencedTransport) lift() {
	f.onClear.Do(func() {
		f.fence.Store(0)
		if f.clear != nil {
			_ = f.clear()
		}
	})
}

// Consumer is what Raft reads inbound RPCs from.
func (f *fencedTransport) Consumer() <-chan raft.RPC { return f.consumer }

// forwardLoop passes inbound RPCs to Raft, answering vote requests itself
// while fenced. It owns nothing but the two channels; it stops when Close
// is called.
func (f *fencedTransport) forwardLoop() {
	defer f.wg.Done()
	in := f.NetworkTransport.Consumer()
	for {
		select {
		case <-f.done:
			return
		case rpc := <-in:
			if f.fence.Load() != 0 && f.refuse(rpc) {
				continue
			}
			select {
			case f.consumer <- rpc:
			case <-f.done:
				return
			}
		}
	}
}

// refuse answers rpc itself if it is a vote (or a leadership transfer)
// that the fence forbids.
func (f *fencedTransport) refuse(rpc raft.RPC) bool {
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		if !f.fenced() {
			return false
		}
		rpc.Respond(&raft.RequestVoteResponse{RPCHeader: f.header(), Term: req.Term, Granted: false}, nil)
	case *raft.RequestPreVoteRequest:
		if !f.fenced() {
			return false
		}
		rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: f.header(), Term: req.Term, Granted: false}, nil)
	case *raft.TimeoutNowRequest:
		if !f.fenced() {
			return false
		}
		rpc.Respond(nil, errVoteFenced)
	default:
		return false
	}
	return true
}

func (f *fencedTransport) header() raft.RPCHeader {
	return raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, Addr: f.EncodePeer("", f.LocalAddr())}
}

// RequestVote fails locally while fenced.
func (f *fencedTransport) RequestVote(id raft.ServerID, target raft.ServerAddress,
	args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse,
) error {
	if f.fenced() {
		return fmt.Errorf("request vote from %s: %w", id, errVoteFenced)
	}
	return f.NetworkTransport.RequestVote(id, target, args, resp)
}

// RequestPreVote fails locally while fenced.
func (f *fencedTransport) RequestPreVote(id raft.ServerID, target raft.ServerAddress,
	args *raft.RequestPreVoteRequest, resp *raft.RequestPreVoteResponse,
) error {
	if f.fenced() {
		return fmt.Errorf("request pre-vote from %s: %w", id, errVoteFenced)
	}
	return f.NetworkTransport.RequestPreVote(id, target, args, resp)
}

// Close stops forwardLoop and closes the network transport.
func (f *fencedTransport) Close() error {
	f.closeOnce.Do(func() { close(f.done) })
	err := f.NetworkTransport.Close()
	f.wg.Wait()
	return err
}

// liftFenceIfAlone clears the vote fence when this node is the only voter
// of its configuration: there is no one to catch up from (see above).
func (n *Node) liftFenceIfAlone() {
	conf := n.raft.GetConfiguration()
	if conf.Error() != nil {
		return
	}
	voters := 0
	self := false
	for _, s := range conf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
			self = self || string(s.ID) == n.cfg.NodeID
		}
	}
	if voters == 1 && self {
		n.logger.Warn("lifting the vote fence: this node is the only voter, there is no one to catch up from")
		n.fence.lift()
	}
}

// VoteFenced reports whether this node is fenced from elections after
// discarding its log (fence.go).
func (n *Node) VoteFenced() bool { return n.fence != nil && n.fence.fenced() }
