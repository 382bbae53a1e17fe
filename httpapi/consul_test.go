package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	capi "github.com/hashicorp/consul/api"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// consulClient returns the official Consul client pointed at addr.
func consulClient(t *testing.T, addr string) *capi.Client {
	t.Helper()
	cfg := capi.DefaultNonPooledConfig()
	cfg.Address, cfg.Scheme, cfg.Token = addr, "http", ""
	cfg.WaitTime = 0
	c, err := capi.NewClient(cfg)
	if err != nil {
		t.Fatalf("consul api.NewClient: %v", err)
	}
	return c
}

// statusCode returns the HTTP status of a consul/api error (0 if none).
func statusCode(err error) int {
	var se capi.StatusError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

func TestConsulClientConfigEntries(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	c := consulClient(t, s.HTTPAddr())
	ce := c.ConfigEntries()

	// What the official client sends for service-defaults: MeshGateway {},
	// Expose {} and zero indexes.
	ok, _, err := ce.Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "http"}, nil)
	if err != nil || !ok {
		t.Fatalf("Set(service-defaults/web) = %v, %v; want true", ok, err)
	}
	got, meta, err := ce.Get(capi.ServiceDefaults, "web", nil)
	if err != nil {
		t.Fatalf("Get(service-defaults/web): %v", err)
	}
	sd, isSD := got.(*capi.ServiceConfigEntry)
	if !isSD || sd.Protocol != "http" || sd.Name != "web" || sd.ModifyIndex == 0 || sd.CreateIndex != sd.ModifyIndex {
		t.Fatalf("Get(service-defaults/web) = %#v, want protocol http with indexes", got)
	}
	if meta.LastIndex == 0 || !meta.KnownLeader {
		t.Fatalf("query meta = %+v, want an index and a known leader", meta)
	}

	// CAS: a stale index is refused, the current one applies.
	stale := sd.ModifyIndex
	if ok, _, err := ce.CAS(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "grpc"}, stale+100, nil); err != nil || ok {
		t.Fatalf("CAS with a wrong index = %v, %v; want false", ok, err)
	}
	if ok, _, err := ce.CAS(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "grpc"}, stale, nil); err != nil || !ok {
		t.Fatalf("CAS with the current index = %v, %v; want true", ok, err)
	}
	if ok, _, err := ce.CAS(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "new"}, 0, nil); err != nil || !ok {
		t.Fatalf("CAS create-only of a new entry = %v, %v; want true", ok, err)
	}

	// A resolver and a splitter, through the client's own types.
	res := &capi.ServiceResolverConfigEntry{Kind: capi.ServiceResolver, Name: "web", ConnectTimeout: 7 * time.Second,
		DefaultSubset: "v1",
		Subsets:       map[string]capi.ServiceResolverSubset{"v1": {Filter: "Service.Meta.version == v1"}, "v2": {Filter: "Service.Meta.version == v2"}}}
	if ok, _, err := ce.Set(res, nil); err != nil || !ok {
		t.Fatalf("Set(resolver) = %v, %v", ok, err)
	}
	split := &capi.ServiceSplitterConfigEntry{Kind: capi.ServiceSplitter, Name: "web",
		Splits: []capi.ServiceSplit{{Weight: 90, ServiceSubset: "v1"}, {Weight: 10, ServiceSubset: "v2"}}}
	if ok, _, err := ce.Set(split, nil); err != nil || !ok {
		t.Fatalf("Set(splitter) = %v, %v", ok, err)
	}
	gotRes, _, err := ce.Get(capi.ServiceResolver, "web", nil)
	if err != nil {
		t.Fatalf("Get(resolver): %v", err)
	}
	if r := gotRes.(*capi.ServiceResolverConfigEntry); r.ConnectTimeout != 7*time.Second || r.Subsets["v2"].Filter != "Service.Meta.version == v2" {
		t.Fatalf("resolver read back = %+v", r)
	}

	list, _, err := ce.List(capi.ServiceDefaults, nil)
	if err != nil {
		t.Fatalf("List(service-defaults): %v", err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.GetName())
	}
	if !slices.Equal(names, []string{"new", "web"}) {
		t.Fatalf("List(service-defaults) names = %v, want [new web]", names)
	}

	// Graph validation: web is split, so it must stay HTTP-like. Consul
	// 1.6 answers 500 with the message.
	_, _, err = ce.Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "tcp"}, nil)
	if statusCode(err) != http.StatusInternalServerError {
		t.Fatalf("Set(web tcp) under a splitter = %v, want a 500", err)
	}
	want := `discovery chain "web" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`
	var se capi.StatusError
	if errors.As(err, &se) && se.Body != want {
		t.Fatalf("graph error body = %q, want %q", se.Body, want)
	}

	// Deletes: CAS with a wrong index is false; plain delete; then 404.
	cur, _, err := ce.Get(capi.ServiceDefaults, "new", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _, err := ce.DeleteCAS(capi.ServiceDefaults, "new", cur.GetModifyIndex()+1, nil); err != nil || ok {
		t.Fatalf("DeleteCAS wrong index = %v, %v; want false", ok, err)
	}
	if ok, _, err := ce.DeleteCAS(capi.ServiceDefaults, "new", cur.GetModifyIndex(), nil); err != nil || !ok {
		t.Fatalf("DeleteCAS current index = %v, %v; want true", ok, err)
	}
	if _, err := ce.Delete(capi.ServiceSplitter, "web", nil); err != nil {
		t.Fatalf("Delete(splitter): %v", err)
	}
	_, _, err = ce.Get(capi.ServiceSplitter, "web", nil)
	if statusCode(err) != http.StatusNotFound {
		t.Fatalf("Get of a deleted entry = %v, want 404", err)
	}
	if errors.As(err, &se) && se.Body != `Config entry not found for "service-splitter" / "web"` {
		t.Fatalf("404 body = %q", se.Body)
	}

	// Stale and consistent reads arrive with empty values.
	for _, q := range []*capi.QueryOptions{{AllowStale: true}, {RequireConsistent: true}} {
		if _, _, err := ce.Get(capi.ServiceDefaults, "web", q); err != nil {
			t.Fatalf("Get with %+v: %v", q, err)
		}
	}
}

func TestConsulClientBlockingQueryWakesOnWrite(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	c := consulClient(t, s.HTTPAddr())
	ce := c.ConfigEntries()
	if _, _, err := ce.Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "http"}, nil); err != nil {
		t.Fatal(err)
	}
	_, meta, err := ce.Get(capi.ServiceDefaults, "web", nil)
	if err != nil {
		t.Fatal(err)
	}

	type result struct {
		entry capi.ConfigEntry
		meta  *capi.QueryMeta
		err   error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		// The client sends wait as "60000ms".
		e, m, err := ce.Get(capi.ServiceDefaults, "web", &capi.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- result{e, m, err}
	}()
	testutil.Poll(t, 10*time.Second, "the HTTP blocking query to be waiting", func() bool {
		return s.Server().BlockedQueries() > 0
	})
	select {
	case r := <-done:
		t.Fatalf("blocking query returned before any write: %+v", r)
	default:
	}
	if _, _, err := ce.Set(&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "grpc"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("blocking Get: %v", r.err)
		}
		if r.meta.LastIndex <= meta.LastIndex || r.entry.(*capi.ServiceConfigEntry).Protocol != "grpc" {
			t.Fatalf("blocking Get woke with index %d (was %d), entry %+v", r.meta.LastIndex, meta.LastIndex, r.entry)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Fatalf("blocking Get took %s: it did not wake on the write", d)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("blocking Get did not return within 20s of the write")
	}

	// A short wait returns with the same index when nothing changes.
	_, m2, err := ce.Get(capi.ServiceDefaults, "web", &capi.QueryOptions{WaitIndex: meta.LastIndex + 1000, WaitTime: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("blocking Get with a short wait: %v", err)
	}
	if m2.LastIndex == 0 {
		t.Fatalf("short wait meta = %+v", m2)
	}
}

// TestConsulClientCluster runs against a three-node cluster: status,
// a write through a follower (forwarded to the leader), consistent and
// stale reads on the other follower, and the discovery chain from HTTP
// equal to the chain from gRPC.
func TestConsulClientCluster(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	followers := c.Followers()
	f1 := consulClient(t, followers[0].HTTPAddr())
	f2 := consulClient(t, followers[1].HTTPAddr())

	// Status, as seen from a follower.
	gotLeader, err := f1.Status().Leader()
	if err != nil || gotLeader != leader.Server().RaftAddr() {
		t.Fatalf("Status().Leader() = %q, %v; want %q", gotLeader, err, leader.Server().RaftAddr())
	}
	peers, err := f1.Status().Peers()
	if err != nil || len(peers) != 3 || !slices.Contains(peers, leader.Server().RaftAddr()) {
		t.Fatalf("Status().Peers() = %v, %v; want the 3 Raft addresses", peers, err)
	}

	// A write through a follower is forwarded to the leader.
	for _, e := range []capi.ConfigEntry{
		&capi.ServiceConfigEntry{Kind: capi.ServiceDefaults, Name: "web", Protocol: "http"},
		&capi.ServiceResolverConfigEntry{Kind: capi.ServiceResolver, Name: "web", DefaultSubset: "v1",
			Subsets: map[string]capi.ServiceResolverSubset{"v1": {Filter: "Service.Meta.version == v1"}, "v2": {Filter: "Service.Meta.version == v2"}}},
		&capi.ServiceSplitterConfigEntry{Kind: capi.ServiceSplitter, Name: "web",
			Splits: []capi.ServiceSplit{{Weight: 90, ServiceSubset: "v1"}, {Weight: 10, ServiceSubset: "v2"}}},
	} {
		if ok, _, err := f1.ConfigEntries().Set(e, nil); err != nil || !ok {
			t.Fatalf("Set(%s/%s) through a follower = %v, %v", e.GetKind(), e.GetName(), ok, err)
		}
	}
	// Default (linearizable) read on the other follower sees the write at once.
	if _, _, err := f2.ConfigEntries().Get(capi.ServiceSplitter, "web", nil); err != nil {
		t.Fatalf("Get on the other follower: %v", err)
	}
	// A stale read there sees it once applied.
	testutil.Poll(t, 10*time.Second, "the splitter on a follower's stale read", func() bool {
		_, _, err := f2.ConfigEntries().Get(capi.ServiceSplitter, "web", &capi.QueryOptions{AllowStale: true})
		return err == nil
	})

	// The discovery chain from HTTP (official client) equals the gRPC one.
	chainResp, _, err := f2.DiscoveryChain().Get("web", nil, nil)
	if err != nil {
		t.Fatalf("DiscoveryChain().Get(web): %v", err)
	}
	ch := chainResp.Chain
	if ch.StartNode != "splitter:web" || ch.Protocol != "http" || len(ch.Nodes["splitter:web"].Splits) != 2 {
		t.Fatalf("chain = %+v, want a splitter start node", ch)
	}
	httpChain := rawChain(t, "http://"+followers[1].HTTPAddr()+"/v1/discovery-chain/web", nil)
	grpcClient := servertest.NewClient(t, followers[1].GRPCAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	gr, err := chainstorev1.NewChainServiceClient(grpcClient.Conn()).GetChain(ctx, &chainstorev1.GetChainRequest{Chain: &chainstorev1.ChainRef{Service: "web"}})
	if err != nil {
		t.Fatalf("gRPC GetChain(web): %v", err)
	}
	if !jsonEqual(t, httpChain, gr.GetVersion().GetChain()) {
		t.Fatalf("HTTP chain %s\n!= gRPC chain %s", httpChain, gr.GetVersion().GetChain())
	}
}

// rawChain GETs (or POSTs body to) url and returns its "Chain" member.
func rawChain(t *testing.T, url string, body []byte) json.RawMessage {
	t.Helper()
	resp := do(t, method(body), url, body)
	if resp.code != http.StatusOK {
		t.Fatalf("%s %s = %d %s", method(body), url, resp.code, resp.body)
	}
	var out struct{ Chain json.RawMessage }
	if err := json.Unmarshal(resp.body, &out); err != nil {
		t.Fatalf("decode %s: %v", resp.body, err)
	}
	return out.Chain
}

func method(body []byte) string {
	if body != nil {
		return http.MethodPost
	}
	return http.MethodGet
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	ja, _ := json.Marshal(va)
	jb, _ := json.Marshal(vb)
	return string(ja) == string(jb)
}

func TestConsulClientDiscoveryChainOverrides(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	c := consulClient(t, s.HTTPAddr())
	if _, _, err := c.ConfigEntries().Set(&capi.ServiceResolverConfigEntry{Kind: capi.ServiceResolver, Name: "api", ConnectTimeout: 3 * time.Second}, nil); err != nil {
		t.Fatal(err)
	}
	resp, _, err := c.DiscoveryChain().Get("api", &capi.DiscoveryChainOptions{
		EvaluateInDatacenter:   "dc9",
		OverrideConnectTimeout: 11 * time.Second,
		OverrideProtocol:       "grpc",
		OverrideMeshGateway:    capi.MeshGatewayConfig{Mode: capi.MeshGatewayModeLocal},
	}, nil)
	if err != nil {
		t.Fatalf("DiscoveryChain().Get with overrides: %v", err)
	}
	ch := resp.Chain
	if ch.Datacenter != "dc9" || ch.Protocol != "grpc" || ch.CustomizationHash == "" {
		t.Fatalf("chain = %+v; want dc9, grpc and a customization hash", ch)
	}
	node := ch.Nodes[ch.StartNode]
	if node == nil || node.Resolver == nil || node.Resolver.ConnectTimeout != 11*time.Second {
		t.Fatalf("start node = %+v; want a resolver with the overridden connect timeout", node)
	}
	for _, tg := range ch.Targets {
		if tg.MeshGateway.Mode != capi.MeshGatewayModeLocal {
			t.Fatalf("target %s mesh gateway = %q, want local", tg.ID, tg.MeshGateway.Mode)
		}
	}
	// A bad mode is refused with Consul's text.
	r := do(t, http.MethodPost, "http://"+s.HTTPAddr()+"/v1/discovery-chain/api", []byte(`{"OverrideMeshGateway":{"Mode":"sideways"}}`))
	if r.code != http.StatusBadRequest || string(r.body) != "Invalid OverrideMeshGateway.Mode parameter" {
		t.Fatalf("bad mesh gateway mode = %d %q", r.code, r.body)
	}
}

func TestConsulClientCatalog(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	c := consulClient(t, s.HTTPAddr())
	for i, id := range []string{"web-1", "web-2"} {
		reg := &capi.CatalogRegistration{Node: "host", Address: "10.0.0.1", Service: &capi.AgentService{
			ID: id, Service: "web", Port: 8080 + i, Tags: []string{"v" + string(rune('1'+i))}, Meta: map[string]string{"version": "v1"},
		}}
		if _, err := c.Catalog().Register(reg, nil); err != nil {
			t.Fatalf("Catalog().Register(%s): %v", id, err)
		}
	}
	svcs, meta, err := c.Catalog().Services(nil)
	if err != nil {
		t.Fatalf("Catalog().Services: %v", err)
	}
	if _, ok := svcs["web"]; !ok || len(svcs) != 1 || meta.LastIndex == 0 {
		t.Fatalf("Catalog().Services = %v (index %d), want web", svcs, meta.LastIndex)
	}
	insts, _, err := c.Catalog().Service("web", "", nil)
	if err != nil || len(insts) != 2 {
		t.Fatalf("Catalog().Service(web) = %v, %v; want 2 instances", insts, err)
	}
	if insts[0].ServiceAddress != "10.0.0.1" || insts[0].ServiceMeta["version"] != "v1" {
		t.Fatalf("instance = %+v", insts[0])
	}
	tagged, _, err := c.Catalog().Service("web", "v2", nil)
	if err != nil || len(tagged) != 1 || tagged[0].ServiceID != "web-2" {
		t.Fatalf("Catalog().Service(web, tag v2) = %+v, %v; want web-2", tagged, err)
	}
	entries, _, err := c.Health().Service("web", "", true, nil)
	if err != nil || len(entries) != 2 || entries[0].Checks.AggregatedStatus() != capi.HealthPassing {
		t.Fatalf("Health().Service(web, passing) = %+v, %v", entries, err)
	}
	if _, err := c.Catalog().Deregister(&capi.CatalogDeregistration{Node: "host", ServiceID: "web-1"}, nil); err != nil {
		t.Fatalf("Catalog().Deregister: %v", err)
	}
	entries, _, err = c.Health().Service("web", "", false, nil)
	if err != nil || len(entries) != 1 || entries[0].Service.ID != "web-2" {
		t.Fatalf("after deregister: %+v, %v", entries, err)
	}
	// A registration with a failing check cannot be represented: refused.
	_, err = c.Catalog().Register(&capi.CatalogRegistration{Node: "h", Address: "10.0.0.2",
		Service: &capi.AgentService{ID: "x", Service: "x"}, Check: &capi.AgentCheck{CheckID: "c", Status: capi.HealthCritical}}, nil)
	if statusCode(err) != http.StatusBadRequest {
		t.Fatalf("register with a critical check = %v, want 400", err)
	}
}

func TestConsulClientDiscoveryChainBlocks(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	c := consulClient(t, s.HTTPAddr())
	if _, _, err := c.ConfigEntries().Set(&capi.ServiceResolverConfigEntry{Kind: capi.ServiceResolver, Name: "api", ConnectTimeout: 3 * time.Second}, nil); err != nil {
		t.Fatal(err)
	}
	first, meta, err := c.DiscoveryChain().Get("api", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	subscriptions := func() float64 {
		info, err := c.Agent().Metrics()
		if err != nil {
			t.Fatalf("Agent().Metrics(): %v", err)
		}
		for _, g := range info.Gauges {
			if g.Name == "chainstore_chain_subscriptions" {
				return float64(g.Value)
			}
		}
		t.Fatal("no chainstore_chain_subscriptions gauge")
		return 0
	}
	idle := subscriptions()

	type result struct {
		resp *capi.DiscoveryChainResponse
		meta *capi.QueryMeta
		err  error
	}
	done := make(chan result, 1)
	go func() {
		r, m, err := c.DiscoveryChain().Get("api", nil, &capi.QueryOptions{WaitIndex: meta.LastIndex, WaitTime: time.Minute})
		done <- result{r, m, err}
	}()
	// The blocked chain read holds a subscription on the hub.
	testutil.Poll(t, 10*time.Second, "the blocking chain read to subscribe", func() bool { return subscriptions() > idle })
	if _, _, err := c.ConfigEntries().Set(&capi.ServiceResolverConfigEntry{Kind: capi.ServiceResolver, Name: "api", ConnectTimeout: 9 * time.Second}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("blocking chain read: %v", r.err)
		}
		node := r.resp.Chain.Nodes[r.resp.Chain.StartNode]
		if r.meta.LastIndex <= meta.LastIndex || node.Resolver.ConnectTimeout != 9*time.Second {
			t.Fatalf("woke with index %d (was %d), timeout %v (was %v)", r.meta.LastIndex, meta.LastIndex,
				node.Resolver.ConnectTimeout, first.Chain.Nodes[first.Chain.StartNode].Resolver.ConnectTimeout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("blocking chain read did not return within 20s of the write")
	}
}
