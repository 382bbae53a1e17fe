package ui_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/ui"
)

// env is a server with the HTTP API and the UI mounted on it.
type env struct {
	base   string // http://host:port
	single *servertest.Single
}

// startEnv starts a single real server (Raft on bbolt, HTTP on loopback)
// and mounts the UI on its HTTP port, as stored does; with -url it uses
// that server instead.
func startEnv(t *testing.T) *env {
	t.Helper()
	if *serverURL != "" {
		return &env{base: strings.TrimSuffix(*serverURL, "/")}
	}
	s := servertest.StartSingle(t)
	if err := s.Server().Mount(ui.Prefix, ui.Handler()); err != nil {
		t.Fatalf("mount the UI: %v", err)
	}
	return &env{base: "http://" + s.HTTPAddr(), single: s}
}

func (e *env) put(t *testing.T, doc string) {
	t.Helper()
	put(t, e.base, doc)
}

// The entries of the test chain: web is HTTP, routed (/admin to admin),
// split 90/10 between two subsets of its resolver.
const (
	proxyDefaults = `{"Kind": "proxy-defaults", "Name": "global", "Config": {"protocol": "http"}}`
	webResolver   = `{"Kind": "service-resolver", "Name": "web", "ConnectTimeout": "3s", "Subsets": {
		"v1": {"Filter": "Service.Meta.version == v1"},
		"v2": {"Filter": "Service.Meta.version == v2"}},
		"Failover": {"v1": {"ServiceSubset": "v2"}}}`
	webRouter = `{"Kind": "service-router", "Name": "web", "Routes": [
		{"Match": {"HTTP": {"PathPrefix": "/admin"}}, "Destination": {"Service": "admin"}}]}`
)

func webSplitter(v1, v2 int) string {
	return fmt.Sprintf(`{"Kind": "service-splitter", "Name": "web", "Splits": [
		{"Weight": %d, "ServiceSubset": "v1"}, {"Weight": %d, "ServiceSubset": "v2"}]}`, v1, v2)
}

// webChainDrawn is true (over the graph g) once the page shows the chain
// with all of writeWebChain's entries: the chain is compiled
// asynchronously, so the first answer may be an earlier version.
const webChainDrawn = `g.weights.length === 2 && g.nodes.some((n) => n.id === 'router:web')`

func writeWebChain(t *testing.T, e *env) {
	t.Helper()
	for _, doc := range []string{proxyDefaults, webResolver, webSplitter(90, 10), webRouter} {
		e.put(t, doc)
	}
}

// graphNode is one drawn node as the DOM has it.
type graphNode struct {
	ID   string   `json:"id"`
	Name string   `json:"name"`
	Rows []string `json:"rows"`
}

// graph is the rendered chain graph, read from the SVG's text nodes.
type graph struct {
	Service string      `json:"service"`
	Nodes   []graphNode `json:"nodes"`
	Edges   []string    `json:"edges"`
	Weights []string    `json:"weights"`
}

// readGraph is a JavaScript expression: the graph, or null before it is
// drawn.
const readGraph = `(() => {
  const svg = document.querySelector('svg.chain-graph');
  if (!svg) return null;
  return {
    service: svg.dataset.service,
    nodes: [...svg.querySelectorAll('g.node')].map((g) => ({
      id: g.dataset.nodeId,
      name: g.querySelector('text.node-name').textContent,
      rows: [...g.querySelectorAll('text.row')].map((t) => t.textContent),
    })),
    edges: [...svg.querySelectorAll('path.edge')].map((p) => p.dataset.from + ' -> ' + p.dataset.to).sort(),
    weights: [...svg.querySelectorAll('text.weight-row tspan.weight')].map((t) => t.textContent),
  };
})()`

// waitGraph waits until the drawn graph satisfies the JavaScript condition
// cond (over a variable g holding the readGraph value) and returns it.
func waitGraph(b *browser, what, cond string) graph {
	b.t.Helper()
	return waitFor[graph](b, what, `(() => { const g = `+readGraph+`; return g && (`+cond+`) ? g : null; })()`)
}

func nodeByID(t *testing.T, g graph, id string) graphNode {
	t.Helper()
	for _, n := range g.Nodes {
		if n.ID == id {
			return n
		}
	}
	t.Fatalf("no node %s in the graph; nodes: %v", id, g.Nodes)
	return graphNode{}
}

// TestChainPageDrawsAndFollowsChanges opens /ui/chain/web on a real
// server, checks every node, row and edge of the drawn graph, then changes
// the split weights with a PUT and waits for the page to redraw without a
// reload.
func TestChainPageDrawsAndFollowsChanges(t *testing.T) {
	e := startEnv(t)
	writeWebChain(t, e)
	b := newBrowser(t, 1280, 800)
	b.open(e.base + "/ui/chain/web")

	g := waitGraph(b, "the chain graph of web", webChainDrawn)
	var ids []string
	for _, n := range g.Nodes {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	wantIDs := []string{
		"resolver:admin.default.dc1", "resolver:v1.web.default.dc1", "resolver:v2.web.default.dc1",
		"router:web", "splitter:web",
		"target:admin.default.dc1", "target:v1.web.default.dc1", "target:v2.web.default.dc1",
	}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Fatalf("graph nodes (-want +got):\n%s", diff)
	}
	if g.Service != "web" {
		t.Errorf("graph service %q, want web", g.Service)
	}
	if diff := cmp.Diff([]string{"90%", "10%"}, g.Weights); diff != "" {
		t.Errorf("split weights (-want +got):\n%s", diff)
	}

	router := nodeByID(t, g, "router:web")
	if router.Name != "web" {
		t.Errorf("router name %q", router.Name)
	}
	wantRoutes := []string{"PathPrefix /admin", "PathPrefix / (default)"}
	if diff := cmp.Diff(wantRoutes, router.Rows); diff != "" {
		t.Errorf("router rows (-want +got):\n%s", diff)
	}
	splitter := nodeByID(t, g, "splitter:web")
	if diff := cmp.Diff([]string{"90% v1.web.default.dc1", "10% v2.web.default.dc1"}, splitter.Rows); diff != "" {
		t.Errorf("splitter rows (-want +got):\n%s", diff)
	}
	v1 := nodeByID(t, g, "resolver:v1.web.default.dc1")
	if v1.Name != "v1.web.default.dc1" {
		t.Errorf("resolver name %q", v1.Name)
	}
	for _, want := range []string{"subset v1: Service.Meta.version == v1", "connect timeout 3s", "failover v2.web.default.dc1"} {
		if !slices.Contains(v1.Rows, want) {
			t.Errorf("resolver v1 rows %q lack %q", v1.Rows, want)
		}
	}
	admin := nodeByID(t, g, "resolver:admin.default.dc1")
	if !slices.Contains(admin.Rows, "default resolver (no entry)") {
		t.Errorf("admin resolver rows %q: not marked as a default resolver", admin.Rows)
	}
	target := nodeByID(t, g, "target:v2.web.default.dc1")
	for _, want := range []string{"service web", "subset v2", "datacenter dc1"} {
		if !slices.Contains(target.Rows, want) {
			t.Errorf("target v2 rows %q lack %q", target.Rows, want)
		}
	}
	wantEdges := []string{
		"resolver:admin.default.dc1 -> target:admin.default.dc1",
		"resolver:v1.web.default.dc1 -> target:v1.web.default.dc1",
		"resolver:v1.web.default.dc1 -> target:v2.web.default.dc1", // failover
		"resolver:v2.web.default.dc1 -> target:v2.web.default.dc1",
		"router:web -> resolver:admin.default.dc1",
		"router:web -> splitter:web",
		"splitter:web -> resolver:v1.web.default.dc1",
		"splitter:web -> resolver:v2.web.default.dc1",
	}
	if diff := cmp.Diff(wantEdges, g.Edges); diff != "" {
		t.Errorf("graph edges (-want +got):\n%s", diff)
	}

	// A change arrives through the blocking query: same document, new
	// weights, and the changed node is marked.
	eval[bool](b, `window.__sameDocument = true`)
	wrote := time.Now()
	e.put(t, webSplitter(25, 75))
	g = waitGraph(b, "the new weights 25/75", `g.weights.join(',') === '25%,75%'`)
	t.Logf("the page showed the new weights %s after the PUT was sent", time.Since(wrote).Round(time.Millisecond))
	if !eval[bool](b, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded to show the change")
	}
	if !eval[bool](b, `document.querySelector('g.node[data-node-id="splitter:web"]').classList.contains('changed')`) {
		t.Error("the changed splitter is not marked as changed")
	}
	if eval[bool](b, `document.querySelector('g.node[data-node-id="router:web"]').classList.contains('changed')`) {
		t.Error("the unchanged router is marked as changed")
	}

	// A leg to a third subset adds a node and an edge.
	e.put(t, `{"Kind": "service-resolver", "Name": "web", "Subsets": {
		"v1": {"Filter": "Service.Meta.version == v1"}, "v2": {"Filter": "Service.Meta.version == v2"},
		"v3": {"Filter": "Service.Meta.version == v3"}}}`)
	e.put(t, `{"Kind": "service-splitter", "Name": "web", "Splits": [
		{"Weight": 50, "ServiceSubset": "v1"}, {"Weight": 30, "ServiceSubset": "v2"}, {"Weight": 20, "ServiceSubset": "v3"}]}`)
	g = waitGraph(b, "a third split leg", `g.weights.join(',') === '50%,30%,20%'`)
	nodeByID(t, g, "resolver:v3.web.default.dc1")
	nodeByID(t, g, "target:v3.web.default.dc1")
	if !eval[bool](b, `window.__sameDocument === true`) {
		t.Fatal("the page reloaded to show the change")
	}
	live := eval[string](b, `document.querySelector('.live').textContent`)
	if !strings.HasPrefix(live, "live · index ") {
		t.Errorf("live indicator %q", live)
	}
}

// TestPagesAndEmptyStates checks the services, entries and peers pages and
// what the chain and entry pages say when there is nothing to show.
func TestPagesAndEmptyStates(t *testing.T) {
	e := startEnv(t)
	b := newBrowser(t, 1280, 800)

	// Nothing written yet.
	b.open(e.base + "/ui/services")
	waitFor[bool](b, "the empty services page", `document.body.innerText.includes('No services yet.') &&
		document.body.innerText.includes('storectl put FILE')`)
	b.open(e.base + "/ui/chain/orders")
	text := waitFor[string](b, "the empty-chain notice", `(() => {
		const n = document.querySelector('.notice-empty');
		return n && !n.hidden && document.querySelector('svg.chain-graph') ? n.textContent : '';
	})()`)
	for _, want := range []string{"No config entries for orders yet", "storectl put FILE", "orders.default.dc1"} {
		if !strings.Contains(text, want) {
			t.Errorf("empty-chain notice %q lacks %q", text, want)
		}
	}
	// A missing entry: the page says so, and shows the entry once written.
	b.open(e.base + "/ui/entries/service-resolver/orders")
	waitFor[bool](b, "the missing-entry message", `document.body.innerText.includes('No service-resolver entry named orders.')`)
	e.put(t, `{"Kind": "service-resolver", "Name": "orders", "ConnectTimeout": "7s"}`)
	waitFor[bool](b, "the new entry's JSON", `(() => {
		const p = document.querySelector('pre.json');
		return p && p.textContent.includes('"ConnectTimeout": "7s"') && !document.body.innerText.includes('No service-resolver entry');
	})()`)

	// The services page follows writes while it is open.
	b.open(e.base + "/ui/services")
	waitFor[bool](b, "orders on the services page", `document.querySelector('tr[data-service="orders"]') !== null`)
	writeWebChain(t, e)
	e.put(t, `{"Kind": "service-defaults", "Name": "admin", "Protocol": "http"}`)
	e.put(t, `{"Kind": "service-defaults", "Name": "billing", "Protocol": "tcp"}`)
	type row struct {
		Service  string   `json:"service"`
		Protocol string   `json:"protocol"`
		Kinds    []string `json:"kinds"`
	}
	rows := waitFor[[]row](b, "four services", `(() => {
		const rows = [...document.querySelectorAll('table.services tbody tr')].map((tr) => ({
			service: tr.dataset.service,
			protocol: tr.querySelector('.proto').textContent,
			kinds: [...tr.querySelectorAll('.kind')].map((k) => k.textContent),
		}));
		// Four rows, and orders's protocol from the proxy-defaults written
		// before them (a poll round may have read the kinds at different
		// moments: the page converges on the next round).
		return rows.length === 4 && rows.some((r) => r.service === 'orders' && r.protocol === 'http') ? rows : null;
	})()`)
	want := []row{
		{Service: "admin", Protocol: "http", Kinds: []string{"defaults"}},
		{Service: "billing", Protocol: "tcp", Kinds: []string{"defaults"}},
		{Service: "orders", Protocol: "http", Kinds: []string{"resolver"}}, // proxy-defaults
		{Service: "web", Protocol: "http", Kinds: []string{"router", "splitter", "resolver"}},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("services table (-want +got):\n%s", diff)
	}

	// Instances in the catalog: one passing (HTTP registrations have no
	// check) and, on our own server, one whose TTL check starts critical.
	putJSON(t, e.base+"/v1/catalog/register", `{"Node": "n1", "Address": "10.0.0.1",
		"Service": {"ID": "web-1", "Service": "web", "Port": 8080}}`)
	wantHealth, wantClass := "1 instance · 1 passing", "health-ok"
	if e.single != nil {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		_, err := servertest.NewClient(t, e.single.Addr()).Register(ctx, &chainstorev1.RegisterRequest{Instance: &chainstorev1.Instance{
			Id: "web-2", Service: "web", Address: "10.0.0.2", Port: 8080, Ttl: durationpb.New(time.Minute),
		}})
		if err != nil {
			t.Fatalf("register web-2: %v", err)
		}
		wantHealth, wantClass = "2 instances · 1 passing", "health-warn"
	}
	waitFor[bool](b, "web's instances on the services page", `(() => {
		const c = document.querySelector('tr[data-service="web"] .health');
		return c !== null && c.textContent === '`+wantHealth+`' && c.classList.contains('`+wantClass+`');
	})()`)
	if got := eval[string](b, `document.querySelector('tr[data-service="admin"] td.catalog').textContent`); got != "no" {
		t.Errorf("admin's catalog cell %q, want no", got)
	}

	// An entry's JSON, reached by clicking through (no reload).
	eval[bool](b, `window.__sameDocument = true`)
	b.do(chromedp.Click(`tr[data-service="web"] a[href="/ui/entries/service-splitter/web"]`))
	entry := waitFor[string](b, "the splitter's JSON", `(() => { const p = document.querySelector('pre.json'); return p ? p.textContent : ''; })()`)
	for _, want := range []string{`"Kind": "service-splitter"`, `"Weight": 90`, `"ModifyIndex"`} {
		if !strings.Contains(entry, want) {
			t.Errorf("entry page JSON lacks %s:\n%s", want, entry)
		}
	}
	if !eval[bool](b, `window.__sameDocument === true && location.pathname === '/ui/entries/service-splitter/web'`) {
		t.Error("clicking an entry link reloaded the page or went elsewhere")
	}

	// Peers: a cluster of one, which leads.
	b.open(e.base + "/ui/peers")
	peers := waitFor[[]string](b, "the peers table", `(() => {
		const rows = [...document.querySelectorAll('table.peers tbody tr')];
		return rows.length ? rows.map((r) => r.dataset.peer + ' ' + r.querySelector('.badge').textContent) : null;
	})()`)
	if len(peers) != 1 || !strings.HasSuffix(peers[0], " leader") {
		t.Errorf("peers %q, want one leader", peers)
	}
	if e.single != nil && peers[0] != e.single.Server().RaftAddr()+" leader" {
		t.Errorf("peers %q, want %s as the leader", peers, e.single.Server().RaftAddr())
	}
}

// TestServerUnreachable stops the server under an open chain page: the
// page keeps the graph and says the server is unreachable.
func TestServerUnreachable(t *testing.T) {
	if *serverURL != "" {
		t.Skip("-url: the test does not stop a server it did not start")
	}
	e := startEnv(t)
	writeWebChain(t, e)
	b := newBrowser(t, 1280, 800)
	b.open(e.base + "/ui/chain/web")
	waitGraph(b, "the chain graph", webChainDrawn)
	if err := e.single.Server().Stop(false); err != nil {
		t.Fatalf("stop: %v", err)
	}
	banner := waitFor[string](b, "the unreachable banner", `(() => {
		const b = document.getElementById('banner');
		return b && !b.hidden ? b.textContent : '';
	})()`)
	if !strings.Contains(banner, "Server unreachable, retrying") {
		t.Errorf("banner %q", banner)
	}
	if !eval[bool](b, `document.querySelectorAll('svg.chain-graph g.node').length === 8`) {
		t.Error("the graph is gone while the server is down")
	}
}

// TestScreenshots writes docs/ui-chain-<w>x<h>.png (with -screenshots
// DIR): the chain page of a chain with a router, a splitter, a resolver
// with failover and a redirect, at three viewport sizes.
func TestScreenshots(t *testing.T) {
	if *screenshotDir == "" {
		t.Skip("screenshots are taken with -args -screenshots=DIR (make ui-screenshots)")
	}
	e := startEnv(t)
	for _, doc := range []string{
		proxyDefaults,
		`{"Kind": "service-resolver", "Name": "web", "DefaultSubset": "v1", "ConnectTimeout": "3s", "Subsets": {
			"v1": {"Filter": "Service.Meta.version == v1"},
			"v2": {"Filter": "Service.Meta.version == v2"},
			"canary": {"Filter": "Service.Meta.version == canary", "OnlyPassing": true}},
			"Failover": {"v1": {"ServiceSubset": "v2"}}}`,
		webSplitter(90, 10),
		`{"Kind": "service-resolver", "Name": "api", "Redirect": {"Service": "api-v2"}}`,
		`{"Kind": "service-router", "Name": "web", "Routes": [
			{"Match": {"HTTP": {"PathPrefix": "/admin"}}, "Destination": {"Service": "admin"}},
			{"Match": {"HTTP": {"Header": [{"Name": "x-canary", "Exact": "1"}]}},
			 "Destination": {"ServiceSubset": "canary", "NumRetries": 3}},
			{"Match": {"HTTP": {"PathPrefix": "/api"}}, "Destination": {"Service": "api", "PrefixRewrite": "/"}}]}`,
	} {
		e.put(t, doc)
	}
	for _, size := range [][2]int{{1280, 800}, {768, 1024}, {390, 844}} {
		b := newBrowser(t, size[0], size[1])
		b.open(e.base + "/ui/chain/web")
		waitGraph(b, "the chain graph", webChainDrawn)
		png := b.screenshot()
		name := filepath.Join(*screenshotDir, fmt.Sprintf("ui-chain-%dx%d.png", size[0], size[1]))
		if err := os.WriteFile(name, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", name, len(png))
	}
}
