package httpapi

import (
	"fmt"
	"net/http"
	"sync"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
)

// statusLeader is GET /v1/status/leader: the Raft address of the leader
// this server knows, as a JSON string ("" when none), as Consul answers.
func (s *Server) statusLeader(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	resp, err := s.backend.Peers(requestContext(r), &chainstorev1.PeersRequest{})
	if err != nil {
		return err
	}
	leader := ""
	for _, p := range resp.GetPeers() {
		if p.GetLeader() {
			leader = p.GetAddress()
		}
	}
	return writeJSON(w, leader)
}

// statusPeers is GET /v1/status/peers: the Raft addresses of the voters
// and non-voters in this server's Raft configuration.
func (s *Server) statusPeers(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	resp, err := s.backend.Peers(requestContext(r), &chainstorev1.PeersRequest{})
	if err != nil {
		return err
	}
	out := make([]string, 0, len(resp.GetPeers()))
	for _, p := range resp.GetPeers() {
		out = append(out, p.GetAddress())
	}
	return writeJSON(w, out)
}

// live is GET /v1/agent/health/live: 200 while the process serves HTTP.
func (s *Server) live(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, map[string]string{"Status": "alive"})
}

// RaftStats is what readiness reads of this server's Raft node
// (*raftnode.Node).
type RaftStats interface {
	Stats() raftnode.Stats
}

var _ RaftStats = (*raftnode.Node)(nil)

// readiness remembers the commit index a server must apply before it is
// ready.
type readiness struct {
	raft RaftStats

	mu     sync.Mutex // protects target and set
	target uint64
	set    bool
}

// ready is GET /v1/agent/health/ready: 200 once this server knows a
// leader and Raft has applied everything up to the commit index it had
// learned from the leader when it first saw one (the first call that sees
// a leader records that index); 503 with the reason otherwise (no leader,
// or still catching up). Without a RaftStats (New's raft argument) it
// answers 503.
func (s *Server) ready(w http.ResponseWriter, _ *http.Request) error {
	if s.readiness.raft == nil {
		return &httpError{code: http.StatusServiceUnavailable, msg: "not ready: readiness is not wired to a Raft node"}
	}
	st := s.readiness.raft.Stats()
	if st.LeaderID == "" {
		return &httpError{code: http.StatusServiceUnavailable, msg: "not ready: no leader known"}
	}
	s.readiness.mu.Lock()
	if !s.readiness.set && st.CommitIndex > 0 {
		s.readiness.target, s.readiness.set = st.CommitIndex, true
	}
	target, set := s.readiness.target, s.readiness.set
	s.readiness.mu.Unlock()
	if !set {
		return &httpError{code: http.StatusServiceUnavailable, msg: "not ready: no commit index learned from the leader yet"}
	}
	if st.AppliedIndex < target {
		return &httpError{code: http.StatusServiceUnavailable,
			msg: fmt.Sprintf("not ready: applied index %d is behind the leader's commit index %d", st.AppliedIndex, target)}
	}
	return writeJSON(w, map[string]any{
		"Status": "ready", "Leader": st.LeaderAddr, "CommitIndex": st.CommitIndex,
		"AppliedIndex": st.AppliedIndex, "ReadyAt": target,
	})
}
