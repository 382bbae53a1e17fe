package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/chainstore/chainstore/api"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/raftnode"
)

// Sentinel errors of the rpc package. Handlers return them (wrapped) and
// statusOf turns them into gRPC statuses at the package boundary.
var (
	// ErrEntryTooLarge: the submitted entry is over ServerConfig.MaxEntrySize.
	ErrEntryTooLarge = errors.New("config entry too large")
	// ErrLeaderUnreachable: a leader is known but no connection to its
	// gRPC address could be made, so nothing was sent to it.
	ErrLeaderUnreachable = errors.New("leader unreachable")
	// ErrNotLeaderForwarded: a request that another server had already
	// forwarded reached a server that is not the leader. Nothing was
	// written; the forwarding server retries against the current leader.
	ErrNotLeaderForwarded = errors.New("not the leader")
	// ErrNoQuorum: a consistent read could not confirm leadership with a
	// quorum in time.
	ErrNoQuorum = errors.New("leader could not confirm its leadership with a quorum")
	// ErrShuttingDown: the server is stopping.
	ErrShuttingDown = errors.New("server shutting down")
)

// entryError ties an error to the entry it concerns, so the status message
// names the entry as `config entry "<kind>" / "<name>": <err>`.
type entryError struct {
	kind, name string
	err        error
}

func (e *entryError) Error() string {
	return fmt.Sprintf("config entry %q / %q: %v", e.kind, e.name, e.err)
}

func (e *entryError) Unwrap() error { return e.err }

// leaderHint carries what a server knows about the leader into a
// NOT_LEADER status.
type leaderHint struct {
	id, grpcAddr string
}

// withInfo builds a status with one api.ErrorInfo detail.
func withInfo(c codes.Code, msg, reason string, md map[string]string) error {
	st := status.New(c, msg)
	if reason == "" {
		return st.Err()
	}
	withDetails, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: api.ErrorDomain, Metadata: md})
	if err != nil {
		return st.Err()
	}
	return withDetails.Err()
}

// statusOf translates an error of this package, of raftnode, of chain or of
// a context into a gRPC status error. A status error (for instance one
// received from the leader) passes through unchanged.
func statusOf(err error, hint leaderHint) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if st := aclStatus(err); st != nil {
		return st
	}
	// md names the entry; entryMD adds the exact chain error text, for the
	// errors that are about the entry's content.
	md := map[string]string{}
	var ee *entryError
	if errors.As(err, &ee) {
		md[api.MetaKind], md[api.MetaName] = ee.kind, ee.name
	}
	entryMD := func(e error) map[string]string {
		out := map[string]string{api.MetaError: e.Error()}
		for k, v := range md {
			out[k] = v
		}
		return out
	}
	var (
		decodeErr *chain.DecodeError
		validErr  *chain.ValidationError
		graphErr  *chain.GraphError
	)
	switch {
	case errors.As(err, &decodeErr):
		return withInfo(codes.InvalidArgument, err.Error(), api.ReasonInvalidEntry, entryMD(decodeErr))
	case errors.As(err, &validErr):
		return withInfo(codes.InvalidArgument, err.Error(), api.ReasonInvalidEntry, entryMD(validErr))
	case errors.As(err, &graphErr):
		return withInfo(codes.InvalidArgument, err.Error(), api.ReasonGraphInvalid, entryMD(graphErr))
	case isCatalogError(err):
		var ve *catalog.ValidationError
		cmd := map[string]string{api.MetaError: err.Error()}
		if errors.As(err, &ve) && ve.ID != "" {
			cmd[api.MetaID] = ve.ID
		}
		return withInfo(codes.InvalidArgument, err.Error(), api.ReasonInvalidInstance, cmd)
	case errors.Is(err, fsm.ErrInstanceNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrListTooLarge):
		return withInfo(codes.ResourceExhausted, err.Error(), api.ReasonListTooLarge, md)
	case errors.Is(err, ErrEntryTooLarge):
		return withInfo(codes.InvalidArgument, err.Error(), api.ReasonEntryTooLarge, md)
	case errors.Is(err, raftnode.ErrNoLeader), errors.Is(err, ErrLeaderUnreachable),
		errors.Is(err, raftnode.ErrNotReady), errors.Is(err, ErrNoQuorum):
		// ErrNoLeader also matches ErrNotLeader: test it first.
		return withInfo(codes.Unavailable, err.Error(), api.ReasonNoLeader, md)
	case errors.Is(err, raftnode.ErrNotLeader), errors.Is(err, ErrNotLeaderForwarded):
		hmd := map[string]string{}
		if hint.id != "" {
			hmd[api.MetaLeaderID] = hint.id
		}
		if hint.grpcAddr != "" {
			hmd[api.MetaLeaderAddr] = hint.grpcAddr
		}
		msg := "not the leader"
		if hint.grpcAddr != "" {
			msg += "; the leader is at " + hint.grpcAddr
		}
		return withInfo(codes.FailedPrecondition, msg, api.ReasonNotLeader, hmd)
	case errors.Is(err, raftnode.ErrUnknownOutcome):
		return withInfo(codes.Unknown,
			"outcome unknown: the write reached Raft but its commit was not confirmed (leadership lost, deadline or shutdown), so it may or may not have been applied; read the entry back or write with CAS: "+err.Error(),
			api.ReasonUnknownOutcome, md)
	case errors.Is(err, raftnode.ErrTimeout):
		return status.Error(codes.ResourceExhausted, "server busy, the request was not started: "+err.Error())
	case errors.Is(err, raftnode.ErrShutdown), errors.Is(err, ErrShuttingDown):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}

// retrySafe reports whether err proves that nothing was written, so the
// request may be sent again (to the current leader).
func retrySafe(err error) bool {
	switch {
	case errors.Is(err, raftnode.ErrNotLeader), errors.Is(err, raftnode.ErrNoLeader),
		errors.Is(err, raftnode.ErrNotReady), errors.Is(err, ErrLeaderUnreachable),
		errors.Is(err, ErrNotLeaderForwarded):
		return true
	}
	switch api.ErrorReason(err) {
	case api.ReasonNotLeader, api.ReasonNoLeader:
		return true
	}
	return false
}
