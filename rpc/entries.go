package rpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// EntriesServer implements chainstorev1.EntriesServiceServer: writes go
// through Raft on the leader (fsm.Proposer), reads through the router's
// consistency modes and blocking queries. See doc.go for the request
// paths.
type EntriesServer struct {
	chainstorev1.UnimplementedEntriesServiceServer

	router   *router
	proposer *fsm.Proposer
	maxEntry int
	list     ListLimits
}

var _ chainstorev1.EntriesServiceServer = (*EntriesServer)(nil)

// Apply implements chainstorev1.EntriesServiceServer.
//
// The entry is decoded and validated where the write executes: on the
// leader, or at once on a server that knows no leader (so invalid input
// is refused immediately, not held for HoldTimeout). A follower that
// knows the leader only checks the size and forwards the request as it
// came: the leader decodes and validates it anyway and its error comes
// back unchanged, so decoding it on the follower as well was pure cost
// (docs/benchmarks.md, Issue 12: Request path).
func (s *EntriesServer) Apply(ctx context.Context, req *chainstorev1.ApplyRequest) (*chainstorev1.ApplyResponse, error) {
	var cmd fsm.Command
	decoded := false
	decode := func() error {
		if decoded {
			return nil
		}
		c, err := applyRequestCommand(req, s.maxEntry)
		if err != nil {
			return err
		}
		cmd, decoded = c, true
		return nil
	}
	check := decode
	if s.router.forwardsAsIs(ctx) {
		check = func() error { return checkEntrySize(req, s.maxEntry) }
	}
	if err := check(); err != nil {
		return nil, s.router.status(err)
	}
	var resp *chainstorev1.ApplyResponse
	err := s.router.onLeader(ctx, true,
		func(ctx context.Context) error {
			if err := decode(); err != nil {
				return err
			}
			if err := s.router.authorize(ctx, entryWritePerms(cmd.Entry)...); err != nil {
				return err
			}
			var err error
			resp, err = s.applyLocal(ctx, cmd)
			return err
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			var err error
			resp, err = chainstorev1.NewEntriesServiceClient(conn).Apply(ctx, req)
			return err
		})
	if err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// applyLocal writes cmd through Raft on this (leader) server, skipping a
// write that would not change the stored entry.
func (s *EntriesServer) applyLocal(ctx context.Context, cmd fsm.Command) (*chainstorev1.ApplyResponse, error) {
	kind, name := string(cmd.Entry.GetKind()), cmd.Entry.GetName()
	if idx, ok := s.unchangedUpsert(ctx, cmd); ok {
		return &chainstorev1.ApplyResponse{Applied: true, Index: idx, Kind: kind, Name: name}, nil
	}
	res, err := s.proposer.Apply(ctx, cmd)
	if err != nil {
		return nil, &entryError{kind: kind, name: name, err: err}
	}
	return &chainstorev1.ApplyResponse{Applied: res.Applied, Index: res.Index, Kind: kind, Name: name}, nil
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
		stored, _, _ := s.router.fsm.Store().Get(cmd.Key)
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
	if err := s.router.consistentRead(ctx); err != nil {
		return 0, false
	}
	return check()
}

// Delete implements chainstorev1.EntriesServiceServer.
func (s *EntriesServer) Delete(ctx context.Context, req *chainstorev1.DeleteRequest) (*chainstorev1.DeleteResponse, error) {
	cmd, err := deleteRequestCommand(req)
	if err != nil {
		return nil, s.router.status(err)
	}
	var resp *chainstorev1.DeleteResponse
	err = s.router.onLeader(ctx, true,
		func(ctx context.Context) error {
			if err := s.router.authorize(ctx, deletePerms(cmd.Key.Kind, req.GetName())...); err != nil {
				return err
			}
			var err error
			resp, err = s.deleteLocal(ctx, cmd, string(cmd.Key.Kind), req.GetName())
			return err
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			var err error
			resp, err = chainstorev1.NewEntriesServiceClient(conn).Delete(ctx, req)
			return err
		})
	if err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

func (s *EntriesServer) deleteLocal(ctx context.Context, cmd fsm.Command, kind, name string) (*chainstorev1.DeleteResponse, error) {
	// A plain delete of an entry that does not exist changes nothing; as
	// for upserts, the local check is confirmed by a linearizable read.
	if cmd.Op == fsm.OpDelete {
		if stored, _, _ := s.router.fsm.Store().Get(cmd.Key); stored == nil && s.router.consistentRead(ctx) == nil {
			if stored, idx, _ := s.router.fsm.Store().Get(cmd.Key); stored == nil {
				return &chainstorev1.DeleteResponse{Deleted: true, Index: max(idx, 1)}, nil
			}
		}
	}
	res, err := s.proposer.Apply(ctx, cmd)
	if err != nil {
		return nil, &entryError{kind: kind, name: name, err: err}
	}
	return &chainstorev1.DeleteResponse{Deleted: res.Applied, Index: res.Index}, nil
}

// Get implements chainstorev1.EntriesServiceServer.
func (s *EntriesServer) Get(ctx context.Context, req *chainstorev1.GetRequest) (*chainstorev1.GetResponse, error) {
	kind, err := parseKindName(req.GetKind(), req.GetName())
	if err != nil {
		return nil, s.router.status(err)
	}
	key := chain.KeyOf(kind, req.GetName())
	var resp *chainstorev1.GetResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		if err := s.router.authorize(ctx, entryReadPerms(kind, req.GetName())...); err != nil {
			return err
		}
		return s.router.blocking(ctx, req.GetOptions(), consistent, func(store *fsm.Store) (uint64, <-chan struct{}, error) {
			stored, idx, watch := store.Get(key)
			r := &chainstorev1.GetResponse{Meta: s.router.meta(idx)}
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
	remote := func(ctx context.Context, conn *grpc.ClientConn) error {
		var err error
		resp, err = chainstorev1.NewEntriesServiceClient(conn).Get(ctx, req)
		return err
	}
	if err := s.router.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// List implements chainstorev1.EntriesServiceServer.
func (s *EntriesServer) List(ctx context.Context, req *chainstorev1.ListRequest) (*chainstorev1.ListResponse, error) {
	kind, err := chain.ParseKind(req.GetKind())
	if err != nil {
		return nil, s.router.status(err)
	}
	var resp *chainstorev1.ListResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		az, err := s.router.authorizer(ctx)
		if err != nil {
			return err
		}
		return s.router.blocking(ctx, req.GetOptions(), consistent, func(store *fsm.Store) (uint64, <-chan struct{}, error) {
			// Paged or legacy, both bounded (list.go); List shows only
			// what the token may read, without an error.
			keep := func(se *fsm.StoredEntry) bool {
				return allowedAll(az, entryReadPerms(se.Key().Kind, se.Entry.GetName()))
			}
			var r *chainstorev1.ListResponse
			var idx uint64
			var watch <-chan struct{}
			var err error
			if isPaged(req) {
				r, idx, watch, err = listPage(store, kind, req, s.list, keep)
			} else {
				r, idx, watch, err = listLegacy(store, kind, s.list, keep)
			}
			if err != nil {
				return 0, nil, err
			}
			r.Meta = s.router.meta(idx)
			resp = r
			return idx, watch, nil
		})
	}
	remote := func(ctx context.Context, conn *grpc.ClientConn) error {
		var err error
		resp, err = chainstorev1.NewEntriesServiceClient(conn).List(ctx, req)
		return err
	}
	if err := s.router.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
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
