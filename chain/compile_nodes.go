package chain

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// targetSpec is a (service, subset, namespace, datacenter) tuple being
// resolved; all parts but subset are filled.
type targetSpec struct {
	service, subset, namespace, datacenter string
}

// id renders the 1.6 target ID: [<subset>.]<service>.<namespace>.<dc>.
func (t targetSpec) id() string { return t.nodeKey()[len(resolverKeyPrefix):] }

// nodeKey renders the key of the target's resolver node,
// "resolver:<target ID>"; the ID is a substring of it (one allocation).
func (t targetSpec) nodeKey() string {
	if t.subset == "" {
		return resolverKeyPrefix + t.service + "." + t.namespace + "." + t.datacenter
	}
	return resolverKeyPrefix + t.subset + "." + t.service + "." + t.namespace + "." + t.datacenter
}

// rewrite applies a redirect or failover rule: a different service
// replaces the current one and clears the subset; every other non-empty
// part replaces the current one.
func (t targetSpec) rewrite(service, subset, namespace, datacenter string) targetSpec {
	if service != "" && service != t.service {
		t.service = service
		t.subset = ""
	}
	if subset != "" {
		t.subset = subset
	}
	if namespace != "" {
		t.namespace = namespace
	}
	if datacenter != "" {
		t.datacenter = datacenter
	}
	return t
}

// newTarget fills the empty parts of a target from the compile inputs.
func (c *compiler) newTarget(service, subset, namespace, datacenter string) targetSpec {
	if namespace == "" {
		namespace = c.namespace
	}
	if datacenter == "" {
		datacenter = c.datacenter
	}
	return targetSpec{service: service, subset: subset, namespace: namespace, datacenter: datacenter}
}

const resolverKeyPrefix = NodeTypeResolver + ":"

func routerKey(name string) string   { return NodeTypeRouter + ":" + name }
func splitterKey(name string) string { return NodeTypeSplitter + ":" + name }

// assemble builds the graph from the top: the router of the chain's service
// if there is one, else splitter-or-resolver of the service
// (docs/discovery-chain.md, Router step).
func (c *compiler) assemble() error {
	if r := c.entries.router(c.serviceName); r != nil {
		if !c.disableL7 {
			return c.assembleRouter(r)
		}
		c.customizedByProtocol = true
	}
	start, err := c.splitterOrResolver(c.serviceName)
	if err != nil {
		return err
	}
	c.startNode = start
	return nil
}

// assembleRouter builds router:<service> with one route per configured
// route, in order, plus the implicit catch-all to the service itself.
func (c *compiler) assembleRouter(r *ServiceRouterConfigEntry) error {
	c.usesAdvancedRouting = true
	// Consul names the node after the router entry's own spelling of the
	// name (router:WEB when compiling "web"). Its catch-all also uses that
	// spelling, relying on a case-insensitive catalog; ours is
	// case-sensitive, so the catch-all keeps the chain's service
	// (docs/discovery-chain.md, Router step).
	name := r.Name
	if err := c.recordProtocol(c.serviceName); err != nil {
		return err
	}
	key := routerKey(name)
	node := &GraphNode{
		Type:   NodeTypeRouter,
		Name:   name,
		Routes: make([]*Route, 0, len(r.Routes)+1),
	}
	c.nodes[key] = node
	c.startNode = key

	for i := range r.Routes {
		route := &r.Routes[i]
		service, subset, namespace := c.serviceName, "", ""
		if d := route.Destination; d != nil { // no Destination: the chain's own service
			if d.Service != "" {
				service = d.Service
			}
			subset, namespace = d.ServiceSubset, d.Namespace
		}
		var next string
		var err error
		if subset == "" && namespace == "" {
			next, err = c.splitterOrResolver(service)
		} else {
			// A subset (or, in 1.6, a namespace) bypasses any splitter.
			next, err = c.resolverNode(c.newTarget(service, subset, namespace, ""))
		}
		if err != nil {
			return err
		}
		node.Routes = append(node.Routes, &Route{Definition: cloneRoute(route), NextNode: next})
	}

	next, err := c.splitterOrResolver(c.serviceName)
	if err != nil {
		return err
	}
	node.Routes = append(node.Routes, &Route{
		Definition: &ServiceRoute{
			Match:       &ServiceRouteMatch{HTTP: &ServiceRouteHTTPMatch{PathPrefix: "/"}},
			Destination: &ServiceRouteDestination{Service: c.serviceName},
		},
		NextNode: next,
	})
	return nil
}

// splitterOrResolver returns the key of service's splitter node, built on
// first use, or of its resolver node when it has no (enabled) splitter.
func (c *compiler) splitterOrResolver(service string) (string, error) {
	sp := c.entries.splitter(service)
	if sp != nil && c.disableL7 {
		c.customizedByProtocol = true
		sp = nil
	}
	if sp == nil {
		return c.resolverNode(c.newTarget(service, "", "", ""))
	}

	key := splitterKey(service)
	if _, ok := c.nodes[key]; ok {
		return key, nil
	}
	c.usesAdvancedRouting = true
	node := &GraphNode{
		Type:   NodeTypeSplitter,
		Name:   service,
		Splits: make([]*Split, 0, len(sp.Splits)),
	}
	// Registered before the legs, so a loop ends at this node (and is
	// reported by detectCircularReferences) instead of recursing forever.
	c.nodes[key] = node

	for i := range sp.Splits {
		split := &sp.Splits[i]
		legService := split.Service
		if legService == "" {
			legService = service
		}
		var next string
		var err error
		nested := !strings.EqualFold(legService, service) && split.ServiceSubset == "" && split.Namespace == "" &&
			c.entries.splitter(legService) != nil
		if nested {
			next, err = c.splitterOrResolver(legService) // nested splitter, flattened later
		} else {
			next, err = c.resolverNode(c.newTarget(legService, split.ServiceSubset, split.Namespace, ""))
		}
		if err != nil {
			return "", err
		}
		// Definition points into the stored entry until
		// dropPlainSplitDefinitions copies the ones it keeps.
		node.Splits = append(node.Splits, &Split{Definition: split, Weight: split.Weight, NextNode: next})
		// A route can carry one set of hash policies: the splitter takes
		// the first hash-based policy among the resolvers its own legs
		// reach (later Consul).
		if !nested && node.LoadBalancer == nil {
			if lb := c.nodes[next].LoadBalancer; lb.IsHashBased() {
				node.LoadBalancer = lb
			}
		}
	}
	return key, nil
}

// resolverNode resolves t and returns the key of its (registered) resolver
// node.
func (c *compiler) resolverNode(t targetSpec) (string, error) {
	return c.resolve(t, false)
}

// resolve is the resolver step (docs/discovery-chain.md, Resolver step). It
// follows redirects and the
// default subset until the target is stable, checks the subset, builds the
// target and returns its resolver node key, "resolver:<target ID>" (the
// ID is a substring of it, so no string is built twice; a failover
// target's key names no node). For a primary target it registers the resolver
// node and attaches failover (docs/discovery-chain.md, Failover); for a
// failover target
// (failover=true) it only retains the target.
func (c *compiler) resolve(t targetSpec, failover bool) (string, error) {
	var history []string
	for {
		key := t.nodeKey()
		id := key[len(resolverKeyPrefix):]
		if _, ok := c.nodes[key]; ok {
			return key, nil // resolver nodes are shared, failover included
		}
		if err := c.recordProtocol(t.service); err != nil {
			return "", err
		}
		res := c.entries.resolver(t.service)
		if res == nil {
			res = &ServiceResolverConfigEntry{Kind: KindServiceResolver, Name: t.service}
		}
		if slices.Contains(history, id) {
			return "", graphErrorf("detected circular resolver redirect: [%s]",
				strings.Join(append(history, id), " -> "))
		}
		history = append(history, id)

		if r := res.Redirect; r != nil {
			next := t.rewrite(r.Service, r.ServiceSubset, r.Namespace, r.Datacenter)
			if next.id() != id {
				t = next
				continue
			}
		}
		if t.subset == "" && res.DefaultSubset != "" {
			t.subset = res.DefaultSubset
			continue
		}
		return c.buildResolverNode(t, key, res, failover)
	}
}

// resolverNodeAlloc lets a resolver node and its info share one allocation.
type resolverNodeAlloc struct {
	node GraphNode
	info ResolverNodeInfo
}

// buildResolverNode finishes the resolver step for the stable target t,
// whose node key is key (steps 7-13 of docs/discovery-chain.md, Resolver
// step).
func (c *compiler) buildResolverNode(t targetSpec, key string, res *ServiceResolverConfigEntry, failover bool) (string, error) {
	id := key[len(resolverKeyPrefix):]
	var subset ServiceResolverSubset
	if t.subset != "" {
		def, ok := res.Subsets[t.subset]
		if !ok {
			return "", graphErrorf("service %q does not have a subset named %q", t.service, t.subset)
		}
		subset = def
	}

	timeout := DefaultConnectTimeout
	if res.ConnectTimeout >= 1 {
		timeout = time.Duration(res.ConnectTimeout)
	}
	if c.overrideConnectTimeout > 0 {
		if c.overrideConnectTimeout != timeout {
			c.customizedByTimeout = true
		}
		timeout = c.overrideConnectTimeout
	}

	sni := id + ".internal." + c.trustDomain
	target := &Target{
		ID:            id,
		Service:       t.service,
		ServiceSubset: t.subset,
		Namespace:     t.namespace,
		Datacenter:    t.datacenter,
		Subset:        subset,
		SNI:           sni,
		Name:          sni,
	}
	sd := c.entries.serviceDefaults(t.service)
	if sd != nil && sd.ExternalSNI != "" {
		target.SNI = sd.ExternalSNI
		target.External = true
		switch {
		case res.Redirect != nil:
			return "", graphErrorf("service %q has an external SNI set; cannot define redirects for external services", t.service)
		case len(res.Subsets) > 0:
			return "", graphErrorf("service %q has an external SNI set; cannot define subsets for external services", t.service)
		case len(res.Failover) > 0:
			return "", graphErrorf("service %q has an external SNI set; cannot define failover for external services", t.service)
		}
	}
	target.MeshGateway.Mode = c.meshGatewayMode(target, sd)
	c.targets[id] = target

	if failover {
		return key, nil // failover targets get no node and no failover of their own
	}
	a := &resolverNodeAlloc{
		node: GraphNode{Type: NodeTypeResolver, Name: id},
		info: ResolverNodeInfo{
			Default:        resolverIsDefault(res),
			ConnectTimeout: Duration(timeout),
			RequestTimeout: res.RequestTimeout,
			Target:         id,
		},
	}
	a.node.Resolver = &a.info
	a.node.LoadBalancer = cloneLoadBalancer(res.LoadBalancer)
	node := &a.node
	c.nodes[key] = node
	if err := c.attachFailover(node, t, id, res); err != nil {
		return "", err
	}
	return key, nil
}

// attachFailover picks Failover[<subset>] or Failover["*"], rewrites the
// target once per datacenter (or once), drops rewrites to the primary
// itself and resolves the rest in failover mode (docs/discovery-chain.md,
// Failover).
func (c *compiler) attachFailover(node *GraphNode, t targetSpec, id string, res *ServiceResolverConfigEntry) error {
	if len(res.Failover) == 0 {
		return nil
	}
	fo, ok := res.Failover[t.subset]
	if !ok {
		if fo, ok = res.Failover["*"]; !ok {
			return nil
		}
	}
	var candidates []targetSpec
	switch {
	case len(fo.Datacenters) > 0:
		candidates = make([]targetSpec, 0, len(fo.Datacenters))
		for _, dc := range fo.Datacenters {
			candidates = append(candidates, t.rewrite(fo.Service, fo.ServiceSubset, fo.Namespace, dc))
		}
	case len(fo.Targets) > 0:
		candidates = make([]targetSpec, 0, len(fo.Targets))
		for _, ft := range fo.Targets {
			candidates = append(candidates, t.rewrite(ft.Service, ft.ServiceSubset, ft.Namespace, ft.Datacenter))
		}
	default:
		candidates = []targetSpec{t.rewrite(fo.Service, fo.ServiceSubset, fo.Namespace, "")}
	}
	var ids []string
	for _, cand := range candidates {
		if cand.id() == id {
			continue // don't fail over to yourself
		}
		fkey, err := c.resolve(cand, true)
		if err != nil {
			return err
		}
		ids = append(ids, fkey[len(resolverKeyPrefix):])
	}
	if len(ids) > 0 {
		node.Resolver.Failover = &FailoverInfo{Targets: ids}
	}
	return nil
}

// meshGatewayMode applies the 1.6 rule (docs/discovery-chain.md, Mesh
// gateways): no gateway inside
// UseInDatacenter or for external targets; otherwise service-defaults,
// then proxy-defaults, then the override.
func (c *compiler) meshGatewayMode(t *Target, sd *ServiceConfigEntry) string {
	if t.Datacenter == c.useInDatacenter || t.External {
		return ""
	}
	mode := ""
	if sd != nil {
		mode = sd.MeshGateway.Mode
	}
	if mode == "" && c.entries.proxy != nil {
		mode = c.entries.proxy.MeshGateway.Mode
	}
	if o := c.overrideMeshGateway.Mode; o != "" && o != mode {
		mode = o
		c.customizedByGateway = true
	}
	return mode
}

// resolverIsDefault reports whether r sets nothing beyond Kind and Name
// (IsDefault in docs/discovery-chain.md, service-resolver).
func resolverIsDefault(r *ServiceResolverConfigEntry) bool {
	return r.DefaultSubset == "" && len(r.Subsets) == 0 && r.Redirect == nil &&
		len(r.Failover) == 0 && r.ConnectTimeout == 0 && r.RequestTimeout == 0 && r.LoadBalancer == nil
}

// cloneRoute copies a route so the compiled chain shares no memory with
// the stored entry.
func cloneRoute(r *ServiceRoute) *ServiceRoute {
	out := &ServiceRoute{}
	if r.Match != nil {
		m := *r.Match
		if m.HTTP != nil {
			h := *m.HTTP
			h.Header = slices.Clone(h.Header)
			h.QueryParam = slices.Clone(h.QueryParam)
			h.Methods = slices.Clone(h.Methods)
			m.HTTP = &h
		}
		out.Match = &m
	}
	if r.Destination != nil {
		d := *r.Destination
		d.RetryOn = slices.Clone(d.RetryOn)
		d.RetryOnStatusCodes = slices.Clone(d.RetryOnStatusCodes)
		d.RequestHeaders = d.RequestHeaders.clone()
		d.ResponseHeaders = d.ResponseHeaders.clone()
		out.Destination = &d
	}
	return out
}

// cloneSplit deep-copies a split definition.
func cloneSplit(s *ServiceSplit) *ServiceSplit {
	out := *s
	out.RequestHeaders = s.RequestHeaders.clone()
	out.ResponseHeaders = s.ResponseHeaders.clone()
	return &out
}

// clone deep-copies m; nil and empty modifiers become nil.
func (m *HTTPHeaderModifiers) clone() *HTTPHeaderModifiers {
	if m.IsZero() {
		return nil
	}
	return &HTTPHeaderModifiers{Add: maps.Clone(m.Add), Set: maps.Clone(m.Set), Remove: slices.Clone(m.Remove)}
}

// mergeHeaderModifiers returns base with overrides applied on top: Add and
// Set entries of overrides replace base's of the same name, and overrides'
// Remove names are appended unless already listed. Neither input is
// modified. This is how Consul merges a parent split's modifiers into a
// child's when flattening.
func mergeHeaderModifiers(base, overrides *HTTPHeaderModifiers) *HTTPHeaderModifiers {
	if base.IsZero() {
		return overrides.clone()
	}
	out := base.clone()
	if overrides.IsZero() {
		return out
	}
	for k, v := range overrides.Add {
		if out.Add == nil {
			out.Add = make(map[string]string, len(overrides.Add))
		}
		out.Add[k] = v
	}
	for k, v := range overrides.Set {
		if out.Set == nil {
			out.Set = make(map[string]string, len(overrides.Set))
		}
		out.Set[k] = v
	}
	for _, k := range overrides.Remove {
		if !slices.Contains(out.Remove, k) {
			out.Remove = append(out.Remove, k)
		}
	}
	return out
}

// mergeParentSplit is the Definition of a leg reached through parent when
// flattening (Consul's ServiceSplit.MergeParent): the child's leg, with
// the parent's request modifiers applied first (the child's win) and its
// response modifiers applied last (the parent's win, as responses flow
// back through the parent).
func mergeParentSplit(child, parent *ServiceSplit) *ServiceSplit {
	switch {
	case parent == nil:
		return child
	case child == nil:
		return cloneSplit(parent)
	}
	out := *child
	out.RequestHeaders = mergeHeaderModifiers(parent.RequestHeaders, child.RequestHeaders)
	out.ResponseHeaders = mergeHeaderModifiers(child.ResponseHeaders, parent.ResponseHeaders)
	return &out
}

// cloneLoadBalancer deep-copies lb so the compiled chain shares no memory
// with the stored entry.
func cloneLoadBalancer(lb *LoadBalancer) *LoadBalancer {
	if lb == nil {
		return nil
	}
	out := *lb
	if lb.RingHashConfig != nil {
		rh := *lb.RingHashConfig
		out.RingHashConfig = &rh
	}
	if lb.LeastRequestConfig != nil {
		lr := *lb.LeastRequestConfig
		out.LeastRequestConfig = &lr
	}
	if lb.HashPolicies != nil {
		out.HashPolicies = make([]HashPolicy, len(lb.HashPolicies))
		for i, hp := range lb.HashPolicies {
			if hp.CookieConfig != nil {
				cc := *hp.CookieConfig
				hp.CookieConfig = &cc
			}
			out.HashPolicies[i] = hp
		}
	}
	return &out
}
