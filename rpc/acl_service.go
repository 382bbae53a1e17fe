package rpc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-uuid"
	"google.golang.org/grpc"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// ACLServer implements chainstorev1.ACLServiceServer. Every call runs on
// the leader (reads too, so a token created a moment ago is listed), and
// every call but Bootstrap needs acl:write (mutations) or acl:read.
// Secrets are generated on the leader, returned once and stored only as
// hashes; they are never logged.
type ACLServer struct {
	chainstorev1.UnimplementedACLServiceServer

	router   *router
	proposer *fsm.Proposer
	logger   hclog.Logger
}

var _ chainstorev1.ACLServiceServer = (*ACLServer)(nil)

// Size limits of ACL requests.
const (
	maxACLNameLen        = 128
	maxACLDescriptionLen = 1024
	maxTokenPolicies     = 64
)

// onLeader runs local on the leader after checking that ACLs are on and
// that the token holds perm (none for Bootstrap), or forwards with remote.
func (s *ACLServer) onLeader(ctx context.Context, write bool, perm *acl.Permission,
	local func(ctx context.Context) error, remote func(ctx context.Context, c chainstorev1.ACLServiceClient) error) error {
	if !s.router.cfg.ACL.Enabled {
		return s.router.status(ErrACLDisabled)
	}
	err := s.router.onLeader(ctx, write,
		func(ctx context.Context) error {
			if perm != nil {
				if err := s.router.authorize(ctx, *perm); err != nil {
					return err
				}
			}
			return local(ctx)
		},
		func(ctx context.Context, conn *grpc.ClientConn) error {
			return remote(ctx, chainstorev1.NewACLServiceClient(conn))
		})
	return s.router.status(err)
}

// newSecret returns a fresh random UUID.
func newSecret() (string, error) {
	id, err := uuid.GenerateUUID()
	if err != nil {
		return "", fmt.Errorf("generate ID: %w", err)
	}
	return id, nil
}

// Bootstrap implements chainstorev1.ACLServiceServer.
func (s *ACLServer) Bootstrap(ctx context.Context, req *chainstorev1.BootstrapRequest) (*chainstorev1.BootstrapResponse, error) {
	var resp *chainstorev1.BootstrapResponse
	err := s.onLeader(ctx, true, nil, func(ctx context.Context) error {
		reset, err := s.resetIndex()
		if err != nil {
			return err
		}
		accessor, err := newSecret()
		if err != nil {
			return err
		}
		secret, err := newSecret()
		if err != nil {
			return err
		}
		res, err := s.proposer.Apply(ctx, fsm.Command{Op: fsm.OpACLBootstrap, ACLResetIndex: reset,
			ACLToken: &fsm.ACLToken{AccessorID: accessor, SecretHash: acl.HashSecret(secret), Description: "Bootstrap Token (Global Management)"}})
		if err != nil {
			return err
		}
		if reset != 0 {
			if err := os.Remove(s.router.cfg.ACL.BootstrapResetFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
				s.logger.Warn("could not remove the ACL bootstrap reset file", "error", err)
			}
		}
		s.logger.Info("ACL system bootstrapped", "accessor_id", accessor, "index", res.Index)
		resp = &chainstorev1.BootstrapResponse{Token: &chainstorev1.ACLToken{
			AccessorId: accessor, SecretId: secret, Description: "Bootstrap Token (Global Management)",
			Policies:    []*chainstorev1.ACLPolicyLink{{Id: acl.GlobalManagementPolicyID, Name: acl.GlobalManagementPolicyName}},
			CreateIndex: res.Index, ModifyIndex: res.Index,
		}}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.Bootstrap(ctx, req)
		return err
	})
	return resp, err
}

// resetIndex reads the leader's bootstrap reset file (0 when there is
// none or resets are disabled).
func (s *ACLServer) resetIndex() (uint64, error) {
	path := s.router.cfg.ACL.BootstrapResetFile
	if path == "" {
		return 0, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read ACL bootstrap reset file: %w", err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, &fsm.ACLError{Msg: fmt.Sprintf("ACL bootstrap reset file %s does not hold an index: %v", path, err)}
	}
	return v, nil
}

func checkACLName(what, name, description string) error {
	switch {
	case name == "":
		return &fsm.ACLError{Msg: what + " name must be set"}
	case len(name) > maxACLNameLen:
		return &fsm.ACLError{Msg: fmt.Sprintf("%s name longer than %d bytes", what, maxACLNameLen)}
	case len(description) > maxACLDescriptionLen:
		return &fsm.ACLError{Msg: fmt.Sprintf("%s description longer than %d bytes", what, maxACLDescriptionLen)}
	}
	return nil
}

// PolicyCreate implements chainstorev1.ACLServiceServer.
func (s *ACLServer) PolicyCreate(ctx context.Context, req *chainstorev1.PolicyCreateRequest) (*chainstorev1.PolicyCreateResponse, error) {
	if err := checkACLName("policy", req.GetName(), req.GetDescription()); err != nil {
		return nil, s.router.status(err)
	}
	if _, err := acl.Parse(req.GetRules()); err != nil {
		return nil, s.router.status(err)
	}
	var resp *chainstorev1.PolicyCreateResponse
	err := s.onLeader(ctx, true, &acl.ACLWrite, func(ctx context.Context) error {
		id, err := newSecret()
		if err != nil {
			return err
		}
		p := &fsm.ACLPolicy{ID: id, Name: req.GetName(), Description: req.GetDescription(), Rules: req.GetRules()}
		res, err := s.proposer.Apply(ctx, fsm.Command{Op: fsm.OpACLPolicySet, ACLPolicy: p})
		if err != nil {
			return err
		}
		p.CreateIndex, p.ModifyIndex = res.Index, res.Index
		resp = &chainstorev1.PolicyCreateResponse{Policy: policyToProto(p)}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.PolicyCreate(ctx, req)
		return err
	})
	return resp, err
}

func policyToProto(p *fsm.ACLPolicy) *chainstorev1.ACLPolicy {
	return &chainstorev1.ACLPolicy{Id: p.ID, Name: p.Name, Description: p.Description, Rules: p.Rules,
		CreateIndex: p.CreateIndex, ModifyIndex: p.ModifyIndex}
}

// globalManagement is the built-in policy as the API shows it.
func globalManagement() *chainstorev1.ACLPolicy {
	return &chainstorev1.ACLPolicy{Id: acl.GlobalManagementPolicyID, Name: acl.GlobalManagementPolicyName,
		Description: "Builtin Policy that grants unlimited access", Rules: acl.GlobalManagementRules}
}

// findPolicy looks a policy up by ID or name (built-in included).
func findPolicy(v *fsm.View, id, name string) (*chainstorev1.ACLPolicy, error) {
	switch {
	case id == acl.GlobalManagementPolicyID || (id == "" && strings.EqualFold(name, acl.GlobalManagementPolicyName)):
		return globalManagement(), nil
	case id != "":
		if p := v.ACLPolicy(id); p != nil {
			return policyToProto(p), nil
		}
		return nil, &fsm.ACLError{Msg: fmt.Sprintf("no policy with ID %q", id)}
	case name != "":
		if p := v.ACLPolicyByName(name); p != nil {
			return policyToProto(p), nil
		}
		return nil, &fsm.ACLError{Msg: fmt.Sprintf("no policy named %q", name)}
	}
	return nil, &fsm.ACLError{Msg: "a policy ID or name must be given"}
}

// PolicyList implements chainstorev1.ACLServiceServer.
func (s *ACLServer) PolicyList(ctx context.Context, req *chainstorev1.PolicyListRequest) (*chainstorev1.PolicyListResponse, error) {
	var resp *chainstorev1.PolicyListResponse
	err := s.onLeader(ctx, false, &acl.ACLRead, func(ctx context.Context) error {
		if err := s.router.consistentRead(ctx); err != nil {
			return err
		}
		r := &chainstorev1.PolicyListResponse{Policies: []*chainstorev1.ACLPolicy{globalManagement()}}
		for _, p := range s.router.fsm.Store().View().ACLPolicies() {
			r.Policies = append(r.Policies, policyToProto(p))
		}
		sort.Slice(r.Policies, func(i, j int) bool { return r.Policies[i].Name < r.Policies[j].Name })
		resp = r
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.PolicyList(ctx, req)
		return err
	})
	return resp, err
}

// PolicyRead implements chainstorev1.ACLServiceServer.
func (s *ACLServer) PolicyRead(ctx context.Context, req *chainstorev1.PolicyReadRequest) (*chainstorev1.PolicyReadResponse, error) {
	var resp *chainstorev1.PolicyReadResponse
	err := s.onLeader(ctx, false, &acl.ACLRead, func(ctx context.Context) error {
		if err := s.router.consistentRead(ctx); err != nil {
			return err
		}
		p, err := findPolicy(s.router.fsm.Store().View(), req.GetId(), req.GetName())
		if err != nil {
			return err
		}
		resp = &chainstorev1.PolicyReadResponse{Policy: p}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.PolicyRead(ctx, req)
		return err
	})
	return resp, err
}

// PolicyDelete implements chainstorev1.ACLServiceServer.
func (s *ACLServer) PolicyDelete(ctx context.Context, req *chainstorev1.PolicyDeleteRequest) (*chainstorev1.PolicyDeleteResponse, error) {
	var resp *chainstorev1.PolicyDeleteResponse
	err := s.onLeader(ctx, true, &acl.ACLWrite, func(ctx context.Context) error {
		if err := s.router.consistentRead(ctx); err != nil {
			return err
		}
		p, err := findPolicy(s.router.fsm.Store().View(), req.GetId(), req.GetName())
		if err != nil {
			return err
		}
		res, err := s.proposer.Apply(ctx, fsm.Command{Op: fsm.OpACLPolicyDelete, ACLID: p.GetId()})
		if err != nil {
			return err
		}
		resp = &chainstorev1.PolicyDeleteResponse{Deleted: true, Index: res.Index}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.PolicyDelete(ctx, req)
		return err
	})
	return resp, err
}

// TokenCreate implements chainstorev1.ACLServiceServer. With Consul's
// model, acl:write is what it takes to create any token, so a token
// without it cannot mint one broader than itself.
func (s *ACLServer) TokenCreate(ctx context.Context, req *chainstorev1.TokenCreateRequest) (*chainstorev1.TokenCreateResponse, error) {
	if len(req.GetDescription()) > maxACLDescriptionLen {
		return nil, s.router.status(&fsm.ACLError{Msg: fmt.Sprintf("token description longer than %d bytes", maxACLDescriptionLen)})
	}
	if len(req.GetPolicyNames()) > maxTokenPolicies {
		return nil, s.router.status(&fsm.ACLError{Msg: fmt.Sprintf("more than %d policies", maxTokenPolicies)})
	}
	var resp *chainstorev1.TokenCreateResponse
	err := s.onLeader(ctx, true, &acl.ACLWrite, func(ctx context.Context) error {
		if err := s.router.consistentRead(ctx); err != nil {
			return err
		}
		v := s.router.fsm.Store().View()
		var links []*chainstorev1.ACLPolicyLink
		var ids []string
		for _, name := range req.GetPolicyNames() {
			p, err := findPolicy(v, "", name)
			if err != nil {
				return err
			}
			links = append(links, &chainstorev1.ACLPolicyLink{Id: p.GetId(), Name: p.GetName()})
			ids = append(ids, p.GetId())
		}
		accessor, err := newSecret()
		if err != nil {
			return err
		}
		secret, err := newSecret()
		if err != nil {
			return err
		}
		t := &fsm.ACLToken{AccessorID: accessor, SecretHash: acl.HashSecret(secret), Description: req.GetDescription(), Policies: ids}
		res, err := s.proposer.Apply(ctx, fsm.Command{Op: fsm.OpACLTokenSet, ACLToken: t})
		if err != nil {
			return err
		}
		resp = &chainstorev1.TokenCreateResponse{Token: &chainstorev1.ACLToken{AccessorId: accessor, SecretId: secret,
			Description: t.Description, Policies: links, CreateIndex: res.Index, ModifyIndex: res.Index}}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.TokenCreate(ctx, req)
		return err
	})
	return resp, err
}

// tokenToProto shows a stored token without any secret.
func tokenToProto(v *fsm.View, t *fsm.ACLToken) *chainstorev1.ACLToken {
	out := &chainstorev1.ACLToken{AccessorId: t.AccessorID, Description: t.Description, CreateIndex: t.CreateIndex, ModifyIndex: t.ModifyIndex}
	for _, id := range t.Policies {
		link := &chainstorev1.ACLPolicyLink{Id: id}
		if p, err := findPolicy(v, id, ""); err == nil {
			link.Name = p.GetName()
		}
		out.Policies = append(out.Policies, link)
	}
	return out
}

// anonymousToken is the built-in token of requests without one.
func anonymousToken() *chainstorev1.ACLToken {
	return &chainstorev1.ACLToken{AccessorId: acl.AnonymousTokenID, Description: "Anonymous Token"}
}

// TokenList implements chainstorev1.ACLServiceServer.
func (s *ACLServer) TokenList(ctx context.Context, req *chainstorev1.TokenListRequest) (*chainstorev1.TokenListResponse, error) {
	var resp *chainstorev1.TokenListResponse
	err := s.onLeader(ctx, false, &acl.ACLRead, func(ctx context.Context) error {
		if err := s.router.consistentRead(ctx); err != nil {
			return err
		}
		v := s.router.fsm.Store().View()
		r := &chainstorev1.TokenListResponse{Tokens: []*chainstorev1.ACLToken{anonymousToken()}}
		for _, t := range v.ACLTokens() {
			r.Tokens = append(r.Tokens, tokenToProto(v, t))
		}
		sort.Slice(r.Tokens, func(i, j int) bool { return r.Tokens[i].AccessorId < r.Tokens[j].AccessorId })
		resp = r
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.TokenList(ctx, req)
		return err
	})
	return resp, err
}

// TokenRead implements chainstorev1.ACLServiceServer.
func (s *ACLServer) TokenRead(ctx context.Context, req *chainstorev1.TokenReadRequest) (*chainstorev1.TokenReadResponse, error) {
	var resp *chainstorev1.TokenReadResponse
	err := s.onLeader(ctx, false, &acl.ACLRead, func(ctx context.Context) error {
		if err := s.router.consistentRead(ctx); err != nil {
			return err
		}
		if req.GetAccessorId() == acl.AnonymousTokenID {
			resp = &chainstorev1.TokenReadResponse{Token: anonymousToken()}
			return nil
		}
		v := s.router.fsm.Store().View()
		t := v.ACLToken(req.GetAccessorId())
		if t == nil {
			return &fsm.ACLError{Msg: fmt.Sprintf("no token with AccessorID %q", req.GetAccessorId())}
		}
		resp = &chainstorev1.TokenReadResponse{Token: tokenToProto(v, t)}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.TokenRead(ctx, req)
		return err
	})
	return resp, err
}

// TokenDelete implements chainstorev1.ACLServiceServer.
func (s *ACLServer) TokenDelete(ctx context.Context, req *chainstorev1.TokenDeleteRequest) (*chainstorev1.TokenDeleteResponse, error) {
	if req.GetAccessorId() == "" || req.GetAccessorId() == acl.AnonymousTokenID {
		return nil, s.router.status(&fsm.ACLError{Msg: "give the AccessorID of a token other than the anonymous token"})
	}
	var resp *chainstorev1.TokenDeleteResponse
	err := s.onLeader(ctx, true, &acl.ACLWrite, func(ctx context.Context) error {
		res, err := s.proposer.Apply(ctx, fsm.Command{Op: fsm.OpACLTokenDelete, ACLID: req.GetAccessorId()})
		if err != nil {
			return err
		}
		resp = &chainstorev1.TokenDeleteResponse{Deleted: true, Index: res.Index}
		return nil
	}, func(ctx context.Context, c chainstorev1.ACLServiceClient) (err error) {
		resp, err = c.TokenDelete(ctx, req)
		return err
	})
	return resp, err
}
