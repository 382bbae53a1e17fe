package grpccheck

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

// Warnings for the entry fields later Consul versions added.

func TestWarningsLaterFields(t *testing.T) {
	t.Parallel()
	c := compile(t,
		grpcDefaults("web"), grpcDefaults("a"), grpcDefaults("b"), grpcDefaults("c"),
		&chain.ServiceResolverConfigEntry{Kind: chain.KindServiceResolver, Name: "c",
			LoadBalancer: &chain.LoadBalancer{Policy: chain.LBPolicyRingHash, HashPolicies: []chain.HashPolicy{
				{Field: chain.HashPolicyQueryParam, FieldValue: "id"}, {SourceIP: true}}}},
		&chain.ServiceResolverConfigEntry{Kind: chain.KindServiceResolver, Name: "b",
			LoadBalancer: &chain.LoadBalancer{Policy: chain.LBPolicyRandom}},
		&chain.ServiceSplitterConfigEntry{Kind: chain.KindServiceSplitter, Name: "web", Splits: []chain.ServiceSplit{
			{Weight: 40, Service: "a", RequestHeaders: &chain.HTTPHeaderModifiers{Set: map[string]string{"x": "1"}}},
			{Weight: 30, Service: "b"},
			{Weight: 30, Service: "c"},
		}},
		// a's leg merges with the one below it in xDS: a splitter leg
		// reaching resolver:a twice with different modifiers.
		&chain.ServiceSplitterConfigEntry{Kind: chain.KindServiceSplitter, Name: "a", Splits: []chain.ServiceSplit{
			{Weight: 50, RequestHeaders: &chain.HTTPHeaderModifiers{Add: map[string]string{"y": "1"}}},
			{Weight: 50, Namespace: "default"},
		}},
	)
	var got []string
	for _, w := range Warnings(c) {
		got = append(got, w.String())
	}
	want := []string{
		`splitter:web: HeaderModifiers: split 0 (to resolver:a.default.dc1): header add/set/remove is ignored by gRPC clients (kept for Envoy)`,
		`splitter:web: HeaderModifiers: split 1 reaches resolver:a.default.dc1 like split 0: its header modifiers are dropped, split 0's apply`,
		`resolver:b.default.dc1: LoadBalancer: gRPC clients NACK the random policy: the cluster is published as round robin`,
		`resolver:c.default.dc1: HashPolicy: HashPolicies[0] (query_parameter "id") is ignored by gRPC clients (kept for Envoy)`,
		`resolver:c.default.dc1: HashPolicy: HashPolicies[1] (source IP) is ignored by gRPC clients (kept for Envoy)`,
		`resolver:c.default.dc1: HashPolicy: no header hash policy: gRPC clients hash each call at random, so calls are not sticky`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Warnings (-want +got):\n%s", diff)
	}
}

func TestRetryConditions(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		d    *chain.ServiceRouteDestination
		want []string
	}{
		"none":              {&chain.ServiceRouteDestination{}, nil},
		"503 only":          {&chain.ServiceRouteDestination{RetryOnStatusCodes: []uint32{503}}, []string{"unavailable"}},
		"envoy only":        {&chain.ServiceRouteDestination{RetryOn: []string{"5xx", "reset"}}, nil},
		"mixed in order":    {&chain.ServiceRouteDestination{RetryOn: []string{"internal", "5xx", "cancelled", "internal"}, RetryOnStatusCodes: []uint32{503}}, []string{"internal", "cancelled", "unavailable"}},
		"unavailable twice": {&chain.ServiceRouteDestination{RetryOn: []string{"unavailable"}, RetryOnStatusCodes: []uint32{503}}, []string{"unavailable"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if got := RetryConditions(tc.d); !cmp.Equal(got, tc.want) {
				t.Errorf("RetryConditions() = %v, want %v", got, tc.want)
			}
		})
	}
}
