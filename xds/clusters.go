package xds

import (
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	aggregatev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/clusters/aggregate/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/xds/grpccheck"
)

// clusters returns the clusters of the resolver nodes keys (§3.3, §3.5),
// sorted by name.
func (b *builder) clusters(keys []string) ([]*clusterv3.Cluster, error) {
	var out []*clusterv3.Cluster
	for _, key := range keys {
		info := b.resolvers[key].Resolver
		t := b.chain.Targets[info.Target]
		name := ClusterName(b.chain, t)
		timeout := connectTimeout(info)
		lb := b.resolvers[key].LoadBalancer
		failover := b.failoverTargets(info)
		if len(failover) == 0 {
			c := edsCluster(name, t.Name, timeout)
			setLBPolicy(c, lb)
			out = append(out, c)
			continue
		}
		children := make([]string, 0, len(failover)+1)
		for i, ct := range append([]*chain.Target{t}, failover...) {
			child := FailoverChildName(i, name)
			children = append(children, child)
			c := edsCluster(child, ct.Name, timeout)
			setLBPolicy(c, lb)
			out = append(out, c)
		}
		agg, err := aggregateCluster(name, children, timeout)
		if err != nil {
			return nil, err
		}
		// gRPC clients balance an aggregate's endpoints with the
		// aggregate's own policy (gRFC A37), so it carries it too.
		setLBPolicy(agg, lb)
		out = append(out, agg)
	}
	slices.SortFunc(out, func(a, b *clusterv3.Cluster) int { return cmp.Compare(a.GetName(), b.GetName()) })
	for i := 1; i < len(out); i++ {
		if out[i].GetName() == out[i-1].GetName() {
			return nil, invalidf("two clusters are named %q", out[i].GetName())
		}
	}
	return out, nil
}

// failoverTargets returns the failover targets of a resolver node in
// order, without repeats and without the primary target itself (a
// failover candidate that a redirect leads back to the primary).
func (b *builder) failoverTargets(info *chain.ResolverNodeInfo) []*chain.Target {
	if info.Failover == nil {
		return nil
	}
	var out []*chain.Target
	seen := map[string]bool{info.Target: true}
	for _, id := range info.Failover.Targets {
		if !seen[id] {
			seen[id] = true
			out = append(out, b.chain.Targets[id])
		}
	}
	return out
}

// connectTimeout is the resolver node's connect timeout, or the
// compiler's default for a node without one.
func connectTimeout(info *chain.ResolverNodeInfo) time.Duration {
	if t := time.Duration(info.ConnectTimeout); t > 0 {
		return t
	}
	return chain.DefaultConnectTimeout
}

// edsCluster is a round-robin, plaintext EDS cluster reading assignment
// edsName over ADS.
func edsCluster(name, edsName string, timeout time.Duration) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig: &clusterv3.Cluster_EdsClusterConfig{
			EdsConfig:   adsSource(),
			ServiceName: edsName,
		},
		ConnectTimeout: durationpb.New(timeout),
	}
}

// setLBPolicy sets the load-balancing policy of a resolver's LoadBalancer
// on c: least_request (choice_count when set) and ring_hash (xxHash, ring
// sizes when set), which gRPC clients honour. round_robin and "" keep
// the default; maglev and random, which gRPC clients NACK, keep round
// robin too (grpccheck warns).
func setLBPolicy(c *clusterv3.Cluster, lb *chain.LoadBalancer) {
	if lb == nil {
		return
	}
	switch lb.Policy {
	case chain.LBPolicyLeastRequest:
		c.LbPolicy = clusterv3.Cluster_LEAST_REQUEST
		if lr := lb.LeastRequestConfig; lr != nil && lr.ChoiceCount > 0 {
			c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{
				ChoiceCount: wrapperspb.UInt32(lr.ChoiceCount),
			}}
		}
	case chain.LBPolicyRingHash:
		c.LbPolicy = clusterv3.Cluster_RING_HASH
		rh := &clusterv3.Cluster_RingHashLbConfig{HashFunction: clusterv3.Cluster_RingHashLbConfig_XX_HASH}
		if cfg := lb.RingHashConfig; cfg != nil {
			if cfg.MinimumRingSize > 0 {
				rh.MinimumRingSize = wrapperspb.UInt64(cfg.MinimumRingSize)
			}
			if cfg.MaximumRingSize > 0 {
				rh.MaximumRingSize = wrapperspb.UInt64(cfg.MaximumRingSize)
			}
		}
		c.LbConfig = &clusterv3.Cluster_RingHashLbConfig_{RingHashLbConfig: rh}
	}
}

// aggregateCluster is the failover cluster of §3.5: its children in
// priority order, lb_policy left at ROUND_ROBIN (CLUSTER_PROVIDED is
// NACKed by grpc-go).
func aggregateCluster(name string, children []string, timeout time.Duration) (*clusterv3.Cluster, error) {
	cfg, err := anypb.New(&aggregatev3.ClusterConfig{Clusters: children})
	if err != nil {
		return nil, fmt.Errorf("encode aggregate cluster %q: %w", name, err)
	}
	return &clusterv3.Cluster{
		Name: name,
		ClusterDiscoveryType: &clusterv3.Cluster_ClusterType{ClusterType: &clusterv3.Cluster_CustomClusterType{
			Name:        aggregateClusterType,
			TypedConfig: cfg,
		}},
		ConnectTimeout: durationpb.New(timeout),
	}, nil
}

// endpoints returns one assignment per target the resolver nodes keys use
// (primary and failover), sorted by name, and the instance warnings.
func (b *builder) endpoints(keys []string) ([]*endpointv3.ClusterLoadAssignment, []Warning, error) {
	targets := make(map[string]*chain.Target)
	for _, key := range keys {
		info := b.resolvers[key].Resolver
		for _, t := range append([]*chain.Target{b.chain.Targets[info.Target]}, b.failoverTargets(info)...) {
			if prev := targets[t.Name]; prev != nil && prev.ID != t.ID {
				return nil, nil, invalidf("targets %s and %s are both named %q", prev.ID, t.ID, t.Name)
			}
			targets[t.Name] = t
		}
	}
	out := make([]*endpointv3.ClusterLoadAssignment, 0, len(targets))
	var warnings []Warning
	for _, name := range sortedKeys(targets) {
		cla, w, err := b.assignment(targets[name])
		if err != nil {
			return nil, nil, err
		}
		out = append(out, cla)
		warnings = append(warnings, w...)
	}
	return out, warnings, nil
}

// instance is one selected instance as an endpoint.
type instance struct {
	s       *catalog.Stored
	addr    string // host:port, the identity grpc-go checks for repeats
	healthy bool
}

// assignment returns target t's assignment (§3.4): its selected instances
// in one locality per datacenter, repeats of an address dropped.
func (b *builder) assignment(t *chain.Target) (*endpointv3.ClusterLoadAssignment, []Warning, error) {
	var all []*catalog.Stored
	if b.instances != nil {
		all = b.instances(t.Service)
	}
	selected, err := catalog.Select(all, t)
	if err != nil {
		return nil, nil, fmt.Errorf("select the instances of target %s: %w", t.ID, err)
	}
	list := make([]instance, 0, len(selected))
	for _, s := range selected {
		if s.Address == "" || s.Port < 1 || s.Port > 65535 {
			return nil, nil, invalidf("instance %q of target %s has address %q port %d", s.ID, t.ID, s.Address, s.Port)
		}
		list = append(list, instance{
			s:       s,
			addr:    net.JoinHostPort(s.Address, strconv.Itoa(s.Port)),
			healthy: s.Healthy(t.Subset.OnlyPassing),
		})
	}
	list, warnings := dedupe(t, list)
	return &endpointv3.ClusterLoadAssignment{ClusterName: t.Name, Endpoints: localities(t, list)}, warnings, nil
}

// dedupe sorts the instances by address and port and keeps one per
// address: a healthy one if any, else the lowest ID.
func dedupe(t *chain.Target, list []instance) ([]instance, []Warning) {
	slices.SortFunc(list, func(a, b instance) int {
		return cmp.Or(
			cmp.Compare(a.s.Address, b.s.Address),
			cmp.Compare(a.s.Port, b.s.Port),
			-cmp.Compare(boolInt(a.healthy), boolInt(b.healthy)),
			cmp.Compare(a.s.ID, b.s.ID),
		)
	})
	var warnings []Warning
	out := list[:0]
	for _, in := range list {
		if n := len(out); n > 0 && out[n-1].addr == in.addr {
			warnings = append(warnings, Warning{
				Node: "target:" + t.ID, Route: -1, Feature: grpccheck.FeatureDuplicateAddress,
				Detail: fmt.Sprintf("instances %q and %q both use %s: only %q is listed", out[n-1].s.ID, in.s.ID, in.addr, out[n-1].s.ID),
			})
			continue
		}
		out = append(out, in)
	}
	return out, warnings
}

// localities groups the instances into one locality per datacenter
// (region = datacenter, weight 1, priority 0), in datacenter order; no
// instances give one empty locality in the target's datacenter.
func localities(t *chain.Target, list []instance) []*endpointv3.LocalityLbEndpoints {
	byDC := make(map[string][]*endpointv3.LbEndpoint)
	for _, in := range list {
		dc := cmp.Or(in.s.Datacenter, t.Datacenter)
		byDC[dc] = append(byDC[dc], lbEndpoint(in))
	}
	if len(byDC) == 0 {
		byDC[t.Datacenter] = nil
	}
	out := make([]*endpointv3.LocalityLbEndpoints, 0, len(byDC))
	for _, dc := range sortedKeys(byDC) {
		out = append(out, &endpointv3.LocalityLbEndpoints{
			Locality:            &corev3.Locality{Region: dc},
			LbEndpoints:         byDC[dc],
			LoadBalancingWeight: wrapperspb.UInt32(1),
		})
	}
	return out
}

// lbEndpoint is one instance as an endpoint, HEALTHY or UNHEALTHY (§3.4).
func lbEndpoint(in instance) *endpointv3.LbEndpoint {
	health := corev3.HealthStatus_UNHEALTHY
	if in.healthy {
		health = corev3.HealthStatus_HEALTHY
	}
	return &endpointv3.LbEndpoint{
		HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address:       in.s.Address,
				PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(in.s.Port)},
			}}},
		}},
		HealthStatus: health,
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
