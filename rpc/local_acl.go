package rpc

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/acl"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/snapshot"
)

// This file extends Local with the ACL service, the token of the request
// itself, permission checks for front-end-only endpoints, and the
// snapshot streams (one implementation with the gRPC handlers).

// Bootstrap runs ACLService.Bootstrap.
func (l *Local) Bootstrap(ctx context.Context, req *chainstorev1.BootstrapRequest) (*chainstorev1.BootstrapResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_Bootstrap_FullMethodName, req, l.s.acl.Bootstrap)
}

// PolicyCreate runs ACLService.PolicyCreate.
func (l *Local) PolicyCreate(ctx context.Context, req *chainstorev1.PolicyCreateRequest) (*chainstorev1.PolicyCreateResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_PolicyCreate_FullMethodName, req, l.s.acl.PolicyCreate)
}

// PolicyList runs ACLService.PolicyList.
func (l *Local) PolicyList(ctx context.Context, req *chainstorev1.PolicyListRequest) (*chainstorev1.PolicyListResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_PolicyList_FullMethodName, req, l.s.acl.PolicyList)
}

// PolicyRead runs ACLService.PolicyRead.
func (l *Local) PolicyRead(ctx context.Context, req *chainstorev1.PolicyReadRequest) (*chainstorev1.PolicyReadResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_PolicyRead_FullMethodName, req, l.s.acl.PolicyRead)
}

// PolicyDelete runs ACLService.PolicyDelete.
func (l *Local) PolicyDelete(ctx context.Context, req *chainstorev1.PolicyDeleteRequest) (*chainstorev1.PolicyDeleteResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_PolicyDelete_FullMethodName, req, l.s.acl.PolicyDelete)
}

// TokenCreate runs ACLService.TokenCreate.
func (l *Local) TokenCreate(ctx context.Context, req *chainstorev1.TokenCreateRequest) (*chainstorev1.TokenCreateResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_TokenCreate_FullMethodName, req, l.s.acl.TokenCreate)
}

// TokenList runs ACLService.TokenList.
func (l *Local) TokenList(ctx context.Context, req *chainstorev1.TokenListRequest) (*chainstorev1.TokenListResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_TokenList_FullMethodName, req, l.s.acl.TokenList)
}

// TokenRead runs ACLService.TokenRead.
func (l *Local) TokenRead(ctx context.Context, req *chainstorev1.TokenReadRequest) (*chainstorev1.TokenReadResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_TokenRead_FullMethodName, req, l.s.acl.TokenRead)
}

// TokenDelete runs ACLService.TokenDelete.
func (l *Local) TokenDelete(ctx context.Context, req *chainstorev1.TokenDeleteRequest) (*chainstorev1.TokenDeleteResponse, error) {
	return invoke(ctx, l, chainstorev1.ACLService_TokenDelete_FullMethodName, req, l.s.acl.TokenDelete)
}

// TokenSelf returns the token the request in ctx carries, without its
// secret: the anonymous token for a request without one, ErrACLNotFound
// (PermissionDenied) for an unknown one. Like Consul's token/self it needs
// no permission beyond holding the token. It reads this server's own
// state (a stale read: a token created a moment ago on the leader may not
// have reached a follower yet). Errors are gRPC status errors.
func (l *Local) TokenSelf(ctx context.Context) (*chainstorev1.ACLToken, error) {
	r := l.s.router
	if !r.cfg.ACL.Enabled {
		return nil, r.status(ErrACLDisabled)
	}
	secret := tokenFrom(ctx)
	if secret == "" {
		return anonymousToken(), nil
	}
	v := r.fsm.Store().View()
	t := v.ACLTokenBySecretHash(acl.HashSecret(secret))
	if t == nil {
		return nil, r.status(ErrACLNotFound)
	}
	return tokenToProto(v, t), nil
}

// Authorize checks the token of the request in ctx against perms on this
// server, for endpoints a front end serves itself (metrics); nil or a
// gRPC status error.
func (l *Local) Authorize(ctx context.Context, perms ...acl.Permission) error {
	return l.s.Authorize(ctx, perms...)
}

// SnapshotSave runs OperatorService.SnapshotSave: send is called with
// consecutive chunks of the backup file (at most SnapshotChunkSize bytes
// each). Errors are gRPC status errors, or send's.
func (l *Local) SnapshotSave(ctx context.Context, req *chainstorev1.SnapshotSaveRequest, send func([]byte) error) error {
	return l.s.operator.saveSnapshot(ctx, req, send)
}

// MaxSnapshotSize is the largest backup file a server accepts for a
// restore.
const MaxSnapshotSize = maxSnapshotSize

// SnapshotRestore runs OperatorService.SnapshotRestore with the backup
// file read from body. operator:write is checked before body is read; a
// body over MaxSnapshotSize is refused (InvalidArgument). An error reading
// body is returned wrapped as it is (so a caller can tell its own
// reader's limit, e.g. *http.MaxBytesError); other errors are gRPC status
// errors.
func (l *Local) SnapshotRestore(ctx context.Context, body io.Reader) (*chainstorev1.SnapshotRestoreResponse, error) {
	op := l.s.operator
	ctx, cancel := context.WithTimeout(ctx, snapshotStreamTimeout)
	defer cancel()
	if err := op.router.authorize(ctx, acl.OperatorWrite); err != nil {
		return nil, op.router.status(err)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(body, maxSnapshotSize+1))
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if n > maxSnapshotSize {
		return nil, status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v: more than %d bytes", ErrSnapshotRefused, snapshot.ErrTooLarge, maxSnapshotSize))
	}
	return op.restoreSnapshot(ctx, buf.Bytes())
}
