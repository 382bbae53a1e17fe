package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// fakeChains serves f's answers as the ChainService (GetChain only).
type fakeChains struct {
	chainstorev1.UnimplementedChainServiceServer
	f *fakeServer
}

func (s fakeChains) GetChain(_ context.Context, r *chainstorev1.GetChainRequest) (*chainstorev1.GetChainResponse, error) {
	return fakeCall[*chainstorev1.GetChainResponse](s.f, "GetChain", r)
}

const (
	grpcDefaultsJSON = `{"Kind":"service-defaults","Name":"web","Protocol":"grpc"}`
	// grpcRouterJSON has two features proxyless gRPC clients ignore or
	// cannot match: a PrefixRewrite and a QueryParam match.
	grpcRouterJSON = `{"Kind":"service-router","Name":"web","Routes":[` +
		`{"Match":{"HTTP":{"PathPrefix":"/demo.Echo/"}},"Destination":{"PrefixRewrite":"/v2.Echo/"}},` +
		`{"Match":{"HTTP":{"QueryParam":[{"Name":"canary","Present":true}]}},"Destination":{"Service":"web"}}]}`
)

// grpcRouterWarnings are the grpccheck warnings of the chain of
// grpcDefaultsJSON and grpcRouterJSON.
var grpcRouterWarnings = []string{
	`router:web route 0 (PathPrefix "/demo.Echo/"): PrefixRewrite: ignored by gRPC clients: the backend sees the original method path`,
	`router:web route 1 (PathPrefix "/" + 1 query param): QueryParam: gRPC clients skip a route with query-parameter matches: this route never fires`,
}

// chainResponse is the GetChain answer for the chain of "web" in dc1 that
// the real compiler makes from the entry documents (canonical JSON),
// encoded as the server encodes it.
func chainResponse(t *testing.T, docs ...string) *chainstorev1.GetChainResponse {
	t.Helper()
	var entries []chain.Entry
	for _, d := range docs {
		e, err := chain.DecodeEntry([]byte(d))
		if err != nil {
			t.Fatalf("DecodeEntry(%s) = %v", d, err)
		}
		if err := chain.Prepare(e); err != nil {
			t.Fatalf("Prepare(%s) = %v", d, err)
		}
		entries = append(entries, e)
	}
	res, err := chain.Compile(chain.CompileRequest{
		ServiceName: "web", EvaluateInNamespace: "default", EvaluateInDatacenter: "dc1",
		EvaluateInTrustDomain: "td.consul", UseInDatacenter: "dc1", Entries: chain.NewMemStore(entries...),
	})
	if err != nil {
		t.Fatalf("Compile(web) = %v", err)
	}
	raw, err := json.Marshal(res.Chain)
	if err != nil {
		t.Fatal(err)
	}
	return &chainstorev1.GetChainResponse{Version: &chainstorev1.ChainVersion{Index: 7, Hash: "h7", Chain: raw}, Meta: &chainstorev1.QueryMeta{Index: 7}}
}

// TestChainCheckGRPC: `storectl chain SERVICE --check grpc` against a fake
// ChainService; outputs are pinned in testdata/chain-check-*.golden.
func TestChainCheckGRPC(t *testing.T) {
	t.Parallel()
	grpcChain := chainResponse(t, grpcDefaultsJSON, grpcRouterJSON)
	compileErr := entryErr(codes.FailedPrecondition, `discovery chain "web" does not compile: boom`, api.ReasonChainCompileError, "boom")
	cases := map[string]struct {
		args []string
		resp map[string]proto.Message
		errs map[string]error
	}{
		"grpc":               {args: []string{"chain", "web", "--check", "grpc"}, resp: map[string]proto.Message{"GetChain": grpcChain}},
		"grpc-none":          {args: []string{"chain", "--check", "grpc", "web"}, resp: map[string]proto.Message{"GetChain": chainResponse(t, grpcDefaultsJSON)}},
		"grpc-compile-error": {args: []string{"chain", "--check", "grpc", "web"}, errs: map[string]error{"GetChain": compileErr}},
		"grpc-bad-chain": {args: []string{"chain", "--check", "grpc", "web"},
			resp: map[string]proto.Message{"GetChain": &chainstorev1.GetChainResponse{Version: &chainstorev1.ChainVersion{Chain: []byte(`{"Nodes":1}`)}}}},
		"unknown":       {args: []string{"chain", "--check", "envoy", "web"}, resp: map[string]proto.Message{"GetChain": grpcChain}},
		"empty":         {args: []string{"chain", "--check=", "web"}, resp: map[string]proto.Message{"GetChain": grpcChain}},
		"grpc-no-chain": {args: []string{"chain", "--check", "grpc"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{reqs: map[string]proto.Message{}, resp: tc.resp, errs: tc.errs}
			addr := startFakeServer(t, f)
			code, stdout, stderr := runStorectl(t, "", append([]string{"--addr", addr}, tc.args...)...)
			var got bytes.Buffer
			fmt.Fprintf(&got, "$ storectl %s\nexit %d\n--- stdout\n%s--- stderr\n%s", quoteArgs(tc.args), code, stdout, stderr)
			f.mu.Lock()
			fmt.Fprintf(&got, "--- calls\n%v\n", callList(f.calls))
			f.mu.Unlock()
			testutil.Golden(t, filepath.Join("testdata", "chain-check-"+name+".golden"), got.Bytes())
		})
	}
}

// TestChainCheckGRPCRequest: --check grpc reads the chain `storectl chain`
// would print, with the same selection and read flags.
func TestChainCheckGRPCRequest(t *testing.T) {
	t.Parallel()
	f := &fakeServer{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{"GetChain": chainResponse(t)}}
	addr := startFakeServer(t, f)
	code, _, stderr := runStorectl(t, "", "--addr", addr, "chain", "--check", "grpc", "--datacenter", "dc2", "--stale", "web")
	if code != 0 {
		t.Fatalf("chain --check grpc: exit %d: %s", code, stderr)
	}
	want := &chainstorev1.GetChainRequest{
		Chain:   &chainstorev1.ChainRef{Service: "web", Datacenter: "dc2"},
		Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE},
	}
	if got := f.last("GetChain"); !proto.Equal(want, got) {
		t.Errorf("GetChainRequest = %v, want %v", got, want)
	}
}

// TestPutChecksChainOfEntry: a put of each kind that shapes a chain reads
// back the chain named after the entry, with the default consistency; a
// put of proxy-defaults reads none.
func TestPutChecksChainOfEntry(t *testing.T) {
	t.Parallel()
	docs := map[string]string{
		"service-defaults": `{"Kind":"service-defaults","Name":"api","Protocol":"grpc"}`,
		"service-router":   `{"Kind":"service-router","Name":"api","Routes":[{"Match":{"HTTP":{"PathPrefix":"/x"}}}]}`,
		"service-splitter": `{"Kind":"service-splitter","Name":"api","Splits":[{"Weight":100}]}`,
		"service-resolver": `{"Kind":"service-resolver","Name":"api","ConnectTimeout":"3s"}`,
		"proxy-defaults":   `{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http"}}`,
	}
	byFile := map[string]string{}
	for kind, doc := range docs {
		byFile[kind+".json"] = doc
	}
	files := writeEntryFiles(t, byFile)
	for kind := range docs {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(files, kind+".json")
			f := &fakeServer{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{
				"Apply": &chainstorev1.ApplyResponse{Applied: true, Index: 3}, "GetChain": chainResponse(t),
			}}
			addr := startFakeServer(t, f)
			code, _, stderr := runStorectl(t, files, "--addr", addr, "put", path)
			if code != 0 || stderr != "" {
				t.Fatalf("put %s: exit %d, stderr %q; want 0 and no stderr", kind, code, stderr)
			}
			got, _ := f.last("GetChain").(*chainstorev1.GetChainRequest)
			if kind == "proxy-defaults" {
				if got != nil {
					t.Errorf("put proxy-defaults read chain %v, want none", got)
				}
				return
			}
			if want := (&chainstorev1.GetChainRequest{Chain: &chainstorev1.ChainRef{Service: "api"}}); !proto.Equal(want, got) {
				t.Errorf("GetChainRequest = %v, want %v", got, want)
			}
		})
	}
}

// TestGRPCCheckAgainstServer: against a real server, put prints the
// warnings of the chain its write just changed, and `chain --check grpc`
// lists the same.
func TestGRPCCheckAgainstServer(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	dir := writeEntryFiles(t, map[string]string{"defaults.json": grpcDefaultsJSON, "router.json": grpcRouterJSON})

	code, stdout, stderr := runStorectl(t, dir, "--addr", srv.Addr(), "put", filepath.Join(dir, "defaults.json"))
	if code != 0 || stdout != "Config entry written: service-defaults/web\n" || stderr != "" {
		t.Errorf("put defaults: exit %d, stdout %q, stderr %q; want no warnings", code, stdout, stderr)
	}
	code, stdout, _ = runStorectl(t, dir, "--addr", srv.Addr(), "chain", "web", "--check", "grpc")
	if want := "No features of chain \"web\" are ignored by proxyless gRPC clients\n"; code != 0 || stdout != want {
		t.Errorf("chain --check grpc before the router: exit %d, stdout %q; want %q", code, stdout, want)
	}

	code, stdout, stderr = runStorectl(t, dir, "--addr", srv.Addr(), "put", filepath.Join(dir, "router.json"))
	var wantStderr strings.Builder
	for _, w := range grpcRouterWarnings {
		fmt.Fprintf(&wantStderr, "Warning: chain %q: %s\n", "web", w)
	}
	if code != 0 || stdout != "Config entry written: service-router/web\n" {
		t.Errorf("put router: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if diff := cmp.Diff(wantStderr.String(), stderr); diff != "" {
		t.Errorf("put router stderr (-want +got):\n%s", diff)
	}
	code, stdout, stderr = runStorectl(t, dir, "--addr", srv.Addr(), "chain", "web", "--check", "grpc")
	if diff := cmp.Diff(strings.Join(grpcRouterWarnings, "\n")+"\n", stdout); code != 0 || diff != "" {
		t.Errorf("chain --check grpc: exit %d, stderr %q, stdout (-want +got):\n%s", code, stderr, diff)
	}
}

// TestChainMatchesCompile: `storectl chain` prints byte for byte what
// `storectl compile` prints for the same entries.
func TestChainMatchesCompile(t *testing.T) {
	t.Parallel()
	docs := map[string]string{
		"web-resolver.json": `{"Kind":"service-resolver","Name":"web","DefaultSubset":"v1","Subsets":{"v1":{"Filter":"Service.Meta.version == v1"},"v2":{"Filter":"Service.Meta.version == v2"}}}`,
		"web-defaults.json": `{"Kind":"service-defaults","Name":"web","Protocol":"http"}`,
		"web-splitter.json": `{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":90,"ServiceSubset":"v1"},{"Weight":10,"ServiceSubset":"v2"}]}`,
	}
	srv := servertest.StartSingle(t)
	for _, name := range []string{"web-defaults.json", "web-resolver.json", "web-splitter.json"} {
		srv.Put(docs[name])
	}
	dir := writeEntryFiles(t, docs)

	tests := map[string][]string{
		"default datacenter": nil,
		"dc2":                {"--datacenter", "dc2"},
		"overrides":          {"--override-protocol", "tcp", "--override-connect-timeout", "3s"},
	}
	for name, extra := range tests {
		code, want, stderr := runStorectl(t, dir, append(append([]string{"compile", "--entries", dir}, extra...), "web")...)
		if code != 0 {
			t.Fatalf("%s: compile exited %d: %s", name, code, stderr)
		}
		code, got, stderr := runStorectl(t, dir, append(append([]string{"--addr", srv.Addr(), "chain"}, extra...), "web")...)
		if code != 0 {
			t.Fatalf("%s: chain exited %d: %s", name, code, stderr)
		}
		if got != want {
			t.Errorf("%s: storectl chain printed\n%s\nstorectl compile printed\n%s", name, got, want)
		}
	}
}

func TestChainCommandErrors(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t, func(c *server.Config) { c.Hub.MaxChainBytes = 10 })
	srv.Put(servertest.Resolver("web", 5*time.Second))
	code, stdout, stderr := runStorectl(t, "", "--addr", srv.Addr(), "chain", "web")
	if code != 1 || stdout != "" || !strings.Contains(stderr, `Error compiling discovery chain "web": compiled chain "web" is`) {
		t.Errorf("chain that does not compile: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runStorectl(t, "", "--addr", srv.Addr(), "chain")
	if code != 2 || !strings.Contains(stderr, "usage: storectl chain") {
		t.Errorf("chain without a service: exit %d, stderr %q", code, stderr)
	}
}

func TestWatchCommand(t *testing.T) {
	t.Parallel()
	srv := servertest.StartSingle(t)
	idx := srv.Put(servertest.Resolver("web", 5*time.Second))
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, []string{"--addr", srv.Addr(), "watch", "--count", "2", "web", "api"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("watch exited %d: %s", code, stderr.String())
	}
	got := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var v struct {
			Service string          `json:"service"`
			Index   uint64          `json:"index"`
			Hash    string          `json:"hash"`
			Chain   json.RawMessage `json:"chain"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.Hash == "" || len(v.Chain) == 0 {
			t.Fatalf("line %q: %v", l, err)
		}
		got[v.Service] = v.Index
	}
	if got["web"] != idx || len(got) != 2 {
		t.Errorf("watch printed %v, want web at %d and api", got, idx)
	}
}
