package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chainstore/chainstore/api"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/chainwatch"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// ChainServerConfig configures the chain service.
type ChainServerConfig struct {
	// Watcher configures every Watch stream (subscription cap, progress
	// interval, resume wait).
	Watcher chainwatch.WatcherConfig
	// MaxStreams caps the concurrent Watch streams of this server.
	MaxStreams int
	// LeaderStaleAfter: a follower that has not heard from the leader for
	// this long reports no_leader in its progress messages, as does a
	// server that knows no leader (watchleader.go).
	LeaderStaleAfter time.Duration
	// LeaderCheckInterval is how often this server checks its leader
	// state (once for all Watch streams), to send every stream a progress
	// message when it changes.
	LeaderCheckInterval time.Duration
}

// DefaultChainServerConfig returns the production defaults.
func DefaultChainServerConfig() ChainServerConfig {
	return ChainServerConfig{Watcher: chainwatch.DefaultWatcherConfig(), MaxStreams: 100_000,
		LeaderStaleAfter: 5 * time.Second, LeaderCheckInterval: time.Second}
}

// Validate reports the first invalid field.
func (c ChainServerConfig) Validate() error {
	if err := c.Watcher.Validate(); err != nil {
		return err
	}
	if c.MaxStreams <= 0 {
		return fmt.Errorf("MaxStreams must be positive, got %d", c.MaxStreams)
	}
	if c.LeaderStaleAfter <= 0 || c.LeaderCheckInterval <= 0 {
		return fmt.Errorf("LeaderStaleAfter (%s) and LeaderCheckInterval (%s) must be positive", c.LeaderStaleAfter, c.LeaderCheckInterval)
	}
	return nil
}

// ChainServer implements chainstorev1.ChainServiceServer on top of a
// chainwatch.Hub (compile once, publish versions) and the router (read
// routing, consistency modes, response metadata). See chainwatch's
// package documentation for the fan-out design.
type ChainServer struct {
	chainstorev1.UnimplementedChainServiceServer

	cfg     ChainServerConfig
	hub     *chainwatch.Hub
	router  *router
	logger  hclog.Logger
	streams atomic.Int64 // open Watch streams

	leaderMu    sync.Mutex // protects the cached leader state below (watchleader.go)
	leaderAt    time.Time
	leaderNo    bool
	leaderSince time.Duration

	leaderWatch leaderWatch // the streams' shared leader-state check (watchleader.go)
}

var _ chainstorev1.ChainServiceServer = (*ChainServer)(nil)

// chainKeyOf converts a ChainRef; the hub normalizes and checks it.
func chainKeyOf(ref *chainstorev1.ChainRef) (chainwatch.ChainKey, error) {
	k := chainwatch.ChainKey{Service: ref.GetService(), Datacenter: ref.GetDatacenter()}
	if o := ref.GetOverrides(); o != nil {
		k.OverrideProtocol = o.GetProtocol()
		k.OverrideMeshGatewayMode = o.GetMeshGatewayMode()
		if d := o.GetConnectTimeout(); d != nil {
			if err := d.CheckValid(); err != nil {
				return k, fmt.Errorf("%w: connect timeout: %w", chainwatch.ErrInvalidChain, err)
			}
			k.OverrideConnectTimeout = d.AsDuration()
		}
	}
	return k, nil
}

// GetChain implements chainstorev1.ChainServiceServer. Reads are routed like
// Get: stale on this server, default and consistent on the leader (a
// follower forwards). The answering server serves the chain from its hub,
// fresh as of everything it had applied when the request arrived (for a
// consistent read: as of the leader's read index).
func (s *ChainServer) GetChain(ctx context.Context, req *chainstorev1.GetChainRequest) (*chainstorev1.GetChainResponse, error) {
	key, err := chainKeyOf(req.GetChain())
	if err != nil {
		return nil, chainStatus(err)
	}
	var resp *chainstorev1.GetChainResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		var err error
		resp, err = s.getChainLocal(ctx, key, req.GetOptions(), consistent)
		return err
	}
	remote := func(ctx context.Context, conn *grpc.ClientConn) error {
		var err error
		resp, err = chainstorev1.NewChainServiceClient(conn).GetChain(ctx, req)
		return err
	}
	if err := s.router.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// getChainLocal answers GetChain from this server's hub.
func (s *ChainServer) getChainLocal(ctx context.Context, key chainwatch.ChainKey, opts *chainstorev1.QueryOptions,
	consistent func(context.Context) error) (*chainstorev1.GetChainResponse, error) {
	az, err := s.router.authorizer(ctx)
	if err != nil {
		return nil, err
	}
	if err := acl.Check(az, acl.ServiceRead(key.Service)); err != nil {
		return nil, err
	}
	if consistent != nil {
		if err := consistent(ctx); err != nil {
			return nil, err
		}
	}
	sub, err := s.hub.Subscribe(ctx, key, s.router.fsm.AppliedIndex())
	if err != nil {
		return nil, chainStatus(err)
	}
	defer sub.Close()
	v := sub.Current()
	if minIndex := opts.GetMinIndex(); minIndex > 0 && max(v.Index, 1) <= minIndex {
		v, err = s.waitChain(ctx, sub, minIndex, opts.GetWait().AsDuration())
		if err != nil {
			return nil, err
		}
	}
	if err := chainReadable(az, v); err != nil {
		return nil, err
	}
	if v.Err != "" {
		return nil, withInfo(codes.FailedPrecondition,
			fmt.Sprintf("discovery chain %q does not compile: %s", key.Service, v.Err),
			api.ReasonChainCompileError,
			map[string]string{api.MetaService: key.Service, api.MetaError: v.Err, api.MetaIndex: strconv.FormatUint(v.Index, 10)})
	}
	return &chainstorev1.GetChainResponse{Version: v.Proto(), Meta: s.router.meta(v.Index)}, nil
}

// waitChain is the blocking part of GetChain, with the contract of
// blockingQuery: it returns once the chain's index passes minIndex, when
// the wait (capped, jittered) ends, when the server shuts down, or at
// once after a snapshot restore (indexes may have gone backwards).
func (s *ChainServer) waitChain(ctx context.Context, sub *chainwatch.Subscription, minIndex uint64, wait time.Duration) (*chainwatch.Version, error) {
	lim := s.router.limits()
	t := time.NewTimer(blockingWait(ctx, wait, lim))
	defer t.Stop()
	v := sub.Current()
	epoch := v.Epoch
	for max(v.Index, 1) <= minIndex && v.Epoch == epoch {
		select {
		case <-v.Superseded():
			v = sub.Current()
		case <-t.C:
			return v, nil
		case <-lim.shutdownCh:
			return v, nil
		case <-s.hub.Done():
			return nil, chainStatus(chainwatch.ErrStopped)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return v, nil
}

// chainStatus translates chainwatch errors to gRPC statuses.
func chainStatus(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, chainwatch.ErrInvalidChain):
		return withInfo(codes.InvalidArgument, err.Error(), api.ReasonInvalidChain, nil)
	case errors.Is(err, chainwatch.ErrTooManyChains), errors.Is(err, chainwatch.ErrTooManySubscriptions),
		errors.Is(err, chainwatch.ErrRequestBacklog):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, chainwatch.ErrBehind):
		return withInfo(codes.Unavailable, err.Error()+"; try another server", api.ReasonServerBehind, nil)
	case errors.Is(err, chainwatch.ErrStopped), errors.Is(err, chainwatch.ErrWatcherClosed):
		return status.Error(codes.Unavailable, "server shutting down: "+err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return statusOf(err, leaderHint{})
}

// Watch implements chainstorev1.ChainServiceServer. The handler goroutine is
// the stream's sender: it loops on Watcher.Next and sends each event. A
// receiver goroutine reads the client's requests and adds or removes
// subscriptions. See chainwatch's documentation for the goroutine model.
func (s *ChainServer) Watch(stream chainstorev1.ChainService_WatchServer) error {
	if n := s.streams.Add(1); n > int64(s.cfg.MaxStreams) {
		s.streams.Add(-1)
		return status.Errorf(codes.ResourceExhausted, "too many watch streams on this server (limit %d)", s.cfg.MaxStreams)
	}
	defer s.streams.Add(-1)

	// A stream with a wrong or deleted token ends at once; each
	// subscription and each update is checked again below.
	if _, err := s.router.authorizer(stream.Context()); err != nil {
		return s.router.status(err)
	}
	w, err := chainwatch.NewWatcher(s.hub, s.cfg.Watcher)
	if err != nil {
		return status.Error(codes.Internal, err.Error())
	}
	defer w.Close()
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)

	// The receiver returns when Recv fails, which gRPC guarantees once
	// this handler has returned (or the client has gone away). It never
	// blocks on anything but Recv and Watcher.Add (bounded by the resume
	// wait), so it cannot outlive the stream.
	go s.receive(ctx, stream, w, cancel)

	// The server's leader watch asks for a progress message when its
	// leader state changes (watchleader.go) until this stream ends.
	stopLeaderWatch := s.watchLeader(w)
	defer stopLeaderWatch()

	for {
		ev, err := w.Next(ctx)
		if err != nil {
			return s.watchEnd(ctx, err)
		}
		if ev.Kind == chainwatch.EventUpdate {
			if err := s.updateAllowed(ctx, ev.Version); err != nil {
				// The chain now reaches a service the token may not read
				// (or the token was deleted): end this subscription with
				// the reason instead of sending the chain.
				w.Drop(ev.ID, err)
				continue
			}
		}
		if err := stream.Send(s.watchResponse(ev)); err != nil {
			return err
		}
	}
}

// receive reads the client's requests until the stream ends. A request
// the stream cannot go on after (a resume this server is too far behind
// for, a malformed request) cancels ctx with the cause.
func (s *ChainServer) receive(ctx context.Context, stream chainstorev1.ChainService_WatchServer, w *chainwatch.Watcher, cancel context.CancelCauseFunc) {
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			// The client will send nothing more; keep streaming to it.
			return
		}
		if err != nil {
			cancel(err)
			return
		}
		switch r := req.GetRequest().(type) {
		case *chainstorev1.WatchRequest_Subscribe:
			sub := r.Subscribe
			key, err := chainKeyOf(sub.GetChain())
			if err == nil {
				if aerr := s.router.authorize(ctx, acl.ServiceRead(key.Service)); errors.Is(aerr, acl.ErrPermissionDenied) {
					// Refuse this subscription; the stream goes on.
					if rerr := w.Refuse(sub.GetId(), aerr); errors.Is(rerr, chainwatch.ErrRequestBacklog) {
						cancel(rerr)
						return
					}
					continue
				} else if aerr != nil {
					// The token is gone: the stream ends.
					cancel(s.router.status(aerr))
					return
				}
			}
			if err == nil {
				err = w.Add(ctx, sub.GetId(), key, sub.GetLastIndex(), sub.GetLastHash())
			} else {
				err = w.Refuse(sub.GetId(), err)
			}
			if err != nil && !chainwatch.Refused(err) {
				cancel(err)
				return
			}
		case *chainstorev1.WatchRequest_Unsubscribe:
			w.Remove(r.Unsubscribe.GetId())
		case *chainstorev1.WatchRequest_Ping:
			// A liveness probe (api/liveness.go): answered with a progress
			// message; pings sent faster than the stream drains coalesce.
			w.RequestProgress()
		default:
			cancel(status.Error(codes.InvalidArgument, "watch request with none of subscribe, unsubscribe, ping"))
			return
		}
	}
}

// chainReadable checks service:read on every service the chain's targets
// reach: a chain that reaches a service the token may not read is
// refused as a whole rather than shown with targets left out, since a
// chain with missing legs would route differently from the real one
// (docs/acl.md, Chains).
func chainReadable(az acl.Authorizer, v *chainwatch.Version) error {
	for _, svc := range v.Services() {
		if err := acl.Check(az, acl.ServiceRead(svc)); err != nil {
			return err
		}
	}
	return nil
}

// updateAllowed checks a version about to be sent on a Watch stream.
func (s *ChainServer) updateAllowed(ctx context.Context, v *chainwatch.Version) error {
	az, err := s.router.authorizer(ctx)
	if err != nil {
		return err
	}
	return chainReadable(az, v)
}

// watchEnd is the status a Watch stream ends with.
func (s *ChainServer) watchEnd(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && errors.Is(err, ctx.Err()) {
		err = cause
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, chainwatch.ErrBehind) {
		s.logger.Info("watch stream ended: server behind the client's resume index", "error", err)
	}
	return chainStatus(err)
}

// watchResponse converts a Watcher event. Updates carry the version's
// shared, pre-built message: its chain bytes were encoded once per server.
func (s *ChainServer) watchResponse(ev chainwatch.Event) *chainstorev1.WatchResponse {
	switch ev.Kind {
	case chainwatch.EventSubscribed:
		return &chainstorev1.WatchResponse{Event: &chainstorev1.WatchResponse_Subscribed{Subscribed: &chainstorev1.Subscribed{SubscriptionId: ev.ID}}}
	case chainwatch.EventUpdate:
		return &chainstorev1.WatchResponse{Event: &chainstorev1.WatchResponse_Update{Update: &chainstorev1.ChainUpdate{SubscriptionId: ev.ID, Version: ev.Version.Proto()}}}
	case chainwatch.EventReset:
		return &chainstorev1.WatchResponse{Event: &chainstorev1.WatchResponse_SubscriptionReset{SubscriptionReset: &chainstorev1.SubscriptionReset{SubscriptionId: ev.ID}}}
	case chainwatch.EventUnsubscribed:
		u := &chainstorev1.Unsubscribed{SubscriptionId: ev.ID}
		if ev.Err != nil {
			u.Error = ev.Err.Error()
		}
		return &chainstorev1.WatchResponse{Event: &chainstorev1.WatchResponse_Unsubscribed{Unsubscribed: u}}
	default:
		p := &chainstorev1.WatchProgress{Index: ev.Index, ServedBy: s.router.cfg.NodeName, AcceptsPing: true}
		if noLeader, contact := s.leaderState(); noLeader {
			p.NoLeader = true
			if contact > 0 {
				p.LastContact = durationpb.New(contact)
			}
		}
		return &chainstorev1.WatchResponse{Event: &chainstorev1.WatchResponse_Progress{Progress: p}}
	}
}
