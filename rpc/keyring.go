package rpc

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/chainstore/chainstore/acl"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/cluster"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Keyring is this server's gossip keyring as the keyring RPCs see it
// (the server package adapts cluster.Cluster: each change is applied to
// memberlist and persisted in the data dir).
type Keyring interface {
	Keys() []string
	Change(op cluster.KeyringOp, key string) error
}

// ServicesOption is an optional collaborator of NewServices.
type ServicesOption func(*Services)

// WithKeyring gives the operator service this server's gossip keyring;
// without it the keyring calls fail with FailedPrecondition.
func WithKeyring(k Keyring) ServicesOption {
	return func(s *Services) { s.operator.keyring = k }
}

// keyringLocalHeader marks a keyring call one server fanned out to
// another: the receiver applies it to its own keyring only.
const keyringLocalHeader = "chainstore-keyring-local"

// keyringFanoutTimeout bounds the call to one server in a fan-out.
const keyringFanoutTimeout = 10 * time.Second

// Why the keyring calls fan out instead of going through Raft: the
// keyring must work before Raft does (a server needs the key to join
// gossip at all, and a restarted server reads it from its data dir
// before it can hear from a leader), and a key in the Raft log would sit
// in every snapshot. So, as in Consul, each server keeps its own keyring
// and the server reached applies the change on every live member,
// reporting each member's result; a server that was down catches up
// when an operator repeats the call (install and use are idempotent).

// keyringResult is the answer of every keyring call: one result per
// server, and how many failed or were skipped.
type keyringResult struct {
	nodes  []*chainstorev1.KeyringNodeResult
	failed int32
}

// remoteKeyring makes the same keyring call on another server.
type remoteKeyring func(context.Context, chainstorev1.OperatorServiceClient) (keyringResult, error)

// KeyringList implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) KeyringList(ctx context.Context, _ *chainstorev1.KeyringListRequest) (*chainstorev1.KeyringListResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
		return nil, s.router.status(err)
	}
	r, err := s.keyringCall(ctx, 0, "", func(ctx context.Context, c chainstorev1.OperatorServiceClient) (keyringResult, error) {
		resp, err := c.KeyringList(ctx, &chainstorev1.KeyringListRequest{})
		return keyringResult{resp.GetNodes(), resp.GetFailed()}, err
	})
	if err != nil {
		return nil, err
	}
	return &chainstorev1.KeyringListResponse{Nodes: r.nodes, Failed: r.failed}, nil
}

// KeyringInstall implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) KeyringInstall(ctx context.Context, req *chainstorev1.KeyringInstallRequest) (*chainstorev1.KeyringInstallResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
		return nil, s.router.status(err)
	}
	r, err := s.keyringChange(ctx, cluster.KeyInstall, req.GetKey(), func(ctx context.Context, c chainstorev1.OperatorServiceClient) (keyringResult, error) {
		resp, err := c.KeyringInstall(ctx, req)
		return keyringResult{resp.GetNodes(), resp.GetFailed()}, err
	})
	if err != nil {
		return nil, err
	}
	return &chainstorev1.KeyringInstallResponse{Nodes: r.nodes, Failed: r.failed}, nil
}

// KeyringUse implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) KeyringUse(ctx context.Context, req *chainstorev1.KeyringUseRequest) (*chainstorev1.KeyringUseResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
		return nil, s.router.status(err)
	}
	r, err := s.keyringChange(ctx, cluster.KeyUse, req.GetKey(), func(ctx context.Context, c chainstorev1.OperatorServiceClient) (keyringResult, error) {
		resp, err := c.KeyringUse(ctx, req)
		return keyringResult{resp.GetNodes(), resp.GetFailed()}, err
	})
	if err != nil {
		return nil, err
	}
	return &chainstorev1.KeyringUseResponse{Nodes: r.nodes, Failed: r.failed}, nil
}

// KeyringRemove implements chainstorev1.OperatorServiceServer.
func (s *OperatorServer) KeyringRemove(ctx context.Context, req *chainstorev1.KeyringRemoveRequest) (*chainstorev1.KeyringRemoveResponse, error) {
	if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
		return nil, s.router.status(err)
	}
	r, err := s.keyringChange(ctx, cluster.KeyRemove, req.GetKey(), func(ctx context.Context, c chainstorev1.OperatorServiceClient) (keyringResult, error) {
		resp, err := c.KeyringRemove(ctx, req)
		return keyringResult{resp.GetNodes(), resp.GetFailed()}, err
	})
	if err != nil {
		return nil, err
	}
	return &chainstorev1.KeyringRemoveResponse{Nodes: r.nodes, Failed: r.failed}, nil
}

// keyringChange validates key, then runs keyringCall.
func (s *OperatorServer) keyringChange(ctx context.Context, op cluster.KeyringOp, key string, remote remoteKeyring) (keyringResult, error) {
	if _, err := cluster.DecodeKey(key); err != nil {
		return keyringResult{}, status.Error(codes.InvalidArgument, err.Error())
	}
	return s.keyringCall(ctx, op, key, remote)
}

// keyringCall applies op (0: list) here when the call was fanned out to
// this server, and otherwise on every live member that is a server of the
// Raft configuration, through remote; other live members are reported as
// skipped (and count as failed).
func (s *OperatorServer) keyringCall(ctx context.Context, op cluster.KeyringOp, key string, remote remoteKeyring) (keyringResult, error) {
	if s.keyring == nil {
		return keyringResult{}, status.Error(codes.FailedPrecondition, "this server has no gossip keyring")
	}
	if v := metadata.ValueFromIncomingContext(ctx, keyringLocalHeader); len(v) > 0 {
		res := s.keyringLocal(op, key)
		return keyringResult{nodes: []*chainstorev1.KeyringNodeResult{res}, failed: failed(res)}, nil
	}
	var (
		mu  sync.Mutex
		out keyringResult
		wg  sync.WaitGroup
	)
	add := func(r *chainstorev1.KeyringNodeResult) {
		mu.Lock()
		defer mu.Unlock()
		out.nodes = append(out.nodes, r)
		out.failed += failed(r)
	}
	// Only servers in the Raft configuration at the Raft address they
	// gossip are sent the call: a gossip member that is not one (an
	// impostor holding a leaked key, say) must not receive the next key.
	raftAddr := map[string]string{}
	if servers, err := s.router.raft.Servers(); err == nil {
		for _, srv := range servers {
			raftAddr[srv.ID] = srv.Address
		}
	}
	for _, m := range s.router.members.Members() {
		switch {
		case m.Status != cluster.StatusAlive && m.Status != cluster.StatusLeaving:
			continue
		case m.ID == s.router.cfg.NodeID && m.Name == s.router.cfg.NodeName:
			add(s.keyringLocal(op, key))
		case m.ID == "" || raftAddr[m.ID] != m.RaftAddr:
			add(&chainstorev1.KeyringNodeResult{Node: m.Name, Error: "skipped: not a server of the Raft configuration at its gossiped address"})
		default:
			wg.Go(func() { add(s.keyringRemote(ctx, m, remote)) })
		}
	}
	wg.Wait()
	sort.Slice(out.nodes, func(i, j int) bool { return out.nodes[i].GetNode() < out.nodes[j].GetNode() })
	return out, nil
}

func (s *OperatorServer) keyringLocal(op cluster.KeyringOp, key string) *chainstorev1.KeyringNodeResult {
	res := &chainstorev1.KeyringNodeResult{Node: s.router.cfg.NodeName}
	if op == 0 {
		res.Keys = s.keyring.Keys()
		return res
	}
	if err := s.keyring.Change(op, key); err != nil {
		res.Error = err.Error()
	}
	return res
}

func (s *OperatorServer) keyringRemote(ctx context.Context, m cluster.Member, remote remoteKeyring) *chainstorev1.KeyringNodeResult {
	res := &chainstorev1.KeyringNodeResult{Node: m.Name}
	ctx, cancel := context.WithTimeout(ctx, keyringFanoutTimeout)
	defer cancel()
	conn, err := s.router.fwd.readyConn(ctx, m.GRPCAddr)
	if err == nil {
		// The receiving server checks the caller's token itself.
		ctx = metadata.AppendToOutgoingContext(withForwardedToken(ctx), keyringLocalHeader, s.router.cfg.NodeName)
		var out keyringResult
		out, err = remote(ctx, chainstorev1.NewOperatorServiceClient(conn))
		if err == nil && len(out.nodes) != 1 {
			err = errors.New("unexpected keyring answer")
		}
		if err == nil {
			r := out.nodes[0]
			r.Node = m.Name
			return r
		}
	}
	res.Error = status.Convert(err).Message()
	return res
}

func failed(r *chainstorev1.KeyringNodeResult) int32 {
	if r.GetError() != "" {
		return 1
	}
	return 0
}
