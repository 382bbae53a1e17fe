package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/chainstore/chainstore/acl"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/snapshot"
	"github.com/chainstore/chainstore/version"
)

// Snapshot limits.
const (
	// SnapshotChunkSize is the largest chunk of a backup file in one
	// stream message (below DefaultMaxRecvMsgSize with room for framing).
	SnapshotChunkSize = 1 << 20
	// snapshotStreamTimeout bounds a whole save or restore stream on the
	// server, whatever deadline the client set.
	snapshotStreamTimeout = 10 * time.Minute
	// restoreIndexGap is how far above the leader's last log index a
	// restore moves every index (fsm.RebaseSnapshot): writes committed
	// between the choice of the index and Raft's restore must stay below
	// it. Raft itself leaves a hole in the log at a restore.
	restoreIndexGap = 1024
)

// ErrSnapshotRefused reports a backup file that cannot be restored here:
// not a snapshot, corrupt, too large, or from another datacenter. Nothing
// was changed. It is reported as InvalidArgument.
var ErrSnapshotRefused = errors.New("snapshot refused")

// snapshotOps serialises restores on this server. The zero value is
// ready.
type snapshotOps struct {
	restoreMu sync.Mutex // held for a whole restore on the leader
}

// maxSnapshotSize bounds a backup file a server receives.
const maxSnapshotSize = snapshot.DefaultMaxSize

// SnapshotSave implements chainstorev1.OperatorServiceServer: a
// consistent snapshot taken on the leader (after a ReadIndex round), or
// this server's own state with stale.
func (s *OperatorServer) SnapshotSave(req *chainstorev1.SnapshotSaveRequest, stream grpc.ServerStreamingServer[chainstorev1.SnapshotSaveResponse]) error {
	return s.saveSnapshot(stream.Context(), req, func(b []byte) error {
		return stream.Send(&chainstorev1.SnapshotSaveResponse{Data: b})
	})
}

// saveSnapshot is SnapshotSave for every front end (gRPC stream, the HTTP
// API through Local): it calls send with consecutive chunks of the backup
// file and returns a gRPC status error.
func (s *OperatorServer) saveSnapshot(ctx context.Context, req *chainstorev1.SnapshotSaveRequest, send func([]byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, snapshotStreamTimeout)
	defer cancel()
	sent := false
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		// A backup holds every entry: operator:write, checked where the
		// snapshot is taken.
		if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
			return err
		}
		if consistent != nil {
			if err := consistent(ctx); err != nil {
				return err
			}
		}
		file, err := s.encodeSnapshot()
		if err != nil {
			return err
		}
		sent = true
		return sendChunks(file, send)
	}
	remote := func(ctx context.Context, conn *grpc.ClientConn) error {
		up, err := chainstorev1.NewOperatorServiceClient(conn).SnapshotSave(ctx, req)
		if err != nil {
			return err
		}
		for {
			m, err := up.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				if sent {
					return status.Errorf(codes.Aborted, "the snapshot stream from the leader broke after the first chunk: %v", err)
				}
				return err
			}
			sent = true
			if err := send(m.GetData()); err != nil {
				return err
			}
		}
	}
	var err error
	if req.GetStale() {
		err = local(ctx, nil)
	} else {
		err = s.router.read(ctx, chainstorev1.Consistency_CONSISTENCY_DEFAULT, local, remote)
	}
	return s.router.status(err)
}

// encodeSnapshot writes this server's current state as a backup file.
func (s *OperatorServer) encodeSnapshot() ([]byte, error) {
	view := s.router.fsm.Store().View()
	var payload bytes.Buffer
	if err := view.WriteSnapshot(&payload); err != nil {
		return nil, fmt.Errorf("write snapshot: %w", err)
	}
	h := snapshot.Header{
		Datacenter:    s.router.cfg.Datacenter,
		Node:          s.router.cfg.NodeName,
		Index:         max(view.Index(), 1),
		Term:          s.router.raft.Stats().Term,
		Created:       time.Now().UTC().Truncate(time.Millisecond),
		ServerVersion: version.String(),
		Size:          int64(payload.Len()),
	}
	return snapshot.Encode(h, payload.Bytes())
}

// sendChunks calls send with consecutive chunks of b of at most
// SnapshotChunkSize bytes.
func sendChunks(b []byte, send func([]byte) error) error {
	for len(b) > 0 {
		n := min(len(b), SnapshotChunkSize)
		if err := send(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// SnapshotRestore implements chainstorev1.OperatorServiceServer. The whole
// file is received and checked (format, checksum, datacenter, FSM
// contents) before anything changes; then the leader restores it through
// Raft.
func (s *OperatorServer) SnapshotRestore(stream grpc.ClientStreamingServer[chainstorev1.SnapshotRestoreRequest, chainstorev1.SnapshotRestoreResponse]) error {
	ctx, cancel := context.WithTimeout(stream.Context(), snapshotStreamTimeout)
	defer cancel()
	// operator:write, checked here before a file is received (so a client
	// without it cannot make a server buffer one) and again on the leader
	// that restores it.
	if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
		return s.router.status(err)
	}
	file, err := receiveFile(ctx, stream, maxSnapshotSize)
	if err != nil {
		return s.router.status(err)
	}
	resp, err := s.restoreSnapshot(ctx, file)
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}

// restoreSnapshot is SnapshotRestore for every front end, once the whole
// file was received (after the caller's own operator:write check): it
// checks the file and has the leader restore it. Errors are gRPC status
// errors.
func (s *OperatorServer) restoreSnapshot(ctx context.Context, file []byte) (*chainstorev1.SnapshotRestoreResponse, error) {
	h, payload, err := snapshot.Read(bytes.NewReader(file), maxSnapshotSize)
	if err == nil {
		err = h.CheckDatacenter(s.router.cfg.Datacenter)
	}
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v", ErrSnapshotRefused, err))
	}
	var resp *chainstorev1.SnapshotRestoreResponse
	local := func(ctx context.Context) error {
		if err := s.router.authorize(ctx, acl.OperatorWrite); err != nil {
			return err
		}
		idx, err := s.restoreLocal(ctx, payload)
		if err != nil {
			return err
		}
		resp = &chainstorev1.SnapshotRestoreResponse{
			SnapshotIndex: h.Index, Datacenter: h.Datacenter, Created: timestamppb.New(h.Created),
			RestoredIndex: idx, Meta: s.router.meta(s.router.fsm.AppliedIndex()),
		}
		return nil
	}
	remote := func(ctx context.Context, conn *grpc.ClientConn) error {
		up, err := chainstorev1.NewOperatorServiceClient(conn).SnapshotRestore(ctx)
		if err != nil {
			return err
		}
		if err := sendChunks(file, func(b []byte) error {
			return up.Send(&chainstorev1.SnapshotRestoreRequest{Data: b})
		}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		resp, err = up.CloseAndRecv()
		return err
	}
	if err := s.router.onLeader(ctx, true, local, remote); err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// restoreLocal restores an FSM snapshot on this server, the leader, and
// returns the index every restored index was moved to.
func (s *OperatorServer) restoreLocal(ctx context.Context, payload []byte) (uint64, error) {
	s.snap.restoreMu.Lock()
	defer s.snap.restoreMu.Unlock()
	var rebased bytes.Buffer
	var index uint64
	for {
		index = s.router.raft.LastIndex() + restoreIndexGap
		rebased.Reset()
		if _, err := fsm.RebaseSnapshot(bytes.NewReader(payload), &rebased, index, s.router.fsm.Store().View()); err != nil {
			return 0, status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v", ErrSnapshotRefused, err))
		}
		// Writes went on while the state was prepared: prepare it again
		// if they came close to the chosen index.
		if s.router.raft.LastIndex()+restoreIndexGap/2 < index {
			break
		}
	}
	if err := s.router.raft.RestoreSnapshot(ctx, index, int64(rebased.Len()), bytes.NewReader(rebased.Bytes())); err != nil {
		return 0, err
	}
	return index, nil
}

// receiveFile reads the chunks of a client stream until EOF, at most
// maxSize bytes, within ctx. Recv runs on its own goroutine so the
// deadline holds even when the client stops sending; it ends when the
// handler returns (grpc-go then fails Recv).
func receiveFile(ctx context.Context, stream grpc.ClientStreamingServer[chainstorev1.SnapshotRestoreRequest, chainstorev1.SnapshotRestoreResponse], maxSize int64) ([]byte, error) {
	type result struct {
		file []byte
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var buf bytes.Buffer
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				done <- result{file: buf.Bytes()}
				return
			}
			if err != nil {
				done <- result{err: err}
				return
			}
			if int64(buf.Len()+len(m.GetData())) > maxSize {
				done <- result{err: status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v: more than %d bytes", ErrSnapshotRefused, snapshot.ErrTooLarge, maxSize))}
				return
			}
			buf.Write(m.GetData())
		}
	}()
	select {
	case r := <-done:
		return r.file, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("receive snapshot: %w", ctx.Err())
	}
}
