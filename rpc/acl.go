package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/acl"
	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
)

// ACL default policies.
const (
	ACLPolicyAllow = "allow"
	ACLPolicyDeny  = "deny"
)

// ACLConfig configures ACL enforcement (docs/acl.md).
type ACLConfig struct {
	// Enabled turns enforcement on. Off, every request is allowed and the
	// ACL service answers that ACLs are disabled.
	Enabled bool
	// DefaultPolicy decides what no rule covers: "deny" or "allow".
	DefaultPolicy string
	// BootstrapResetFile is the file an operator writes the reset index
	// into to allow one more bootstrap ("" disables resets). Only the
	// leader's file counts; it is removed after a successful bootstrap.
	BootstrapResetFile string
}

// DefaultACLConfig returns ACLs off with the deny default.
func DefaultACLConfig() ACLConfig { return ACLConfig{DefaultPolicy: ACLPolicyDeny} }

// Validate reports the first invalid field.
func (c ACLConfig) Validate() error {
	if c.DefaultPolicy != ACLPolicyAllow && c.DefaultPolicy != ACLPolicyDeny {
		return fmt.Errorf("ACL default policy must be %q or %q, got %q", ACLPolicyAllow, ACLPolicyDeny, c.DefaultPolicy)
	}
	return nil
}

var (
	// ErrACLNotFound reports a request whose token matches no stored token
	// (wrong or deleted). Consul's text; PermissionDenied.
	ErrACLNotFound = errors.New("ACL not found")
	// ErrACLDisabled reports an ACL call on a server without ACLs.
	ErrACLDisabled = errors.New("ACL support disabled")
)

// tokenFrom returns the secret the request carries in its incoming
// metadata ("" for none).
func tokenFrom(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, api.TokenMetadataKey); len(v) > 0 {
		return v[0]
	}
	return ""
}

// withForwardedToken copies the caller's token into the outgoing metadata
// of a request forwarded to the leader, which checks it again against its
// own state: a follower passes the token on, never a decision.
func withForwardedToken(ctx context.Context) context.Context {
	if tok := tokenFrom(ctx); tok != "" {
		return metadata.AppendToOutgoingContext(ctx, api.TokenMetadataKey, tok)
	}
	return ctx
}

// aclResolver turns a secret into an Authorizer from the local FSM state.
// Results are cached per secret hash until the ACL state (ACLIndex) or the
// store (a snapshot restore) changes.
type aclResolver struct {
	cfg      ACLConfig
	fsm      FSM
	fallback acl.Authorizer

	mu       sync.Mutex // guards everything below
	store    *fsm.Store
	index    uint64
	cache    map[string]acl.Authorizer // by secret hash
	policies map[string]cachedPolicy   // by policy ID
}

type cachedPolicy struct {
	modify uint64
	p      *acl.Policy
}

// maxCachedTokens bounds the authorizer cache; it is cleared when full.
const maxCachedTokens = 4096

func newACLResolver(cfg ACLConfig, f FSM) *aclResolver {
	fb := acl.DenyAll
	if cfg.DefaultPolicy == ACLPolicyAllow {
		fb = acl.AllowAll
	}
	return &aclResolver{cfg: cfg, fsm: f, fallback: fb}
}

// resolve returns the authorizer of secret ("" is the anonymous token,
// which holds no policy). An unknown secret fails with ErrACLNotFound.
func (a *aclResolver) resolve(secret string) (acl.Authorizer, error) {
	if !a.cfg.Enabled {
		return acl.AllowAll, nil
	}
	if secret == "" {
		return acl.NewAuthorizer(a.fallback), nil
	}
	h := acl.HashSecret(secret)
	store := a.fsm.Store()
	v := store.View()
	idx := v.ACLIndex()

	a.mu.Lock()
	defer a.mu.Unlock()
	if store != a.store || idx != a.index || len(a.cache) >= maxCachedTokens {
		if store != a.store {
			a.policies = nil
		}
		a.store, a.index, a.cache = store, idx, map[string]acl.Authorizer{}
	}
	if az, ok := a.cache[h]; ok {
		return az, nil
	}
	t := v.ACLTokenBySecretHash(h)
	if t == nil {
		return nil, ErrACLNotFound
	}
	var ps []*acl.Policy
	az := acl.Authorizer(nil)
	for _, id := range t.Policies {
		if id == acl.GlobalManagementPolicyID {
			az = acl.AllowAll
			break
		}
		sp := v.ACLPolicy(id)
		if sp == nil {
			continue // deleted policy: grants nothing
		}
		if c, ok := a.policies[id]; ok && c.modify == sp.ModifyIndex {
			ps = append(ps, c.p)
			continue
		}
		p, err := acl.Parse(sp.Rules)
		if err != nil {
			// Rules were checked before they were stored; a policy that
			// no longer parses grants nothing.
			continue
		}
		if a.policies == nil {
			a.policies = map[string]cachedPolicy{}
		}
		a.policies[id] = cachedPolicy{sp.ModifyIndex, p}
		ps = append(ps, p)
	}
	if az == nil {
		az = acl.NewAuthorizer(a.fallback, ps...)
	}
	a.cache[h] = az
	return az, nil
}

// authorizer resolves the token of the request in ctx.
func (r *router) authorizer(ctx context.Context) (acl.Authorizer, error) {
	return r.acl.resolve(tokenFrom(ctx))
}

// authorize checks that the request's token holds every permission in
// perms, returning a *acl.DeniedError naming the first one missing, or
// ErrACLNotFound. It reads this server's own state: it is called where a
// request is executed (on the leader for forwarded requests), never
// before forwarding.
func (r *router) authorize(ctx context.Context, perms ...acl.Permission) error {
	az, err := r.authorizer(ctx)
	if err != nil {
		return err
	}
	for _, p := range perms {
		if err := acl.Check(az, p); err != nil {
			return err
		}
	}
	return nil
}

// Authorize checks the token of the incoming request in ctx against perm
// on this server and returns nil or a gRPC status (PermissionDenied). It
// is the one-line check for services registered beside these (snapshot,
// keyring: acl.OperatorWrite).
func (s *Services) Authorize(ctx context.Context, perms ...acl.Permission) error {
	if err := s.router.authorize(ctx, perms...); err != nil {
		return s.router.status(err)
	}
	return nil
}

// entryReadPerms are the permissions reading an entry needs:
// service:read on its name; proxy-defaults can be read with any valid
// token, as in Consul.
func entryReadPerms(kind chain.Kind, name string) []acl.Permission {
	if kind == chain.KindProxyDefaults {
		return nil
	}
	return []acl.Permission{acl.ServiceRead(name)}
}

// entryWritePerms are the permissions writing e needs: service:write on
// its name and service:read on every other service it references
// (router destinations, splitter legs, resolver redirect and failover
// targets); proxy-defaults needs operator:write.
func entryWritePerms(e chain.Entry) []acl.Permission {
	if e.GetKind() == chain.KindProxyDefaults {
		return []acl.Permission{acl.OperatorWrite}
	}
	perms := []acl.Permission{acl.ServiceWrite(e.GetName())}
	for _, ref := range e.References() {
		perms = append(perms, acl.ServiceRead(ref))
	}
	return perms
}

// deletePerms are the permissions deleting the entry at (kind, name)
// needs: those of writing it, without the references.
func deletePerms(kind chain.Kind, name string) []acl.Permission {
	if kind == chain.KindProxyDefaults {
		return []acl.Permission{acl.OperatorWrite}
	}
	return []acl.Permission{acl.ServiceWrite(name)}
}

// aclStatus translates the ACL errors for statusOf; nil for any other
// error.
func aclStatus(err error) error {
	var denied *acl.DeniedError
	var ae *fsm.ACLError
	switch {
	case errors.As(err, &denied):
		return withInfo(codes.PermissionDenied, denied.Error(), api.ReasonPermissionDenied,
			map[string]string{api.MetaPermission: denied.Perm.String(), api.MetaName: denied.Perm.Name})
	case errors.Is(err, ErrACLNotFound):
		return withInfo(codes.PermissionDenied, ErrACLNotFound.Error(), api.ReasonACLNotFound, nil)
	case errors.Is(err, ErrACLDisabled):
		return status.Error(codes.FailedPrecondition, ErrACLDisabled.Error())
	case errors.As(err, &ae) && ae.Bootstrapped:
		return status.Error(codes.FailedPrecondition, ae.Error())
	case errors.As(err, &ae):
		return status.Error(codes.InvalidArgument, ae.Error())
	case errors.Is(err, acl.ErrInvalidRules):
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}

// allowedAll reports whether az allows every permission in perms.
func allowedAll(az acl.Authorizer, perms []acl.Permission) bool {
	for _, p := range perms {
		if !az.Allowed(p) {
			return false
		}
	}
	return true
}

// ACLResolver resolves tokens for other servers of the process (the xDS
// server) with the same rules and cache as the gRPC services.
type ACLResolver struct{ r *aclResolver }

// NewACLResolver returns a resolver over f's state with cfg's settings.
func NewACLResolver(cfg ACLConfig, f FSM) *ACLResolver {
	return &ACLResolver{r: newACLResolver(cfg, f)}
}

// ServiceReader resolves secret ("" for the anonymous token) to the test
// of service:read; it fails with ErrACLNotFound for an unknown token. Its
// signature is xdsserver.Authorizer's.
func (a *ACLResolver) ServiceReader(secret string) (func(service string) bool, error) {
	az, err := a.r.resolve(secret)
	if err != nil {
		return nil, err
	}
	return func(service string) bool { return az.Allowed(acl.ServiceRead(service)) }, nil
}
