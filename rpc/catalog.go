package rpc

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// CatalogServer implements chainstorev1.CatalogServiceServer: writes go
// through Raft on the leader like entry writes, reads through the
// router's consistency modes and blocking queries.
type CatalogServer struct {
	chainstorev1.UnimplementedCatalogServiceServer

	router   *router
	proposer *fsm.Proposer
}

var _ chainstorev1.CatalogServiceServer = (*CatalogServer)(nil)

// errNoInstanceID is the error for a request without an instance ID.
var errNoInstanceID = &catalog.ValidationError{Field: "ID", Msg: "must be set"}

// Register implements chainstorev1.CatalogServiceServer. The receiving
// server validates the instance, so bad input is refused with the field's
// name wherever it arrives.
func (s *CatalogServer) Register(ctx context.Context, req *chainstorev1.RegisterRequest) (*chainstorev1.RegisterResponse, error) {
	in, err := instanceFromProto(req.GetInstance())
	if err != nil {
		return nil, s.router.status(err)
	}
	dc := s.router.cfg.Datacenter
	if err := in.Validate(dc); err != nil {
		return nil, s.router.status(err)
	}
	in.Normalize(dc)
	var resp *chainstorev1.RegisterResponse
	err = s.write(ctx, fsm.Command{Op: fsm.OpRegister, Instance: in},
		func(res fsm.ApplyResult) { resp = &chainstorev1.RegisterResponse{Index: res.Index} },
		func(ctx context.Context, c chainstorev1.CatalogServiceClient) (err error) {
			resp, err = c.Register(ctx, req)
			return err
		},
		func(ctx context.Context) error {
			// The service the instance joins, and the one it leaves if the
			// ID is registered under another (the FSM refuses that, but
			// only after this check).
			perms := []acl.Permission{acl.ServiceWrite(in.Service)}
			if old := s.router.fsm.Store().Instance(in.ID); old != nil {
				perms = append(perms, acl.ServiceWrite(old.Service))
			}
			return s.router.authorize(ctx, perms...)
		})
	if err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// Deregister implements chainstorev1.CatalogServiceServer. Existed is
// what the leader's state held just before the write.
func (s *CatalogServer) Deregister(ctx context.Context, req *chainstorev1.DeregisterRequest) (*chainstorev1.DeregisterResponse, error) {
	if req.GetId() == "" {
		return nil, s.router.status(errNoInstanceID)
	}
	var resp *chainstorev1.DeregisterResponse
	existed := false
	err := s.write(ctx, fsm.Command{Op: fsm.OpDeregister, InstanceID: req.GetId()},
		func(res fsm.ApplyResult) {
			resp = &chainstorev1.DeregisterResponse{Index: res.Index, Existed: existed}
		},
		func(ctx context.Context, c chainstorev1.CatalogServiceClient) (err error) {
			resp, err = c.Deregister(ctx, req)
			return err
		},
		func(ctx context.Context) error {
			if err := s.authorizeInstance(ctx, req.GetId()); err != nil {
				return err
			}
			existed = s.router.fsm.Store().Instance(req.GetId()) != nil
			return nil
		})
	if err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// UpdateCheck implements chainstorev1.CatalogServiceServer.
func (s *CatalogServer) UpdateCheck(ctx context.Context, req *chainstorev1.UpdateCheckRequest) (*chainstorev1.UpdateCheckResponse, error) {
	if req.GetId() == "" {
		return nil, s.router.status(errNoInstanceID)
	}
	h, err := healthFromProto(req.GetStatus())
	if err != nil {
		return nil, s.router.status(&catalog.ValidationError{ID: req.GetId(), Field: "Status", Msg: err.Error()})
	}
	if len(req.GetNote()) > catalog.MaxOutputLen {
		return nil, s.router.status(&catalog.ValidationError{ID: req.GetId(), Field: "Note",
			Msg: fmt.Sprintf("longer than %d bytes", catalog.MaxOutputLen)})
	}
	var resp *chainstorev1.UpdateCheckResponse
	err = s.write(ctx, fsm.Command{Op: fsm.OpCheck, InstanceID: req.GetId(), Status: h, Output: req.GetNote()},
		func(res fsm.ApplyResult) { resp = &chainstorev1.UpdateCheckResponse{Index: res.Index} },
		func(ctx context.Context, c chainstorev1.CatalogServiceClient) (err error) {
			resp, err = c.UpdateCheck(ctx, req)
			return err
		},
		func(ctx context.Context) error { return s.authorizeInstance(ctx, req.GetId()) })
	if err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// authorizeInstance checks service:write on the service of instance id.
// An ID the catalog does not hold needs only a valid token: there is
// nothing to protect, and the write fails or changes nothing.
func (s *CatalogServer) authorizeInstance(ctx context.Context, id string) error {
	var perms []acl.Permission
	if in := s.router.fsm.Store().Instance(id); in != nil {
		perms = append(perms, acl.ServiceWrite(in.Service))
	}
	return s.router.authorize(ctx, perms...)
}

// write proposes cmd on the leader (done gets its result) or forwards the
// request (remote). before runs on the leader just before the proposal
// (the ACL check first); an error from it ends the request.
func (s *CatalogServer) write(ctx context.Context, cmd fsm.Command, done func(fsm.ApplyResult),
	remote func(context.Context, chainstorev1.CatalogServiceClient) error, before func(context.Context) error) error {
	return s.router.onLeader(ctx, true,
		func(ctx context.Context) error {
			if err := before(ctx); err != nil {
				return err
			}
			res, err := s.proposer.Apply(ctx, cmd)
			if err != nil {
				return err
			}
			done(res)
			return nil
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			return remote(ctx, chainstorev1.NewCatalogServiceClient(conn))
		})
}

// Instances implements chainstorev1.CatalogServiceServer.
func (s *CatalogServer) Instances(ctx context.Context, req *chainstorev1.InstancesRequest) (*chainstorev1.InstancesResponse, error) {
	if req.GetService() == "" {
		return nil, s.router.status(&catalog.ValidationError{Field: "Service", Msg: "must be set"})
	}
	var resp *chainstorev1.InstancesResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		if err := s.router.authorize(ctx, acl.ServiceRead(req.GetService())); err != nil {
			return err
		}
		return s.router.blocking(ctx, req.GetOptions(), consistent, func(store *fsm.Store) (uint64, <-chan struct{}, error) {
			instances, idx, watch := store.Instances(req.GetService())
			r := &chainstorev1.InstancesResponse{Meta: s.router.meta(idx)}
			for _, st := range instances {
				if req.GetPassingOnly() && st.Status != catalog.Passing {
					continue
				}
				r.Instances = append(r.Instances, instanceHealthToProto(st))
			}
			resp = r
			return idx, watch, nil
		})
	}
	remote := func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = chainstorev1.NewCatalogServiceClient(conn).Instances(ctx, req)
		return err
	}
	if err := s.router.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// Services implements chainstorev1.CatalogServiceServer.
func (s *CatalogServer) Services(ctx context.Context, req *chainstorev1.ServicesRequest) (*chainstorev1.ServicesResponse, error) {
	var resp *chainstorev1.ServicesResponse
	local := func(ctx context.Context, consistent func(context.Context) error) error {
		az, err := s.router.authorizer(ctx)
		if err != nil {
			return err
		}
		return s.router.blocking(ctx, req.GetOptions(), consistent, func(store *fsm.Store) (uint64, <-chan struct{}, error) {
			services, idx, watch := store.Services()
			r := &chainstorev1.ServicesResponse{Meta: s.router.meta(idx)}
			for _, sum := range services {
				if !az.Allowed(acl.ServiceRead(sum.Name)) {
					continue // only the services the token may read
				}
				r.Services = append(r.Services, &chainstorev1.ServiceSummary{
					Name: sum.Name, Instances: uint32(sum.Instances), Passing: uint32(sum.Passed),
				})
			}
			resp = r
			return idx, watch, nil
		})
	}
	remote := func(ctx context.Context, conn *grpc.ClientConn) (err error) {
		resp, err = chainstorev1.NewCatalogServiceClient(conn).Services(ctx, req)
		return err
	}
	if err := s.router.read(ctx, req.GetOptions().GetConsistency(), local, remote); err != nil {
		return nil, s.router.status(err)
	}
	return resp, nil
}

// instanceFromProto converts a registration. Only the shape is checked
// here; Validate checks the values.
func instanceFromProto(p *chainstorev1.Instance) (*catalog.Instance, error) {
	if p == nil {
		return nil, &catalog.ValidationError{Field: "Instance", Msg: "must be set"}
	}
	in := &catalog.Instance{
		ID: p.GetId(), Service: p.GetService(), Address: p.GetAddress(), Port: int(p.GetPort()),
		Meta: p.GetMeta(), Tags: p.GetTags(), Datacenter: p.GetDatacenter(),
	}
	if d := p.GetTtl(); d != nil {
		if err := d.CheckValid(); err != nil {
			return nil, &catalog.ValidationError{ID: in.ID, Field: "TTL", Msg: err.Error()}
		}
		in.TTL = d.AsDuration()
	}
	return in, nil
}

// healthFromProto converts a check status.
func healthFromProto(h chainstorev1.HealthStatus) (catalog.Health, error) {
	switch h {
	case chainstorev1.HealthStatus_HEALTH_STATUS_PASSING:
		return catalog.Passing, nil
	case chainstorev1.HealthStatus_HEALTH_STATUS_WARNING:
		return catalog.Warning, nil
	case chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL:
		return catalog.Critical, nil
	}
	return 0, fmt.Errorf("%w %q: want PASSING, WARNING or CRITICAL", catalog.ErrUnknownHealth, h.String())
}

// instanceHealthToProto converts a stored instance.
func instanceHealthToProto(st *catalog.Stored) *chainstorev1.InstanceHealth {
	p := &chainstorev1.Instance{
		Id: st.ID, Service: st.Service, Address: st.Address, Port: uint32(st.Port),
		Meta: st.Meta, Tags: st.Tags, Datacenter: st.Datacenter,
	}
	if st.TTL != 0 {
		p.Ttl = durationpb.New(st.TTL)
	}
	var h chainstorev1.HealthStatus
	switch st.Status {
	case catalog.Passing:
		h = chainstorev1.HealthStatus_HEALTH_STATUS_PASSING
	case catalog.Warning:
		h = chainstorev1.HealthStatus_HEALTH_STATUS_WARNING
	case catalog.Critical:
		h = chainstorev1.HealthStatus_HEALTH_STATUS_CRITICAL
	}
	return &chainstorev1.InstanceHealth{Instance: p, Status: h, Output: st.Output,
		CreateIndex: st.CreateIndex, ModifyIndex: st.ModifyIndex}
}

// isCatalogError reports whether err is a catalog input error.
func isCatalogError(err error) bool {
	var ve *catalog.ValidationError
	return errors.As(err, &ve) || errors.Is(err, catalog.ErrUnknownHealth)
}
