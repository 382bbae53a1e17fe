package rpc

import (
	"context"
	"fmt"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Local is the in-process front door to the services, for front ends
// other than gRPC (the HTTP API, package httpapi): each call runs the
// same service method a gRPC call runs, through the same unary
// interceptors (panic recovery, admission control, default deadline),
// so forwarding to the leader, consistency modes, blocking queries and
// error statuses are the gRPC path's. Requests and responses are the
// generated messages; errors are gRPC status errors.
//
// The caller passes request metadata (such as a token) as incoming gRPC
// metadata on ctx (metadata.NewIncomingContext), exactly where a gRPC
// call's metadata would be. Local has its own admission slots: the caps of
// ServerConfig apply to it separately from the gRPC server.
type Local struct {
	s         *Services
	intercept grpc.UnaryServerInterceptor
}

// NewLocal returns the in-process front door to s. cfg must be the
// configuration s was built with.
func NewLocal(cfg ServerConfig, s *Services, logger hclog.Logger) *Local {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Local{s: s, intercept: chainUnary(unaryInterceptors(cfg, logger))}
}

// chainUnary composes interceptors the way grpc.ChainUnaryInterceptor
// does: the first is the outermost.
func chainUnary(ics []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		h := handler
		for i := len(ics) - 1; i >= 0; i-- {
			ic, next := ics[i], h
			h = func(ctx context.Context, req any) (any, error) { return ic(ctx, req, info, next) }
		}
		return h(ctx, req)
	}
}

// invoke runs fn as method through l's interceptors.
func invoke[Req, Resp any](ctx context.Context, l *Local, method string, req Req, fn func(context.Context, Req) (Resp, error)) (Resp, error) {
	var zero Resp
	out, err := l.intercept(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, r any) (any, error) {
		return fn(ctx, r.(Req))
	})
	if err != nil {
		return zero, err
	}
	resp, ok := out.(Resp)
	if !ok {
		return zero, fmt.Errorf("%s: unexpected response type %T", method, out)
	}
	return resp, nil
}

// Apply runs EntriesService.Apply.
func (l *Local) Apply(ctx context.Context, req *chainstorev1.ApplyRequest) (*chainstorev1.ApplyResponse, error) {
	return invoke(ctx, l, chainstorev1.EntriesService_Apply_FullMethodName, req, l.s.entries.Apply)
}

// Get runs EntriesService.Get.
func (l *Local) Get(ctx context.Context, req *chainstorev1.GetRequest) (*chainstorev1.GetResponse, error) {
	return invoke(ctx, l, chainstorev1.EntriesService_Get_FullMethodName, req, l.s.entries.Get)
}

// List runs EntriesService.List.
func (l *Local) List(ctx context.Context, req *chainstorev1.ListRequest) (*chainstorev1.ListResponse, error) {
	return invoke(ctx, l, chainstorev1.EntriesService_List_FullMethodName, req, l.s.entries.List)
}

// Delete runs EntriesService.Delete.
func (l *Local) Delete(ctx context.Context, req *chainstorev1.DeleteRequest) (*chainstorev1.DeleteResponse, error) {
	return invoke(ctx, l, chainstorev1.EntriesService_Delete_FullMethodName, req, l.s.entries.Delete)
}

// GetChain runs ChainService.GetChain.
func (l *Local) GetChain(ctx context.Context, req *chainstorev1.GetChainRequest) (*chainstorev1.GetChainResponse, error) {
	return invoke(ctx, l, chainstorev1.ChainService_GetChain_FullMethodName, req, l.s.chains.GetChain)
}

// Register runs CatalogService.Register.
func (l *Local) Register(ctx context.Context, req *chainstorev1.RegisterRequest) (*chainstorev1.RegisterResponse, error) {
	return invoke(ctx, l, chainstorev1.CatalogService_Register_FullMethodName, req, l.s.catalog.Register)
}

// Deregister runs CatalogService.Deregister.
func (l *Local) Deregister(ctx context.Context, req *chainstorev1.DeregisterRequest) (*chainstorev1.DeregisterResponse, error) {
	return invoke(ctx, l, chainstorev1.CatalogService_Deregister_FullMethodName, req, l.s.catalog.Deregister)
}

// UpdateCheck runs CatalogService.UpdateCheck.
func (l *Local) UpdateCheck(ctx context.Context, req *chainstorev1.UpdateCheckRequest) (*chainstorev1.UpdateCheckResponse, error) {
	return invoke(ctx, l, chainstorev1.CatalogService_UpdateCheck_FullMethodName, req, l.s.catalog.UpdateCheck)
}

// Instances runs CatalogService.Instances.
func (l *Local) Instances(ctx context.Context, req *chainstorev1.InstancesRequest) (*chainstorev1.InstancesResponse, error) {
	return invoke(ctx, l, chainstorev1.CatalogService_Instances_FullMethodName, req, l.s.catalog.Instances)
}

// Services runs CatalogService.Services.
func (l *Local) Services(ctx context.Context, req *chainstorev1.ServicesRequest) (*chainstorev1.ServicesResponse, error) {
	return invoke(ctx, l, chainstorev1.CatalogService_Services_FullMethodName, req, l.s.catalog.Services)
}

// Peers runs OperatorService.Peers.
func (l *Local) Peers(ctx context.Context, req *chainstorev1.PeersRequest) (*chainstorev1.PeersResponse, error) {
	return invoke(ctx, l, chainstorev1.OperatorService_Peers_FullMethodName, req, l.s.operator.Peers)
}

// Members runs OperatorService.Members.
func (l *Local) Members(ctx context.Context, req *chainstorev1.MembersRequest) (*chainstorev1.MembersResponse, error) {
	return invoke(ctx, l, chainstorev1.OperatorService_Members_FullMethodName, req, l.s.operator.Members)
}

// Status runs OperatorService.Status.
func (l *Local) Status(ctx context.Context, req *chainstorev1.StatusRequest) (*chainstorev1.StatusResponse, error) {
	return invoke(ctx, l, chainstorev1.OperatorService_Status_FullMethodName, req, l.s.operator.Status)
}
