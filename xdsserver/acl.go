package xdsserver

import (
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds"
)

// NodeTokenKey is the node metadata field (a string) in which an xDS
// client presents its ACL token; in a gRPC bootstrap file:
// "node": {"id": "...", "metadata": {"TOKEN": "<SecretID>"}}.
const NodeTokenKey = "TOKEN"

// Authorizer resolves the token an xDS client presents ("" for none) to
// the test of which services it may read; it fails for a token that
// matches no stored token, and the stream is then refused.
type Authorizer func(token string) (canRead func(service string) bool, err error)

// Option configures optional behaviour of a Server.
type Option func(*Server)

// WithAuthorizer makes the server filter what each client may subscribe
// to (docs/acl.md, xDS). Without it every client sees every resource.
func WithAuthorizer(a Authorizer) Option { return func(s *Server) { s.authz = a } }

// nodeToken returns the token in the node's metadata, or "".
func nodeToken(n *corev3.Node) string {
	return n.GetMetadata().GetFields()[NodeTokenKey].GetStringValue()
}

// allowedNames returns the names of a request the client may subscribe
// to. A resource is allowed when some chain it was published for is
// readable as a whole (its service and every service its targets
// reached when the resource was built); a listener or route
// configuration not published yet needs service:read on its name, and a
// cluster or assignment not published yet is refused (grpc-go asks for
// them only after a route named them). The request is refused (error)
// for an unknown token.
func (s *Server) allowedNames(node *corev3.Node, typeURL string, names []string) ([]string, error) {
	canRead, err := s.authz(nodeToken(node))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(names))
	for _, n := range names {
		if s.nameAllowedLocked(canRead, typeURL, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func (s *Server) nameAllowedLocked(canRead func(string) bool, typeURL, name string) bool {
	byChain := s.needs[typeURL][name]
	if len(byChain) == 0 {
		return (typeURL == resourcev3.ListenerType || typeURL == resourcev3.RouteType) && canRead(name)
	}
	for _, svcs := range byChain {
		if !slices.ContainsFunc(svcs, func(svc string) bool { return !canRead(svc) }) {
			return true
		}
	}
	return false
}

// chainNeeds returns the services a token must read to see the resources
// built from cc for chain name: the chain's service and its targets'.
func chainNeeds(name string, cc *chain.CompiledChain) []string {
	out := []string{name}
	for _, t := range cc.Targets {
		if t != nil {
			out = append(out, t.Service)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// noteNeeds records, for every resource of res (built for chain name from
// cc), what reading it needs through this chain.
func (s *Server) noteNeeds(name string, cc *chain.CompiledChain, res *xds.Resources) {
	if s.authz == nil {
		return
	}
	svcs := chainNeeds(name, cc)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, typed := range res.ByType() {
		m := s.needs[typed.TypeURL]
		if m == nil {
			m = make(map[string]map[string][]string)
			s.needs[typed.TypeURL] = m
		}
		for rn := range typed.Resources {
			if m[rn] == nil {
				m[rn] = make(map[string][]string)
			}
			m[rn][name] = svcs
		}
	}
}
