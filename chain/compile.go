package chain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultConnectTimeout is the connect timeout of a resolver node whose
// resolver sets none (docs/discovery-chain.md, Resolver step, step 8).
const DefaultConnectTimeout = 5 * time.Second

// Errors for missing compile inputs (docs/discovery-chain.md, Inputs).
// They are plain errors, not
// *GraphError: they report a caller bug, not a user's entries.
var (
	ErrServiceNameRequired     = errors.New("serviceName is required")
	ErrNamespaceRequired       = errors.New("evaluateInNamespace is required")
	ErrDatacenterRequired      = errors.New("evaluateInDatacenter is required")
	ErrTrustDomainRequired     = errors.New("evaluateInTrustDomain is required")
	ErrUseInDatacenterRequired = errors.New("useInDatacenter is required")
	ErrEntriesRequired         = errors.New("entries is required")

	// ErrUnexpectedEntry reports an EntryLookup that returned an entry of
	// another kind than the key asked for (a store bug).
	ErrUnexpectedEntry = errors.New("entry lookup returned an entry of the wrong kind")
)

// EntryLookup is the read side the compiler needs: one entry by key, or nil
// when absent. Keys are built with KeyOf (lower-cased).
type EntryLookup interface {
	GetEntry(key Key) Entry
}

// CompileRequest holds the inputs of one compile (docs/discovery-chain.md,
// Inputs). Every string field except the overrides is required.
type CompileRequest struct {
	ServiceName           string
	EvaluateInNamespace   string
	EvaluateInDatacenter  string
	EvaluateInTrustDomain string
	// UseInDatacenter is the datacenter the result will be used from (the
	// compiling server's). Only the mesh-gateway rule reads it
	// (docs/discovery-chain.md, Mesh gateways).
	UseInDatacenter string

	// OverrideProtocol, when not HTTP-like, makes the compiler ignore
	// routers and splitters; when it differs from the computed protocol it
	// replaces it. It is compared lower-cased.
	OverrideProtocol string
	// OverrideConnectTimeout, when > 0, replaces every resolver's timeout.
	OverrideConnectTimeout time.Duration
	// OverrideMeshGateway, when its Mode is set, replaces the mode of every
	// target outside UseInDatacenter.
	OverrideMeshGateway MeshGatewayConfig

	// Entries is where the compiler gathers the chain's entries
	// (docs/discovery-chain.md, Gathering).
	Entries EntryLookup
}

// CompileResult is the outcome of Compile.
type CompileResult struct {
	// Chain is the compiled chain; nil when Compile returned an error.
	Chain *CompiledChain
	// Reads lists every key looked up while gathering entries, found or
	// not, sorted by (Kind, Name) and deduplicated. A watcher of the chain
	// must wake when any of them changes. It is set even on error (empty
	// only for input errors).
	Reads []Key
}

// Compile gathers the entries of req.ServiceName's discovery chain from
// req.Entries and compiles them (docs/discovery-chain.md, Compile).
//
// Errors: the Err*Required sentinels for missing inputs; *GraphError when
// the entries do not form a valid chain (the only error expected for entries
// that passed validation); ErrUnexpectedEntry (wrapped) for a broken store.
// Compile is pure: it neither mutates the entries nor keeps references to
// them in the result (route definitions are copied).
func Compile(req CompileRequest) (*CompileResult, error) {
	if err := req.checkInputs(); err != nil {
		return &CompileResult{}, err
	}
	set, reads, err := gatherEntries(req.Entries, req.ServiceName)
	res := &CompileResult{Reads: reads}
	if err != nil {
		return res, err
	}
	c := newCompiler(req, set)
	chain, err := c.compile()
	if err != nil {
		return res, err
	}
	res.Chain = chain
	return res, nil
}

// compileError is Compile for write-time validation: the same error, or
// nil, without the result's list of reads.
func compileError(req CompileRequest) error {
	if err := req.checkInputs(); err != nil {
		return err
	}
	set, err := gather(req.Entries, req.ServiceName)
	if err != nil {
		return err
	}
	_, err = newCompiler(req, set).compile()
	return err
}

func (r *CompileRequest) checkInputs() error {
	switch {
	case r.ServiceName == "":
		return ErrServiceNameRequired
	case r.EvaluateInNamespace == "":
		return ErrNamespaceRequired
	case r.EvaluateInDatacenter == "":
		return ErrDatacenterRequired
	case r.EvaluateInTrustDomain == "":
		return ErrTrustDomainRequired
	case r.UseInDatacenter == "":
		return ErrUseInDatacenterRequired
	case r.Entries == nil:
		return ErrEntriesRequired
	}
	return nil
}

// IsHTTPLike reports whether protocol permits routers and splitters
// ("http", "http2" or "grpc").
func IsHTTPLike(protocol string) bool {
	switch protocol {
	case "http", "http2", "grpc":
		return true
	}
	return false
}

// compiler is single-use: newCompiler fills the INPUT fields, compile runs
// the pipeline once and builds the OUTPUT from the STATE fields.
type compiler struct {
	// INPUT: fixed for the whole run.
	serviceName            string
	namespace              string
	datacenter             string
	trustDomain            string
	useInDatacenter        string
	overrideProtocol       string
	overrideConnectTimeout time.Duration
	overrideMeshGateway    MeshGatewayConfig
	entries                *entrySet
	proxyProtocol          string // proxy-defaults Config["protocol"], lower-cased

	// disableL7 is set when the protocol override is not HTTP-like: routers
	// and splitters are then skipped (docs/discovery-chain.md, Overrides).
	disableL7 bool

	// STATE, built by the steps.
	usesAdvancedRouting  bool // a router or splitter node was built
	customizedByProtocol bool
	customizedByTimeout  bool
	customizedByGateway  bool
	protocol             string // first recorded protocol (docs/discovery-chain.md, Protocol)
	startNode            string
	nodes                map[string]*GraphNode
	targets              map[string]*Target
}

func newCompiler(req CompileRequest, set *entrySet) *compiler {
	override := strings.ToLower(req.OverrideProtocol)
	return &compiler{
		serviceName:            req.ServiceName,
		namespace:              req.EvaluateInNamespace,
		datacenter:             req.EvaluateInDatacenter,
		trustDomain:            req.EvaluateInTrustDomain,
		useInDatacenter:        req.UseInDatacenter,
		overrideProtocol:       override,
		overrideConnectTimeout: req.OverrideConnectTimeout,
		overrideMeshGateway:    req.OverrideMeshGateway,
		entries:                set,
		proxyProtocol:          proxyProtocolOf(set.proxy),
		disableL7:              override != "" && !IsHTTPLike(override),
		nodes:                  make(map[string]*GraphNode, 4),
		targets:                make(map[string]*Target, 2),
	}
}

// compile runs the pipeline: assemble the graph from the top (router,
// splitters, resolvers), then post-process it (docs/discovery-chain.md,
// Post-processing) and build the output.
func (c *compiler) compile() (*CompiledChain, error) {
	if err := c.assemble(); err != nil {
		return nil, err
	}
	if err := c.detectCircularReferences(); err != nil {
		return nil, err
	}
	c.flattenSplitters()
	c.dropPlainSplitDefinitions()
	c.pruneUnreachableNodes()
	c.pruneUnusedTargets()
	if err := c.checkProtocolPermitsRouting(); err != nil {
		return nil, err
	}
	c.applyProtocolOverride()
	return c.output(), nil
}

func (c *compiler) output() *CompiledChain {
	return &CompiledChain{
		ServiceName:       c.serviceName,
		Namespace:         c.namespace,
		Datacenter:        c.datacenter,
		CustomizationHash: c.customizationHash(),
		Default:           c.isDefaultChain(),
		Protocol:          c.protocol,
		StartNode:         c.startNode,
		Nodes:             c.nodes,
		Targets:           c.targets,
	}
}

func graphErrorf(format string, args ...any) error {
	return &GraphError{Msg: fmt.Sprintf(format, args...)}
}

// ---- protocol (docs/discovery-chain.md, Protocol) ----

// protocolOf returns the protocol of service svc: its service-defaults
// Protocol when that entry exists (empty meaning tcp, with no fallback
// [quirk]), else proxy-defaults' Config["protocol"], else tcp.
func (c *compiler) protocolOf(svc string) string {
	if sd := c.entries.serviceDefaults(svc); sd != nil {
		if sd.Protocol == "" {
			return "tcp"
		}
		return strings.ToLower(sd.Protocol)
	}
	if c.proxyProtocol != "" {
		return c.proxyProtocol
	}
	return "tcp"
}

// recordProtocol makes svc's protocol part of the chain: the first recorded
// protocol becomes the chain's, and any other must equal it.
func (c *compiler) recordProtocol(svc string) error {
	p := c.protocolOf(svc)
	if c.protocol == "" {
		c.protocol = p
		return nil
	}
	if p != c.protocol {
		return graphErrorf("discovery chain %q uses inconsistent protocols; service %q has %q which is not %q",
			c.serviceName, svc, p, c.protocol)
	}
	return nil
}

// proxyProtocolOf reads Config["protocol"] of proxy-defaults, matching the
// key case-insensitively (an exact "protocol" key wins, then the first
// matching key in sorted order) and converting scalars to strings the way a
// weak decoder would. Anything else counts as unset.
func proxyProtocolOf(p *ProxyConfigEntry) string {
	if p == nil || len(p.Config) == 0 {
		return ""
	}
	v, ok := p.Config["protocol"]
	if !ok {
		best := ""
		for k, val := range p.Config {
			if strings.EqualFold(k, "protocol") && (!ok || k < best) {
				best, v, ok = k, val, true
			}
		}
		if !ok {
			return ""
		}
	}
	return strings.ToLower(weakString(v))
}

func weakString(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case []byte:
		return string(t)
	case bool:
		if t {
			return "1"
		}
		return "0"
	case int:
		return strconv.FormatInt(int64(t), 10)
	case int8:
		return strconv.FormatInt(int64(t), 10)
	case int16:
		return strconv.FormatInt(int64(t), 10)
	case int32:
		return strconv.FormatInt(int64(t), 10)
	case int64:
		return strconv.FormatInt(t, 10)
	case uint:
		return strconv.FormatUint(uint64(t), 10)
	case uint8:
		return strconv.FormatUint(uint64(t), 10)
	case uint16:
		return strconv.FormatUint(uint64(t), 10)
	case uint32:
		return strconv.FormatUint(uint64(t), 10)
	case uint64:
		return strconv.FormatUint(t, 10)
	case float32:
		return strconv.FormatFloat(float64(t), 'f', -1, 32)
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case fmt.Stringer:
		return t.String()
	}
	return ""
}

// ---- post-processing (docs/discovery-chain.md, Post-processing) ----

// detectCircularReferences walks routers and splitters depth-first from the
// start node, last route or split first (Consul's order). A node reached
// again while still on the current path is a cycle; the message lists the
// path from the start node to the repetition.
func (c *compiler) detectCircularReferences() error {
	if n := c.nodes[c.startNode]; n == nil || n.Type == NodeTypeResolver {
		return nil
	}
	const (
		onPath = 1
		done   = 2
	)
	state := make(map[string]uint8, len(c.nodes))
	var path []string
	var visit func(key string) error
	visit = func(key string) error {
		switch state[key] {
		case onPath:
			return graphErrorf("detected circular reference: [%s]", strings.Join(append(path, key), " -> "))
		case done:
			return nil
		}
		node := c.nodes[key]
		if node == nil || node.Type == NodeTypeResolver {
			state[key] = done
			return nil
		}
		state[key] = onPath
		path = append(path, key)
		// Consul walks with a stack, so the last route or split is
		// followed first; doing the same reports the same path.
		for i := len(node.Routes) - 1; i >= 0; i-- {
			if err := visit(node.Routes[i].NextNode); err != nil {
				return err
			}
		}
		for i := len(node.Splits) - 1; i >= 0; i-- {
			if err := visit(node.Splits[i].NextNode); err != nil {
				return err
			}
		}
		path = path[:len(path)-1]
		state[key] = done
		return nil
	}
	return visit(c.startNode)
}

// flattenSplitters replaces, in place, every split that leads to another
// splitter by that splitter's own (already flattened) splits, each weighted
// parent*child/100 rounded to 0.01. Children are flattened before their
// parents, so the result does not depend on the order nodes are visited in.
func (c *compiler) flattenSplitters() {
	if !c.usesAdvancedRouting {
		return
	}
	done := make(map[string]bool)
	for key, n := range c.nodes {
		if n.Type == NodeTypeSplitter {
			c.flattenSplitter(key, done)
		}
	}
}

func (c *compiler) flattenSplitter(key string, done map[string]bool) {
	if done[key] {
		return
	}
	done[key] = true // set first: a cycle (already rejected) cannot recurse forever
	node := c.nodes[key]
	nested := false
	for _, s := range node.Splits {
		if child := c.nodes[s.NextNode]; child != nil && child.Type == NodeTypeSplitter {
			nested = true
			break
		}
	}
	if !nested {
		return
	}
	out := make([]*Split, 0, len(node.Splits)+2)
	for _, s := range node.Splits {
		child := c.nodes[s.NextNode]
		if child == nil || child.Type != NodeTypeSplitter {
			out = append(out, s)
			continue
		}
		c.flattenSplitter(s.NextNode, done)
		for _, cs := range child.Splits {
			// Consul appends every inner leg, duplicates included: legs
			// reaching the same resolver are not merged here.
			out = append(out, &Split{
				Definition: mergeParentSplit(cs.Definition, s.Definition),
				Weight:     scaleWeight(s.Weight, cs.Weight),
				NextNode:   cs.NextNode,
			})
		}
	}
	node.Splits = out
}

// dropPlainSplitDefinitions removes the Definition of every split that
// modifies no headers and copies the others: Consul 1.6 printed splits as {Weight, NextNode}, and
// the definition only matters for the header modifiers later Consul added.
func (c *compiler) dropPlainSplitDefinitions() {
	for _, n := range c.nodes {
		for _, s := range n.Splits {
			if d := s.Definition; d != nil {
				if d.RequestHeaders.IsZero() && d.ResponseHeaders.IsZero() {
					s.Definition = nil
				} else {
					s.Definition = cloneSplit(d) // share no memory with the entry
				}
			}
		}
	}
}

// scaleWeight returns parent*child/100 rounded to 0.01 (half away from
// zero), computed in float32 like the weights themselves and rounded by
// NormalizeWeight, the same rule Normalize applies to configured weights.
func scaleWeight(parent, child float32) float32 {
	return NormalizeWeight(parent * child / 100)
}

// pruneUnreachableNodes keeps only the nodes reachable from the start node
// (inner splitters disappear after flattening).
func (c *compiler) pruneUnreachableNodes() {
	if len(c.nodes) <= 1 {
		return
	}
	seen := make(map[string]bool, len(c.nodes))
	var walk func(key string)
	walk = func(key string) {
		if seen[key] {
			return
		}
		seen[key] = true
		n := c.nodes[key]
		if n == nil {
			return
		}
		for _, r := range n.Routes {
			walk(r.NextNode)
		}
		for _, s := range n.Splits {
			walk(s.NextNode)
		}
	}
	walk(c.startNode)
	for key := range c.nodes {
		if !seen[key] {
			delete(c.nodes, key)
		}
	}
}

// pruneUnusedTargets keeps only the targets a remaining resolver node uses,
// as its own target or a failover target. Targets are only created for
// final (retained) resolutions, so this drops nothing unless a resolver
// node was pruned.
func (c *compiler) pruneUnusedTargets() {
	used := make(map[string]bool, len(c.targets))
	for _, n := range c.nodes {
		if n.Resolver == nil {
			continue
		}
		used[n.Resolver.Target] = true
		if n.Resolver.Failover != nil {
			for _, id := range n.Resolver.Failover.Targets {
				used[id] = true
			}
		}
	}
	for id := range c.targets {
		if !used[id] {
			delete(c.targets, id)
		}
	}
}

// checkProtocolPermitsRouting is the protocol gate: routers and splitters
// need an HTTP-like chain protocol.
func (c *compiler) checkProtocolPermitsRouting() error {
	if c.protocol == "" {
		c.protocol = "tcp" // only reachable for a chain without resolvers
	}
	if c.usesAdvancedRouting && !IsHTTPLike(c.protocol) {
		return graphErrorf("discovery chain %q uses a protocol %q that does not permit advanced routing or splitting behavior",
			c.serviceName, c.protocol)
	}
	return nil
}

func (c *compiler) applyProtocolOverride() {
	if c.overrideProtocol != "" && c.overrideProtocol != c.protocol {
		c.protocol = c.overrideProtocol
		c.customizedByProtocol = true
	}
}

// customizationHash returns the first 8 hex characters of the SHA-256 of a
// canonical text of the overrides that changed the result, or "" when none
// did (docs/discovery-chain.md, Overrides).
func (c *compiler) customizationHash() string {
	if !c.customizedByProtocol && !c.customizedByTimeout && !c.customizedByGateway {
		return ""
	}
	var b strings.Builder
	if c.customizedByGateway {
		fmt.Fprintf(&b, "MeshGateway.Mode=%q\n", c.overrideMeshGateway.Mode)
	}
	if c.customizedByProtocol {
		fmt.Fprintf(&b, "Protocol=%q\n", c.overrideProtocol)
	}
	if c.customizedByTimeout {
		fmt.Fprintf(&b, "ConnectTimeout=%d\n", int64(c.overrideConnectTimeout))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:4])
}

// isDefaultChain: no nodes, or the start node is a synthesized resolver for
// the requested service itself (docs/discovery-chain.md, Default chain).
func (c *compiler) isDefaultChain() bool {
	if len(c.nodes) == 0 {
		return true
	}
	n := c.nodes[c.startNode]
	if n == nil || n.Resolver == nil || !n.Resolver.Default {
		return false
	}
	t := c.targets[n.Resolver.Target]
	return t != nil && t.Service == c.serviceName && t.Namespace == c.namespace
}
