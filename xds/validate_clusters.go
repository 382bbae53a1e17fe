package xds

import (
	"fmt"
	"net"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"

	"github.com/chainstore/chainstore/chain"
)

// clusterRefs is what a cluster points at: an EDS assignment or the
// children of an aggregate.
type clusterRefs struct {
	eds      string
	children []string
}

// clusters checks every cluster (§3.3, §3.5) and returns them by name
// with their references.
func (v *validator) clusters(cs []*clusterv3.Cluster) map[string]clusterRefs {
	out := make(map[string]clusterRefs, len(cs))
	for _, c := range cs {
		if c == nil {
			v.add("cluster", "nil")
			continue
		}
		res := fmt.Sprintf("cluster %q", c.GetName())
		if c.GetName() == "" {
			v.add(res, "has no name")
		}
		if _, dup := out[c.GetName()]; dup {
			v.add(res, "is listed twice")
		}
		v.validateAll(res, c)
		v.lbPolicy(res, c)
		if c.GetTransportSocket() != nil || len(c.GetTransportSocketMatches()) > 0 {
			v.add(res, "must be plaintext (no transport_socket)")
		}
		out[c.GetName()] = v.clusterType(res, c)
	}
	return out
}

// clusterType accepts an EDS cluster over ADS with a service_name, or an
// aggregate cluster with at least one child.
func (v *validator) clusterType(res string, c *clusterv3.Cluster) clusterRefs {
	switch {
	case c.GetType() == clusterv3.Cluster_EDS && c.GetClusterType() == nil:
		eds := c.GetEdsClusterConfig()
		v.configSource(res+" eds_config", eds.GetEdsConfig())
		if eds.GetServiceName() == "" {
			v.add(res, "eds_cluster_config.service_name is empty")
		}
		return clusterRefs{eds: eds.GetServiceName()}
	case c.GetClusterType() != nil && c.GetClusterType().GetName() == aggregateClusterType:
		cfg := &aggregatev3.ClusterConfig{}
		if !v.unpack(res, "aggregate cluster typed_config", c.GetClusterType().GetTypedConfig(), cfg) {
			return clusterRefs{}
		}
		v.validateAll(res+" aggregate config", cfg)
		if len(cfg.GetClusters()) == 0 {
			v.add(res, "aggregate cluster has no children")
		}
		return clusterRefs{children: cfg.GetClusters()}
	}
	v.add(res, "must be an EDS cluster or an %s cluster", aggregateClusterType)
	return clusterRefs{}
}

// lbPolicy accepts what grpc-go accepts: round robin, ring hash with
// xxHash, least request with choice_count >= 2 (§3.3).
func (v *validator) lbPolicy(res string, c *clusterv3.Cluster) {
	if c.GetLoadBalancingPolicy() != nil {
		v.add(res, "load_balancing_policy must stay unset")
	}
	switch c.GetLbPolicy() {
	case clusterv3.Cluster_ROUND_ROBIN:
	case clusterv3.Cluster_RING_HASH:
		if rh := c.GetRingHashLbConfig(); rh != nil && rh.GetHashFunction() != clusterv3.Cluster_RingHashLbConfig_XX_HASH {
			v.add(res, "ring hash must use XX_HASH")
		}
		rh := c.GetRingHashLbConfig()
		minSize, maxSize := uint64(chain.DefaultMinRingSize), uint64(chain.MaxRingSize)
		if m := rh.GetMinimumRingSize(); m != nil {
			minSize = m.GetValue()
		}
		if m := rh.GetMaximumRingSize(); m != nil {
			maxSize = m.GetValue()
		}
		if minSize > maxSize {
			v.add(res, "ring hash minimum_ring_size %d is greater than maximum_ring_size %d", minSize, maxSize)
		}
	case clusterv3.Cluster_LEAST_REQUEST:
		if n := c.GetLeastRequestLbConfig().GetChoiceCount(); n != nil && n.GetValue() < 2 {
			v.add(res, "least request choice_count must be at least 2")
		}
	default:
		v.add(res, "lb_policy %s is NACKed by gRPC clients", c.GetLbPolicy())
	}
}

// endpoints checks every assignment (§3.4) and returns their names.
func (v *validator) endpoints(assignments []*endpointv3.ClusterLoadAssignment) map[string]bool {
	out := make(map[string]bool, len(assignments))
	for _, cla := range assignments {
		if cla == nil {
			v.add("assignment", "nil")
			continue
		}
		res := fmt.Sprintf("assignment %q", cla.GetClusterName())
		if cla.GetClusterName() == "" {
			v.add(res, "has no cluster_name")
		}
		if out[cla.GetClusterName()] {
			v.add(res, "is listed twice")
		}
		out[cla.GetClusterName()] = true
		v.validateAll(res, cla)
		v.localities(res, cla.GetEndpoints())
	}
	return out
}

// localities checks what grpc-go's EDS parser NACKs or drops: a missing
// locality, weight 0, one locality twice at a priority, a gap in the
// priorities, an endpoint weight 0 and an address listed twice.
func (v *validator) localities(res string, ls []*endpointv3.LocalityLbEndpoints) {
	type localityKey struct {
		region, zone, subZone string
		priority              uint32
	}
	seen := make(map[localityKey]bool, len(ls))
	priorities := make(map[uint32]bool)
	addrs := make(map[string]bool)
	for k, l := range ls {
		lres := fmt.Sprintf("%s locality %d", res, k)
		loc := l.GetLocality()
		if loc == nil {
			v.add(lres, "has no locality")
			continue
		}
		if l.GetLoadBalancingWeight().GetValue() < 1 {
			v.add(lres, "load_balancing_weight must be at least 1")
		}
		key := localityKey{loc.GetRegion(), loc.GetZone(), loc.GetSubZone(), l.GetPriority()}
		if seen[key] {
			v.add(lres, "repeats locality %v at priority %d", loc, l.GetPriority())
		}
		seen[key] = true
		priorities[l.GetPriority()] = true
		for _, e := range l.GetLbEndpoints() {
			v.lbEndpoint(lres, e, addrs)
		}
	}
	for p := range uint32(len(priorities)) {
		if !priorities[p] {
			v.add(res, "priority %d is missing (priorities must be contiguous from 0)", p)
			break
		}
	}
}

// lbEndpoint checks one endpoint and records its address in addrs.
func (v *validator) lbEndpoint(res string, e *endpointv3.LbEndpoint, addrs map[string]bool) {
	if w := e.GetLoadBalancingWeight(); w != nil && w.GetValue() < 1 {
		v.add(res, "endpoint load_balancing_weight must be unset or at least 1")
	}
	sa := e.GetEndpoint().GetAddress().GetSocketAddress()
	if sa == nil || sa.GetAddress() == "" || sa.GetPortValue() == 0 {
		v.add(res, "endpoint needs a socket address with an address and a port")
		return
	}
	addr := net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
	if addrs[addr] {
		v.add(res, "duplicate endpoint with the same address %s", addr)
	}
	addrs[addr] = true
}

// references checks route → cluster, EDS cluster → assignment and
// aggregate → children, and that no aggregate contains itself.
func (v *validator) references(routeRefs []string, clusters map[string]clusterRefs, assignments map[string]bool) {
	reported := make(map[string]bool)
	for _, name := range routeRefs {
		if _, ok := clusters[name]; !ok && !reported[name] {
			reported[name] = true
			v.add("route configuration", "routes to cluster %q, which does not exist", name)
		}
	}
	for _, name := range sortedKeys(clusters) {
		refs := clusters[name]
		res := fmt.Sprintf("cluster %q", name)
		if refs.eds != "" && !assignments[refs.eds] {
			v.add(res, "reads assignment %q, which does not exist", refs.eds)
		}
		for _, child := range refs.children {
			if _, ok := clusters[child]; !ok {
				v.add(res, "has child cluster %q, which does not exist", child)
			}
		}
		if aggregateCycle(name, clusters) {
			v.add(res, "is its own descendant through aggregate children")
		}
	}
}

// aggregateCycle reports whether cluster name is reachable from its own
// children.
func aggregateCycle(name string, clusters map[string]clusterRefs) bool {
	seen := make(map[string]bool)
	stack := append([]string(nil), clusters[name].children...)
	for len(stack) > 0 {
		c := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if c == name {
			return true
		}
		if !seen[c] {
			seen[c] = true
			stack = append(stack, clusters[c].children...)
		}
	}
	return false
}
