package rpc

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cluster"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/rpc/configpb"
)

// EntriesRaft is what the entries service needs from raftnode.Node.
type EntriesRaft interface {
	Apply(ctx context.Context, cmd []byte) (resp any, index uint64, err error)
	ReadIndex(ctx context.Context) (uint64, error)
	IsLeader() bool
	Leader() (id, addr string)
	Servers() ([]raftnode.Server, error)
	Stats() raftnode.Stats
}

// EntriesFSM is what the entries service needs from fsm.FSM.
type EntriesFSM interface {
	Store() *fsm.Store
	AppliedIndex() uint64
	WaitForIndex(ctx context.Context, idx uint64) error
}

// EntriesCluster is what the entries service needs from cluster.Cluster.
type EntriesCluster interface {
	Members() []cluster.Member
	GRPCAddrOf(nodeID string) (string, bool)
}

var (
	_ EntriesRaft    = (*raftnode.Node)(nil)
	_ EntriesFSM     = (*fsm.FSM)(nil)
	_ EntriesCluster = (*cluster.Cluster)(nil)
)

// EntriesServer implements configpb.EntriesServiceServer on top of a Raft
// node, its FSM and the gossip cluster. See doc.go for the request paths.
type EntriesServer struct {
	configpb.UnimplementedEntriesServiceServer

	cfg     ServerConfig
	raft    EntriesRaft
	fsm     EntriesFSM
	members EntriesCluster
	logger  hclog.Logger
	fwd     *forwarder

	closeOnce  sync.Once
	shutdownCh chan struct{} // closed by Close: blocked queries return, retries stop
	blocked    atomic.Int64  // blocking queries currently waiting
}

var _ configpb.EntriesServiceServer = (*EntriesServer)(nil)

// NewEntriesServer returns the entries service. Register it on a server
// made by NewGRPCServer, and Close it when the gRPC server has stopped (or
// before GracefulStop, to release blocked queries).
func NewEntriesServer(cfg ServerConfig, r EntriesRaft, f EntriesFSM, c EntriesCluster, logger hclog.Logger) (*EntriesServer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid rpc config: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &EntriesServer{
		cfg:        cfg,
		raft:       r,
		fsm:        f,
		members:    c,
		logger:     logger.Named("rpc"),
		fwd:        newForwarder(cfg.ForwardConnectTimeout, cfg.MaxRecvMsgSize),
		shutdownCh: make(chan struct{}),
	}, nil
}

// Close makes blocked queries return their current result, stops
// forwarding retries and closes the connections to the leader. It is
// idempotent.
func (s *EntriesServer) Close() error {
	s.closeOnce.Do(func() {
		close(s.shutdownCh)
		s.fwd.close()
	})
	return nil
}

// Apply implements configpb.EntriesServiceServer.
func (s *EntriesServer) Apply(ctx context.Context, req *configpb.ApplyRequest) (*configpb.ApplyResponse, error) {
	cmd, err := applyRequestCommand(req, s.cfg.MaxEntrySize)
	if err != nil {
		return nil, s.status(err)
	}
	var resp *configpb.ApplyResponse
	err = s.onLeader(ctx, true,
		func(ctx context.Context) error {
			var err error
			resp, err = s.applyLocal(ctx, cmd)
			return err
		},
		func(ctx context.Context, c configpb.EntriesServiceClient) error {
			var err error
			resp, err = c.Apply(ctx, req)
			return err
		})
	if err != nil {
		return nil, s.status(err)
	}
	return resp, nil
}

// applyLocal writes cmd through Raft on this (leader) server, skipping a
// write that would not change the stored entry.
func (s *EntriesServer) applyLocal(ctx context.Context, cmd fsm.Command) (*configpb.ApplyResponse, error) {
	kind, name := string(cmd.Entry.GetKind()), cmd.Entry.GetName()
	if idx, ok := s.unchangedUpsert(ctx, cmd); ok {
		return &configpb.ApplyResponse{Applied: true, Index: idx, Kind: kind, Name: name}, nil
	}
	res, err := s.raftApply(ctx, cmd)
	if err != nil {
		return nil, &entryError{kind: kind, name: name, err: err}
	}
	return &configpb.ApplyResponse{Applied: res.Applied, Index: res.Index, Kind: kind, Name: name}, nil
}

// unchangedUpsert reports whether cmd would store exactly what is stored
// already (and, for CAS, would pass its index check); then the write is
// skipped and the existing ModifyIndex returned. A cheap local check comes
// first; only when it says "unchanged" is it confirmed after a
// linearizable read (ReadIndex + WaitForIndex), which costs one heartbeat
// round instead of a Raft write, and guarantees that no acknowledged
// write is missing from the state compared against.
func (s *EntriesServer) unchangedUpsert(ctx context.Context, cmd fsm.Command) (uint64, bool) {
	check := func() (uint64, bool) {
		stored, _, _ := s.fsm.Store().Get(cmd.Key)
		if stored == nil || !chain.EqualEntries(stored.Entry, cmd.Entry) {
			return 0, false
		}
		if cmd.Op == fsm.OpUpsertCAS && cmd.CASIndex != stored.ModifyIndex {
			return 0, false
		}
		return stored.ModifyIndex, true
	}
	if _, ok := check(); !ok {
		return 0, false
	}
	if err := s.consistentRead(ctx); err != nil {
		return 0, false
	}
	return check()
}

// raftApply encodes and applies cmd and unwraps the FSM's result. A graph
// validation error comes back as the error.
func (s *EntriesServer) raftApply(ctx context.Context, cmd fsm.Command) (fsm.ApplyResult, error) {
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return fsm.ApplyResult{}, fmt.Errorf("encode command: %w", err)
	}
	resp, _, err := s.raft.Apply(ctx, data)
	if err != nil {
		return fsm.ApplyResult{}, err
	}
	var res fsm.ApplyResult
	switch r := resp.(type) {
	case fsm.ApplyResult:
		res = r
	case *fsm.ApplyResult:
		res = *r
	default:
		return fsm.ApplyResult{}, fmt.Errorf("unexpected FSM response %T", resp)
	}
	if res.Err != nil {
		return fsm.ApplyResult{}, res.Err
	}
	return res, nil
}

// Delete implements configpb.EntriesServiceServer.
func (s *EntriesServer) Delete(ctx context.Context, req *configpb.DeleteRequest) (*configpb.DeleteResponse, error) {
	cmd, err := deleteRequestCommand(req)
	if err != nil {
		return nil, s.status(err)
	}
	var resp *configpb.DeleteResponse
	err = s.onLeader(ctx, true,
		func(ctx context.Context) error {
			var err error
			resp, err = s.deleteLocal(ctx, cmd, string(cmd.Key.Kind), req.GetName())
			return err
		},
		func(ctx context.Context, c configpb.EntriesServiceClient) error {
			var err error
			resp, err = c.Delete(ctx, req)
			return err
		})
	if err != nil {
		return nil, s.status(err)
	}
	return resp, nil
}

func (s *EntriesServer) deleteLocal(ctx context.Context, cmd fsm.Command, kind, name string) (*configpb.DeleteResponse, error) {
	// A plain delete of an entry that does not exist changes nothing; as
	// for upserts, the local check is confirmed by a linearizable read.
	if cmd.Op == fsm.OpDelete {
		if stored, _, _ := s.fsm.Store().Get(cmd.Key); stored == nil && s.consistentRead(ctx) == nil {
			if stored, idx, _ := s.fsm.Store().Get(cmd.Key); stored == nil {
				return &configpb.DeleteResponse{Deleted: true, Index: max(idx, 1)}, nil
			}
		}
	}
	res, err := s.raftApply(ctx, cmd)
	if err != nil {
		return nil, &entryError{kind: kind, name: name, err: err}
	}
	return &configpb.DeleteResponse{Deleted: res.Applied, Index: res.Index}, nil
}

// Get implements configpb.EntriesServiceServer.
func (s *EntriesServer) Get(ctx context.Context, req *configpb.GetRequest) (*configpb.GetResponse, error) {
	kind, err := parseKindName(req.GetKind(), req.GetName())
	if err != nil {
		return nil, s.status(err)
	}
	key := chain.KeyOf(kind, req.GetName())
	var resp *configpb.GetResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		return s.blocking(ctx, req.GetOptions(), consistent, func(store *fsm.Store) (uint64, <-chan struct{}, error) {
			stored, idx, watch := store.Get(key)
			r := &configpb.GetResponse{Meta: s.meta(idx)}
			if stored != nil {
				data, err := chain.EncodeEntry(stored.Entry)
				if err != nil {
					return 0, nil, fmt.Errorf("encode entry %s: %w", key, err)
				}
				r.Found, r.Entry, r.CreateIndex, r.ModifyIndex = true, data, stored.CreateIndex, stored.ModifyIndex
			}
			resp = r
			return idx, watch, nil
		})
	}
	remote := func(ctx context.Context, c configpb.EntriesServiceClient) error {
		var err error
		resp, err = c.Get(ctx, req)
		return err
	}
	if err := s.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.status(err)
	}
	return resp, nil
}

// List implements configpb.EntriesServiceServer.
func (s *EntriesServer) List(ctx context.Context, req *configpb.ListRequest) (*configpb.ListResponse, error) {
	kind, err := chain.ParseKind(req.GetKind())
	if err != nil {
		return nil, s.status(err)
	}
	var resp *configpb.ListResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		return s.blocking(ctx, req.GetOptions(), consistent, func(store *fsm.Store) (uint64, <-chan struct{}, error) {
			stored, idx, watch := store.List(kind)
			r := &configpb.ListResponse{Meta: s.meta(idx), Entries: make([]*configpb.StoredEntry, 0, len(stored))}
			for _, se := range stored {
				data, err := chain.EncodeEntry(se.Entry)
				if err != nil {
					return 0, nil, fmt.Errorf("encode entry %s/%s: %w", kind, se.Entry.GetName(), err)
				}
				r.Entries = append(r.Entries, &configpb.StoredEntry{
					Kind: string(se.Entry.GetKind()), Name: se.Entry.GetName(), Entry: data,
					CreateIndex: se.CreateIndex, ModifyIndex: se.ModifyIndex,
				})
			}
			sort.Slice(r.Entries, func(i, j int) bool { return r.Entries[i].Name < r.Entries[j].Name })
			resp = r
			return idx, watch, nil
		})
	}
	remote := func(ctx context.Context, c configpb.EntriesServiceClient) error {
		var err error
		resp, err = c.List(ctx, req)
		return err
	}
	if err := s.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.status(err)
	}
	return resp, nil
}

// read routes a read by its consistency mode:
//   - stale: this server answers from its own state;
//   - default (and unspecified) and consistent: linearizable. The leader
//     answers after a ReadIndex round (leadership confirmed by a quorum,
//     batched with concurrent reads) and after its FSM has applied that
//     index; a follower forwards the read. Unlike Consul, the default mode
//     does not skip the quorum round: a deposed leader that has not
//     noticed yet (paused, or cut off for less than its lease) would
//     otherwise answer with state that misses acknowledged writes.
func (s *EntriesServer) read(ctx context.Context, mode configpb.Consistency,
	local func(context.Context, func(context.Context) error) error,
	remote func(context.Context, configpb.EntriesServiceClient) error) error {
	if mode == configpb.Consistency_CONSISTENCY_STALE {
		return local(ctx, nil)
	}
	return s.onLeader(ctx, false, func(ctx context.Context) error { return local(ctx, s.consistentRead) }, remote)
}

// consistentRead waits until the local state reflects every write
// committed before it was called. It fails with raftnode.ErrNotLeader on
// a follower or a deposed leader.
func (s *EntriesServer) consistentRead(ctx context.Context) error {
	idx, err := s.raft.ReadIndex(ctx)
	if errors.Is(err, raftnode.ErrTimeout) {
		return fmt.Errorf("%w: %w", ErrNoQuorum, err)
	}
	if err != nil {
		return err
	}
	if err := s.fsm.WaitForIndex(ctx, idx); err != nil {
		return fmt.Errorf("wait for applied index %d: %w", idx, err)
	}
	return nil
}

// blocking runs fn as a blocking query with the request's options.
func (s *EntriesServer) blocking(ctx context.Context, opts *configpb.QueryOptions, consistent func(context.Context) error, fn queryFunc) error {
	return blockingQuery(ctx, s.fsm,
		blockingOptions{MinIndex: opts.GetMinIndex(), Wait: opts.GetWait().AsDuration()},
		blockingLimits{defaultWait: s.cfg.DefaultQueryWait, maxWait: s.cfg.MaxQueryWait, shutdownCh: s.shutdownCh, blocked: &s.blocked},
		consistent, fn)
}

// Members implements configpb.EntriesServiceServer.
func (s *EntriesServer) Members(_ context.Context, _ *configpb.MembersRequest) (*configpb.MembersResponse, error) {
	ms := s.members.Members()
	resp := &configpb.MembersResponse{Meta: s.meta(s.fsm.AppliedIndex()), Members: make([]*configpb.Member, 0, len(ms))}
	for _, m := range ms {
		resp.Members = append(resp.Members, &configpb.Member{
			Name: m.Name, Id: m.ID, Datacenter: m.Datacenter, GossipAddr: m.GossipAddr,
			RaftAddr: m.RaftAddr, GrpcAddr: m.GRPCAddr, Status: fmt.Sprint(m.Status),
		})
	}
	sort.Slice(resp.Members, func(i, j int) bool { return resp.Members[i].Name < resp.Members[j].Name })
	return resp, nil
}

// Peers implements configpb.EntriesServiceServer.
func (s *EntriesServer) Peers(_ context.Context, _ *configpb.PeersRequest) (*configpb.PeersResponse, error) {
	servers, err := s.raft.Servers()
	if err != nil {
		return nil, s.status(fmt.Errorf("read raft configuration: %w", err))
	}
	leaderID, _ := s.raft.Leader()
	names := s.memberNames()
	resp := &configpb.PeersResponse{Meta: s.meta(s.fsm.AppliedIndex()), Peers: make([]*configpb.Peer, 0, len(servers))}
	for _, srv := range servers {
		resp.Peers = append(resp.Peers, &configpb.Peer{
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

// Status implements configpb.EntriesServiceServer.
func (s *EntriesServer) Status(_ context.Context, _ *configpb.StatusRequest) (*configpb.StatusResponse, error) {
	st := s.raft.Stats()
	leaderID, _ := s.raft.Leader()
	resp := &configpb.StatusResponse{
		Node:         s.cfg.NodeName,
		NodeId:       s.cfg.NodeID,
		Datacenter:   s.cfg.Datacenter,
		State:        fmt.Sprint(st.State),
		IsLeader:     s.raft.IsLeader(),
		LeaderId:     leaderID,
		Term:         st.Term,
		CommitIndex:  st.CommitIndex,
		AppliedIndex: s.fsm.AppliedIndex(),
		LastLogIndex: st.LastLogIndex,
		Meta:         s.meta(s.fsm.AppliedIndex()),
	}
	if leaderID != "" {
		resp.Leader = s.memberNames()[leaderID]
		if leaderID == s.cfg.NodeID {
			resp.Leader = s.cfg.NodeName
		}
		resp.LeaderGrpcAddr, _ = s.members.GRPCAddrOf(leaderID)
	}
	return resp, nil
}

// memberNames maps Raft server IDs to gossip node names.
func (s *EntriesServer) memberNames() map[string]string {
	names := map[string]string{s.cfg.NodeID: s.cfg.NodeName}
	for _, m := range s.members.Members() {
		names[m.ID] = m.Name
	}
	return names
}

// meta describes a result reflecting index (reported as at least 1, so a
// client that blocks on it never spins).
func (s *EntriesServer) meta(index uint64) *configpb.QueryMeta {
	leaderID, _ := s.raft.Leader()
	m := &configpb.QueryMeta{Index: max(index, 1), KnownLeader: leaderID != "", ServedBy: s.cfg.NodeName}
	if !s.raft.IsLeader() {
		m.LastContact = durationpb.New(lastContact(s.raft.Stats()))
	}
	return m
}

// status translates err to a gRPC status with this server's leader hint.
func (s *EntriesServer) status(err error) error {
	var hint leaderHint
	if errors.Is(err, raftnode.ErrNotLeader) || errors.Is(err, ErrNotLeaderForwarded) {
		hint.id, _ = s.raft.Leader()
		if hint.id != "" {
			hint.grpcAddr, _ = s.members.GRPCAddrOf(hint.id)
		}
	}
	return statusOf(err, hint)
}

// parseKindName checks the kind and name of a Get or Delete.
func parseKindName(kind, name string) (chain.Kind, error) {
	k, err := chain.ParseKind(kind)
	if err != nil {
		return "", err
	}
	if name == "" {
		return "", &chain.DecodeError{Msg: "Must provide both a kind and name"}
	}
	return k, nil
}

// asDecodeError makes any error of chain.DecodeEntry a *chain.DecodeError
// so it maps to InvalidArgument.
func asDecodeError(err error) error {
	var de *chain.DecodeError
	if errors.As(err, &de) {
		return err
	}
	return &chain.DecodeError{Msg: err.Error()}
}

// lastContact is the time since this server last heard from the leader.
func lastContact(st raftnode.Stats) time.Duration {
	if st.LastContact.IsZero() {
		return 0
	}
	return time.Since(st.LastContact)
}

// Blocked returns the number of blocking queries currently waiting (for
// metrics and tests).
func (s *EntriesServer) Blocked() int64 { return s.blocked.Load() }
