package rpc

import (
	"context"
	"fmt"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chainstore/chainstore/acl"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/version"
	"github.com/chainstore/chainstore/xdsserver"
)

// XDS is what the operator service reads of this server's xDS server
// (*xdsserver.Server): its ADS streams and the chains it publishes.
type XDS interface {
	Clients() []xdsserver.ClientStatus
	Chains() []xdsserver.ChainStatus
}

var _ XDS = (*xdsserver.Server)(nil)

// OperatorServer implements chainstorev1.OperatorServiceServer: every
// call is answered by this server from its own view of the cluster.
type OperatorServer struct {
	chainstorev1.UnimplementedOperatorServiceServer

	router *router
	// xds is this server's xDS server; nil if it serves none.
	xds XDS
	// snap serialises snapshot restores (snapshot.go).
	snap snapshotOps
	// keyring is this server's gossip keyring (WithKeyring); nil if none.
	keyring Keyring
}

var _ chainstorev1.OperatorServiceServer = (*OperatorServer)(nil)

// Members implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) Members(ctx context.Context, _ *chainstorev1.MembersRequest) (*chainstorev1.MembersResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorRead); err != nil {
		return nil, s.router.status(err)
	}
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
func (s *OperatorServer) Peers(ctx context.Context, _ *chainstorev1.PeersRequest) (*chainstorev1.PeersResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorRead); err != nil {
		return nil, s.router.status(err)
	}
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
func (s *OperatorServer) Status(ctx context.Context, _ *chainstorev1.StatusRequest) (*chainstorev1.StatusResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorRead); err != nil {
		return nil, s.router.status(err)
	}
	st := s.router.raft.Stats()
	leaderID, leaderRaftAddr := s.router.raft.Leader()
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
		// ServerVersion is the stamped version of this binary.
		ServerVersion: version.String(),
	}
	if leaderID != "" {
		resp.Leader = s.router.memberNames()[leaderID]
		if leaderID == s.router.cfg.NodeID {
			resp.Leader = s.router.cfg.NodeName
		}
		resp.LeaderGrpcAddr, _ = s.router.members.ServerGRPCAddr(leaderID, leaderRaftAddr)
	}
	return resp, nil
}

// XdsClients implements chainstorev1.OperatorServiceServer: the ADS
// streams of this server's xDS server, in xdsserver.Server.Clients order.
func (s *OperatorServer) XdsClients(ctx context.Context, _ *chainstorev1.XdsClientsRequest) (*chainstorev1.XdsClientsResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorRead); err != nil {
		return nil, s.router.status(err)
	}
	resp := &chainstorev1.XdsClientsResponse{Meta: s.router.meta(s.router.fsm.AppliedIndex())}
	if s.xds == nil {
		return resp, nil
	}
	cs := s.xds.Clients()
	resp.Clients = make([]*chainstorev1.XdsClient, 0, len(cs))
	for _, c := range cs {
		out := &chainstorev1.XdsClient{
			NodeId: c.NodeID, UserAgent: c.UserAgent, Peer: c.Peer, StreamId: c.StreamID, Delta: c.Delta,
			ConnectedSince: timestamp(c.ConnectedSince), Refused: c.Refused,
			Types: make([]*chainstorev1.XdsTypeStatus, 0, len(c.Types)),
		}
		for _, t := range c.Types {
			out.Types = append(out.Types, &chainstorev1.XdsTypeStatus{
				TypeUrl: t.TypeURL, Names: t.Names,
				SentVersion: t.Sent, SentAt: timestamp(t.SentAt),
				AckedVersion: t.Acked, AckedAt: timestamp(t.AckedAt),
				Nacks: t.NACKs, LastNackError: t.LastNACK, LastNackVersion: t.LastNACKVersion, LastNackAt: timestamp(t.LastNACKAt),
			})
		}
		resp.Clients = append(resp.Clients, out)
	}
	return resp, nil
}

// XdsChains implements chainstorev1.OperatorServiceServer: the chains
// this server's xDS server follows, sorted by service.
func (s *OperatorServer) XdsChains(ctx context.Context, _ *chainstorev1.XdsChainsRequest) (*chainstorev1.XdsChainsResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorRead); err != nil {
		return nil, s.router.status(err)
	}
	resp := &chainstorev1.XdsChainsResponse{Meta: s.router.meta(s.router.fsm.AppliedIndex())}
	if s.xds == nil {
		return resp, nil
	}
	cs := s.xds.Chains()
	resp.Chains = make([]*chainstorev1.XdsChain, 0, len(cs))
	for _, c := range cs {
		resp.Chains = append(resp.Chains, &chainstorev1.XdsChain{
			Service: c.Name, Index: c.Index, Hash: c.Hash, PublishedHash: c.PublishedHash,
			Error: c.Error, Warnings: c.Warnings, Services: c.Services, Updated: timestamp(c.Updated),
		})
	}
	return resp, nil
}

// timestamp converts t, nil for the zero time.
func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
