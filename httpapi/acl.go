package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/chainstore/chainstore/acl"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/rpc"
)

// The /v1/acl/* endpoints: Consul's paths and JSON shapes over the rpc ACL
// service. chainstore's ACL model has policies and tokens only: no roles,
// auth methods, binding rules, namespaces, partitions, token expiry or
// local tokens, and policies and tokens cannot be updated in place; those
// requests are refused with a message saying so, never half-applied.

// aclPolicyJSON is Consul's ACLPolicy.
type aclPolicyJSON struct {
	ID          string
	Name        string
	Description string
	Rules       string
	Datacenters []string
	CreateIndex uint64
	ModifyIndex uint64
}

// aclPolicyListEntryJSON is Consul's ACLPolicyListEntry (no rules).
type aclPolicyListEntryJSON struct {
	ID          string
	Name        string
	Description string
	Datacenters []string
	CreateIndex uint64
	ModifyIndex uint64
}

// aclPolicyLinkJSON is Consul's ACLTokenPolicyLink.
type aclPolicyLinkJSON struct {
	ID   string
	Name string
}

// aclTokenJSON is Consul's ACLToken (and ACLTokenListEntry). SecretID is
// only ever set in the answers of bootstrap and token create.
type aclTokenJSON struct {
	CreateIndex uint64
	ModifyIndex uint64
	AccessorID  string
	SecretID    string
	Description string
	Policies    []aclPolicyLinkJSON `json:",omitempty"`
	Local       bool
}

// aclPolicyRequest is what a client may send to create a policy: Consul's
// ACLPolicy with every field it has, so the unsupported ones can be named.
type aclPolicyRequest struct {
	ID          string
	Name        string
	Description string
	Rules       string
	Datacenters []string
	Hash        []byte
	CreateIndex uint64
	ModifyIndex uint64
	Namespace   string
	Partition   string
}

// aclTokenRequest is what a client may send to create a token: Consul's
// ACLToken with every field it has.
type aclTokenRequest struct {
	CreateIndex         uint64
	ModifyIndex         uint64
	Name                string
	AccessorID          string
	SecretID            string
	Description         string
	Policies            []aclPolicyLinkJSON
	Roles               []json.RawMessage
	ServiceIdentities   []json.RawMessage
	NodeIdentities      []json.RawMessage
	TemplatedPolicies   []json.RawMessage
	Local               bool
	AuthMethod          string
	ExpirationTTL       time.Duration
	ExpirationTime      *time.Time
	CreateTime          time.Time
	Hash                []byte
	Namespace           string
	Partition           string
	AuthMethodNamespace string
}

func policyJSON(p *chainstorev1.ACLPolicy) aclPolicyJSON {
	return aclPolicyJSON{ID: p.GetId(), Name: p.GetName(), Description: p.GetDescription(), Rules: p.GetRules(),
		CreateIndex: p.GetCreateIndex(), ModifyIndex: p.GetModifyIndex()}
}

// tokenJSON converts a token; withSecret is true only for the answers
// that create one.
func tokenJSON(t *chainstorev1.ACLToken, withSecret bool) aclTokenJSON {
	out := aclTokenJSON{CreateIndex: t.GetCreateIndex(), ModifyIndex: t.GetModifyIndex(),
		AccessorID: t.GetAccessorId(), Description: t.GetDescription()}
	if withSecret {
		out.SecretID = t.GetSecretId()
	}
	for _, l := range t.GetPolicies() {
		out.Policies = append(out.Policies, aclPolicyLinkJSON{ID: l.GetId(), Name: l.GetName()})
	}
	return out
}

// aclError maps the ACL service's errors to Consul's answers: ACLs off is
// a 401 "ACL support disabled"; everything else as errorResponse does.
func aclError(err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.FailedPrecondition && st.Message() == rpc.ErrACLDisabled.Error() {
		return &httpError{code: http.StatusUnauthorized, msg: st.Message()}
	}
	return err
}

// bootstrapRefused is the start of the message of a refused bootstrap,
// as ACLService.Bootstrap documents it (acl.proto).
const bootstrapRefused = "ACL bootstrap no longer allowed"

// aclNotFound maps a read or delete of a policy or token that does not
// exist (InvalidArgument from the service, whose message names it) to
// Consul's answer: 403 "ACL not found".
func aclNotFound(err error) error {
	if status.Code(err) == codes.InvalidArgument {
		return &httpError{code: http.StatusForbidden, msg: "ACL not found"}
	}
	return aclError(err)
}

// notImplemented is a 501 naming what chainstore does not have.
func notImplemented(msg string) handlerFunc {
	return func(http.ResponseWriter, *http.Request) error {
		return &httpError{code: http.StatusNotImplemented, msg: msg}
	}
}

// checkACLScope refuses namespaces and partitions (Consul Enterprise)
// and other datacenters.
func (s *Server) checkACLScope(r *http.Request) error {
	if err := s.checkDC(r); err != nil {
		return err
	}
	q := r.URL.Query()
	for _, p := range []string{"ns", "partition"} {
		if v := q.Get(p); v != "" && v != "default" {
			return badRequest("?%s=%s: chainstore has no namespaces or partitions", p, v)
		}
	}
	return nil
}

// decodeStrict decodes body into v, naming an unknown key.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("Request decoding failed: %v", err)
	}
	return nil
}

func (s *Server) aclBootstrap(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) > 0 {
		var req struct{ BootstrapSecret string }
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if req.BootstrapSecret != "" {
			return badRequest("BootstrapSecret: chainstore generates the bootstrap token's secret itself; send no body")
		}
	}
	resp, err := s.backend.Bootstrap(requestContext(r), &chainstorev1.BootstrapRequest{})
	if st, ok := status.FromError(err); ok && st.Code() == codes.FailedPrecondition && strings.HasPrefix(st.Message(), bootstrapRefused) {
		// Consul answers a refused bootstrap as a permission error.
		return &httpError{code: http.StatusForbidden, msg: "Permission denied: " + st.Message()}
	}
	if err != nil {
		return aclError(err)
	}
	return writeJSON(w, tokenJSON(resp.GetToken(), true))
}

func (s *Server) aclPolicyCreate(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var p aclPolicyRequest
	if err := decodeStrict(body, &p); err != nil {
		return err
	}
	switch {
	case p.ID != "":
		return badRequest("Cannot specify an ID in Policy Creation")
	case p.Namespace != "" && p.Namespace != "default", p.Partition != "" && p.Partition != "default":
		return badRequest("Namespace, Partition: chainstore has no namespaces or partitions")
	}
	for _, dc := range p.Datacenters {
		if dc != s.cfg.Datacenter {
			return badRequest("Datacenters: %q is not this cluster's datacenter %q (a chainstore cluster is one datacenter)", dc, s.cfg.Datacenter)
		}
	}
	resp, err := s.backend.PolicyCreate(requestContext(r), &chainstorev1.PolicyCreateRequest{Name: p.Name, Description: p.Description, Rules: p.Rules})
	if err != nil {
		return aclError(err)
	}
	return writeJSON(w, policyJSON(resp.GetPolicy()))
}

func (s *Server) aclPolicyRead(w http.ResponseWriter, r *http.Request) error {
	return s.policyRead(w, r, &chainstorev1.PolicyReadRequest{Id: r.PathValue("id")})
}

func (s *Server) aclPolicyReadByName(w http.ResponseWriter, r *http.Request) error {
	return s.policyRead(w, r, &chainstorev1.PolicyReadRequest{Name: r.PathValue("name")})
}

func (s *Server) policyRead(w http.ResponseWriter, r *http.Request, req *chainstorev1.PolicyReadRequest) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	resp, err := s.backend.PolicyRead(requestContext(r), req)
	if err != nil {
		return aclNotFound(err)
	}
	setIndex(w, resp.GetPolicy().GetModifyIndex())
	return writeJSON(w, policyJSON(resp.GetPolicy()))
}

func (s *Server) aclPolicyDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	id := r.PathValue("id")
	if _, err := s.backend.PolicyDelete(requestContext(r), &chainstorev1.PolicyDeleteRequest{Id: id}); err != nil {
		if id == acl.GlobalManagementPolicyID {
			return aclError(err) // 400: the built-in policy cannot be deleted
		}
		return aclNotFound(err)
	}
	return writeJSON(w, true)
}

func (s *Server) aclPolicyList(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	resp, err := s.backend.PolicyList(requestContext(r), &chainstorev1.PolicyListRequest{})
	if err != nil {
		return aclError(err)
	}
	out := make([]aclPolicyListEntryJSON, 0, len(resp.GetPolicies()))
	var idx uint64
	for _, p := range resp.GetPolicies() {
		out = append(out, aclPolicyListEntryJSON{ID: p.GetId(), Name: p.GetName(), Description: p.GetDescription(),
			CreateIndex: p.GetCreateIndex(), ModifyIndex: p.GetModifyIndex()})
		idx = max(idx, p.GetModifyIndex())
	}
	setIndex(w, idx)
	return writeJSON(w, out)
}

func (s *Server) aclTokenCreate(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	var t aclTokenRequest
	if err := decodeStrict(body, &t); err != nil {
		return err
	}
	switch {
	case t.AccessorID != "" || t.SecretID != "":
		return badRequest("AccessorID, SecretID: chainstore generates both; leave them empty")
	case len(t.Roles) > 0:
		return badRequest("Roles: chainstore's ACL model has no roles; link policies directly")
	case len(t.ServiceIdentities) > 0 || len(t.NodeIdentities) > 0 || len(t.TemplatedPolicies) > 0:
		return badRequest("ServiceIdentities, NodeIdentities, TemplatedPolicies: not supported by chainstore; link policies directly")
	case t.Local:
		return badRequest("Local: a chainstore cluster is one datacenter and has no local tokens")
	case t.AuthMethod != "" || t.AuthMethodNamespace != "":
		return badRequest("AuthMethod: chainstore has no auth methods")
	case t.ExpirationTTL != 0 || t.ExpirationTime != nil:
		return badRequest("ExpirationTTL, ExpirationTime: chainstore tokens do not expire; delete them instead")
	case t.Namespace != "" && t.Namespace != "default", t.Partition != "" && t.Partition != "default":
		return badRequest("Namespace, Partition: chainstore has no namespaces or partitions")
	}
	ctx := requestContext(r)
	names := make([]string, 0, len(t.Policies))
	for _, l := range t.Policies {
		switch {
		case l.ID != "":
			p, err := s.backend.PolicyRead(ctx, &chainstorev1.PolicyReadRequest{Id: l.ID})
			if status.Code(err) == codes.InvalidArgument {
				return badRequest("cannot find policy %s", l.ID)
			} else if err != nil {
				return aclError(err)
			}
			names = append(names, p.GetPolicy().GetName())
		case l.Name != "":
			names = append(names, l.Name)
		default:
			return badRequest("Policies: a policy link needs an ID or a Name")
		}
	}
	resp, err := s.backend.TokenCreate(ctx, &chainstorev1.TokenCreateRequest{Description: t.Description, PolicyNames: names})
	if err != nil {
		return aclError(err)
	}
	return writeJSON(w, tokenJSON(resp.GetToken(), true))
}

// aclTokenRead is GET /v1/acl/token/:accessor, and GET
// /v1/acl/token/self (one route: ServeMux cannot hold both patterns
// beside the other methods of the first).
func (s *Server) aclTokenRead(w http.ResponseWriter, r *http.Request) error {
	if r.PathValue("accessor") == "self" {
		return s.aclTokenSelf(w, r)
	}
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	if r.URL.Query().Has("expanded") {
		return badRequest("?expanded: not supported by chainstore; read the token's policies with /v1/acl/policy/:id")
	}
	resp, err := s.backend.TokenRead(requestContext(r), &chainstorev1.TokenReadRequest{AccessorId: r.PathValue("accessor")})
	if err != nil {
		return aclNotFound(err)
	}
	setIndex(w, resp.GetToken().GetModifyIndex())
	return writeJSON(w, tokenJSON(resp.GetToken(), false))
}

func (s *Server) aclTokenSelf(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	t, err := s.backend.TokenSelf(requestContext(r))
	if err != nil {
		return aclError(err)
	}
	setIndex(w, t.GetModifyIndex())
	return writeJSON(w, tokenJSON(t, false))
}

func (s *Server) aclTokenDelete(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	accessor := r.PathValue("accessor")
	if _, err := s.backend.TokenDelete(requestContext(r), &chainstorev1.TokenDeleteRequest{AccessorId: accessor}); err != nil {
		if accessor == acl.AnonymousTokenID {
			return aclError(err) // 400: the anonymous token cannot be deleted
		}
		return aclNotFound(err)
	}
	return writeJSON(w, true)
}

func (s *Server) aclTokenList(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkACLScope(r); err != nil {
		return err
	}
	for _, p := range []string{"policy", "role", "authmethod", "servicename"} {
		if r.URL.Query().Get(p) != "" {
			return badRequest("?%s: filtering the token list is not supported by chainstore", p)
		}
	}
	resp, err := s.backend.TokenList(requestContext(r), &chainstorev1.TokenListRequest{})
	if err != nil {
		return aclError(err)
	}
	out := make([]aclTokenJSON, 0, len(resp.GetTokens()))
	var idx uint64
	for _, t := range resp.GetTokens() {
		out = append(out, tokenJSON(t, false))
		idx = max(idx, t.GetModifyIndex())
	}
	setIndex(w, idx)
	return writeJSON(w, out)
}

// setIndex writes X-Consul-Index (at least 1).
func setIndex(w http.ResponseWriter, idx uint64) {
	w.Header().Set("X-Consul-Index", strconv.FormatUint(max(idx, 1), 10))
}

// aclRoutes registers /v1/acl/*.
func (s *Server) aclRoutes() {
	s.route("/v1/acl/bootstrap", map[string]handlerFunc{http.MethodPut: s.aclBootstrap})
	s.route("/v1/acl/policy", map[string]handlerFunc{http.MethodPut: s.aclPolicyCreate})
	s.route("/v1/acl/policy/{id}", map[string]handlerFunc{http.MethodGet: s.aclPolicyRead, http.MethodDelete: s.aclPolicyDelete,
		http.MethodPut: notImplemented("updating a policy is not supported by chainstore: create a new policy, move the tokens to it, and delete the old one")})
	s.route("/v1/acl/policy/name/{name}", map[string]handlerFunc{http.MethodGet: s.aclPolicyReadByName})
	s.route("/v1/acl/policies", map[string]handlerFunc{http.MethodGet: s.aclPolicyList})
	s.route("/v1/acl/token", map[string]handlerFunc{http.MethodPut: s.aclTokenCreate})
	s.route("/v1/acl/token/{accessor}", map[string]handlerFunc{http.MethodGet: s.aclTokenRead, http.MethodDelete: s.aclTokenDelete,
		http.MethodPut: notImplemented("updating a token is not supported by chainstore: create a new token with the policies it should hold, and delete the old one")})
	s.route("/v1/acl/token/{accessor}/clone", map[string]handlerFunc{http.MethodPut: notImplemented("cloning a token is not supported by chainstore: create a new token with the same policies")})
	s.route("/v1/acl/tokens", map[string]handlerFunc{http.MethodGet: s.aclTokenList})
	noRoles := notImplemented("chainstore's ACL model has no roles: link policies to tokens directly")
	s.route("/v1/acl/role", map[string]handlerFunc{http.MethodPut: noRoles})
	s.route("/v1/acl/role/{rest...}", map[string]handlerFunc{http.MethodGet: noRoles, http.MethodPut: noRoles, http.MethodDelete: noRoles})
	s.route("/v1/acl/roles", map[string]handlerFunc{http.MethodGet: noRoles})
}

// ACLBackend is the ACL part of the backend (*rpc.Local).
type ACLBackend interface {
	Bootstrap(ctx context.Context, req *chainstorev1.BootstrapRequest) (*chainstorev1.BootstrapResponse, error)
	PolicyCreate(ctx context.Context, req *chainstorev1.PolicyCreateRequest) (*chainstorev1.PolicyCreateResponse, error)
	PolicyList(ctx context.Context, req *chainstorev1.PolicyListRequest) (*chainstorev1.PolicyListResponse, error)
	PolicyRead(ctx context.Context, req *chainstorev1.PolicyReadRequest) (*chainstorev1.PolicyReadResponse, error)
	PolicyDelete(ctx context.Context, req *chainstorev1.PolicyDeleteRequest) (*chainstorev1.PolicyDeleteResponse, error)
	TokenCreate(ctx context.Context, req *chainstorev1.TokenCreateRequest) (*chainstorev1.TokenCreateResponse, error)
	TokenList(ctx context.Context, req *chainstorev1.TokenListRequest) (*chainstorev1.TokenListResponse, error)
	TokenRead(ctx context.Context, req *chainstorev1.TokenReadRequest) (*chainstorev1.TokenReadResponse, error)
	TokenDelete(ctx context.Context, req *chainstorev1.TokenDeleteRequest) (*chainstorev1.TokenDeleteResponse, error)
	TokenSelf(ctx context.Context) (*chainstorev1.ACLToken, error)
}
