package rpc

import (
	"context"
	"fmt"
	"sort"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// OperatorServer implements chainstorev1.OperatorServiceServer: every
// call is answered by this server from its own view of the cluster.
type OperatorServer struct {
	chainstorev1.UnimplementedOperatorServiceServer

	router *router
}

var _ chainstorev1.OperatorServiceServer = (*OperatorServer)(nil)

// Members implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) Members(_ context.Context, _ *chainstorev1.MembersRequest) (*chainstorev1.MembersResponse, error) {
	ms := s.router.members.Members()
	resp := &chainstorev1.MembersResponse{Meta: s.router.meta(s.router.fsm.AppliedIndex()), Members: make([]*chainstorev1.Member, 0, len(ms))}
	for _, m := range ms {
		resp.Members = append(resp.Members, &chainstorev1.Member{
			Name: m.Name, Id: m.ID, Datacenter: m.Datacenter, GossipAddr: m.GossipAddr,
			RaftAddr: m.RaftAddr, GrpcAddr: m.GRPCAddr, Status: fmt.Sprint(m.Status),
		})
	}
	sort.Slice(resp.Members, func(i, j int) bool { return resp.Members[i].Name < resp.Members[j].Name })
	return resp, nil
}

// Peers implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) Peers(_ context.Context, _ *chainstorev1.PeersRequest) (*chainstorev1.PeersResponse, error) {
	servers, err := s.router.raft.Servers()
	if err != nil {
		return nil, s.router.status(fmt.Errorf("read raft configuration: %w", err))
	}
	leaderID, _ := s.router.raft.Leader()
	names := s.router.memberNames()
	resp := &chainstorev1.PeersResponse{Meta: s.router.meta(s.router.fsm.AppliedIndex()), Peers: make([]*chainstorev1.Peer, 0, len(servers))}
	for _, srv := range servers {
		resp.Peers = append(resp.Peers, &chainstorev1.Peer{
			Id: srv.ID, Name: names[srv.ID], Address: srv.Address,
			Leader: srv.ID == leaderID, Voter: srv.Voter,
		})
	}
	sort.Slice(resp.Peers, func(i, j int) bool {
		a, b := resp.Peers[i], resp.Peers[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Id < b.Id
	})
	return resp, nil
}

// Status implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) Status(_ context.Context, _ *chainstorev1.StatusRequest) (*chainstorev1.StatusResponse, error) {
	st := s.router.raft.Stats()
	leaderID, _ := s.router.raft.Leader()
	resp := &chainstorev1.StatusResponse{
		Node:         s.router.cfg.NodeName,
		NodeId:       s.router.cfg.NodeID,
		Datacenter:   s.router.cfg.Datacenter,
		State:        fmt.Sprint(st.State),
		IsLeader:     s.router.raft.IsLeader(),
		LeaderId:     leaderID,
		Term:         st.Term,
		CommitIndex:  st.CommitIndex,
		AppliedIndex: s.router.fsm.AppliedIndex(),
		LastLogIndex: st.LastLogIndex,
		Meta:         s.router.meta(s.router.fsm.AppliedIndex()),
	}
	if leaderID != "" {
		resp.Leader = s.router.memberNames()[leaderID]
		if leaderID == s.router.cfg.NodeID {
			resp.Leader = s.router.cfg.NodeName
		}
		resp.LeaderGrpcAddr, _ = s.router.members.GRPCAddrOf(leaderID)
	}
	return resp, nil
}
