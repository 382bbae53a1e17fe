package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/cmd/internal/cli"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// The cluster commands against fake EntriesService and OperatorService
// servers on a real loopback gRPC server. Outputs are pinned in
// testdata/entries-*.golden (rewrite them with `go test ./cmd/storectl/
// -update` and review the diff).

// fakeServer answers every call, of either service, with the canned
// response or error of its method and records the last request of each
// method.
type fakeServer struct {
	mu   sync.Mutex
	reqs map[string]proto.Message
	resp map[string]proto.Message
	errs map[string]error
	// failFirst, when above 0, limits errs to the first failFirst calls of
	// a method; later calls get resp.
	failFirst int
	calls     map[string]int
}

func (f *fakeServer) answer(method string, req proto.Message) (proto.Message, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs[method] = req
	if f.calls == nil {
		f.calls = map[string]int{}
	}
	f.calls[method]++
	if err := f.errs[method]; err != nil && (f.failFirst == 0 || f.calls[method] <= f.failFirst) {
		return nil, err
	}
	return f.resp[method], nil
}

func (f *fakeServer) last(method string) proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[method]
}

// fakeCall is a fake method: f's answer for method, as the method's
// response type; Unimplemented when f has no answer for it.
func fakeCall[Resp proto.Message](f *fakeServer, method string, req proto.Message) (Resp, error) {
	var zero Resp
	m, err := f.answer(method, req)
	if err != nil {
		return zero, err
	}
	if m == nil {
		return zero, status.Errorf(codes.Unimplemented, "fake server: no answer for %s", method)
	}
	return m.(Resp), nil
}

// fakeEntries serves f's answers as the EntriesService.
type fakeEntries struct {
	chainstorev1.UnimplementedEntriesServiceServer
	f *fakeServer
}

func (s fakeEntries) Apply(_ context.Context, r *chainstorev1.ApplyRequest) (*chainstorev1.ApplyResponse, error) {
	return fakeCall[*chainstorev1.ApplyResponse](s.f, "Apply", r)
}

func (s fakeEntries) Get(_ context.Context, r *chainstorev1.GetRequest) (*chainstorev1.GetResponse, error) {
	return fakeCall[*chainstorev1.GetResponse](s.f, "Get", r)
}

func (s fakeEntries) List(_ context.Context, r *chainstorev1.ListRequest) (*chainstorev1.ListResponse, error) {
	return fakeCall[*chainstorev1.ListResponse](s.f, "List", r)
}

func (s fakeEntries) Delete(_ context.Context, r *chainstorev1.DeleteRequest) (*chainstorev1.DeleteResponse, error) {
	return fakeCall[*chainstorev1.DeleteResponse](s.f, "Delete", r)
}

// fakeOperator serves f's answers as the OperatorService.
type fakeOperator struct {
	chainstorev1.UnimplementedOperatorServiceServer
	f *fakeServer
}

func (s fakeOperator) Members(_ context.Context, r *chainstorev1.MembersRequest) (*chainstorev1.MembersResponse, error) {
	return fakeCall[*chainstorev1.MembersResponse](s.f, "Members", r)
}

func (s fakeOperator) Peers(_ context.Context, r *chainstorev1.PeersRequest) (*chainstorev1.PeersResponse, error) {
	return fakeCall[*chainstorev1.PeersResponse](s.f, "Peers", r)
}

func (s fakeOperator) Status(_ context.Context, r *chainstorev1.StatusRequest) (*chainstorev1.StatusResponse, error) {
	return fakeCall[*chainstorev1.StatusResponse](s.f, "Status", r)
}

// startFakeServer serves f, as the entries, operator, catalog and chain
// services (fakeCatalog is in catalog_test.go, fakeChains in
// chains_test.go), on loopback and returns its address.
func startFakeServer(t *testing.T, f *fakeServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	chainstorev1.RegisterEntriesServiceServer(g, fakeEntries{f: f})
	chainstorev1.RegisterOperatorServiceServer(g, fakeOperator{f: f})
	chainstorev1.RegisterCatalogServiceServer(g, fakeCatalog{f: f})
	chainstorev1.RegisterChainServiceServer(g, fakeChains{f: f})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	t.Cleanup(func() {
		g.Stop()
		<-done
	})
	return lis.Addr().String()
}

// entryErr builds a status like the server's, with a chainstore ErrorInfo.
func entryErr(c codes.Code, msg, reason, text string) error {
	md := map[string]string{}
	if text != "" {
		md[api.MetaError] = text
	}
	st, err := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: api.ErrorDomain, Metadata: md})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

const (
	routerJSON = `{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathPrefix":"/admin"}},"Destination":{"Service":"admin"}}]}`
	routerHCL  = `kind = "service-router"
name = "web"
routes = [
  {
    match { http { path_prefix = "/admin" } }
    destination { service = "admin" }
  },
]
`
)

func TestEntryCommands(t *testing.T) {
	t.Parallel()
	files := writeEntryFiles(t, map[string]string{
		"router.hcl":         routerHCL,
		"bad.hcl":            "kind = \"service-router\"\nname = \"web\"\ncornfig = 1\n",
		"web-defaults.json":  grpcDefaultsJSON,
		"proxy-defaults.hcl": proxyHTTPHCL,
	})
	// The chains a put reads back (GetChain of the entry's name), compiled
	// by the real compiler: one gRPC clients run as written, one with a
	// PrefixRewrite and a QueryParam match they ignore.
	cleanChain := chainResponse(t, grpcDefaultsJSON)
	grpcChain := chainResponse(t, grpcDefaultsJSON, grpcRouterJSON)
	applied := &chainstorev1.ApplyResponse{Applied: true, Index: 7}
	errNoLeader := entryErr(codes.Unavailable, "no cluster leader", api.ReasonNoLeader, "")
	graphText := `discovery chain "web" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`
	peers := &chainstorev1.PeersResponse{Peers: []*chainstorev1.Peer{
		{Id: "11111111-aaaa", Name: "n1", Address: "127.0.0.1:8500", Leader: true, Voter: true},
		{Id: "22222222-bbbb", Name: "n2", Address: "127.0.0.1:8510", Voter: true},
		{Id: "33333333-cccc", Name: "n3", Address: "127.0.0.1:8520", Voter: false},
	}}
	statusResp := &chainstorev1.StatusResponse{Node: "n2", NodeId: "22222222-bbbb", Datacenter: "dc1", State: "Follower",
		Leader: "n1", LeaderId: "11111111-aaaa", LeaderGrpcAddr: "127.0.0.1:8502", Term: 3, CommitIndex: 42, AppliedIndex: 41, LastLogIndex: 42}
	members := &chainstorev1.MembersResponse{Members: []*chainstorev1.Member{
		{Name: "n1", Id: "11111111-aaaa", Datacenter: "dc1", GossipAddr: "127.0.0.1:8501", RaftAddr: "127.0.0.1:8500", GrpcAddr: "127.0.0.1:8502", Status: "alive"},
		{Name: "n2", Id: "22222222-bbbb", Datacenter: "dc1", GossipAddr: "127.0.0.1:8511", RaftAddr: "127.0.0.1:8510", GrpcAddr: "127.0.0.1:8512", Status: "failed"},
	}}
	list := &chainstorev1.ListResponse{Entries: []*chainstorev1.StoredEntry{
		{Kind: "service-defaults", Name: "admin", Entry: []byte(`{"Kind":"service-defaults","Name":"admin","Protocol":"http"}`), CreateIndex: 4, ModifyIndex: 4},
		{Kind: "service-defaults", Name: "web", Entry: []byte(`{"Kind":"service-defaults","Name":"web","Protocol":"http"}`), CreateIndex: 3, ModifyIndex: 9},
	}}

	cases := map[string]struct {
		args      []string
		resp      map[string]proto.Message
		errs      map[string]error
		failFirst int
		// showCalls adds the calls the server received to the golden file.
		showCalls bool
	}{
		"put":              {args: []string{"put", filepath.Join(files, "router.hcl")}, resp: map[string]proto.Message{"Apply": applied, "GetChain": cleanChain}},
		"put-cas-rejected": {args: []string{"put", "--cas", "--modify-index", "3", filepath.Join(files, "router.hcl")}, resp: map[string]proto.Message{"Apply": &chainstorev1.ApplyResponse{Applied: false, Index: 8}}},
		"put-graph-error": {args: []string{"put", filepath.Join(files, "router.hcl")},
			errs: map[string]error{"Apply": entryErr(codes.InvalidArgument, `config entry "service-router" / "web": `+graphText, api.ReasonGraphInvalid, graphText)}},
		// A CAS write's unknown outcome is reported, never retried.
		"put-cas-unknown-outcome": {args: []string{"put", "--cas", "--modify-index", "3", filepath.Join(files, "router.hcl")},
			errs: map[string]error{"Apply": entryErr(codes.Unknown, "outcome unknown: leadership was lost while the write was being committed", api.ReasonUnknownOutcome, "")}},
		// A plain upsert is idempotent: an unknown outcome is retried.
		"put-retried-after-unknown-outcome": {args: []string{"put", filepath.Join(files, "router.hcl")}, failFirst: 2,
			resp: map[string]proto.Message{"Apply": applied, "GetChain": cleanChain},
			errs: map[string]error{"Apply": entryErr(codes.Unknown, "outcome unknown: leadership was lost while the write was being committed", api.ReasonUnknownOutcome, "")}},
		"put-graph-error-not-retried": {args: []string{"put", filepath.Join(files, "router.hcl")}, failFirst: 1,
			resp: map[string]proto.Message{"Apply": &chainstorev1.ApplyResponse{Applied: true, Index: 7}},
			errs: map[string]error{"Apply": entryErr(codes.InvalidArgument, `config entry "service-router" / "web": `+graphText, api.ReasonGraphInvalid, graphText)}},
		"delete-retried-without-leader": {args: []string{"delete", "service-defaults", "web"}, failFirst: 1,
			resp: map[string]proto.Message{"Delete": &chainstorev1.DeleteResponse{Deleted: true, Index: 10}},
			errs: map[string]error{"Delete": errNoLeader}},
		// After a put of an entry that shapes a chain, the chain is read
		// back and what gRPC clients ignore in it is printed on stderr.
		"put-grpc-warnings": {args: []string{"put", filepath.Join(files, "router.hcl")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": applied, "GetChain": grpcChain}},
		"put-defaults-grpc-warnings": {args: []string{"put", filepath.Join(files, "web-defaults.json")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": applied, "GetChain": grpcChain}},
		"put-cas-applied-grpc-warnings": {args: []string{"put", "--cas", "--modify-index", "3", filepath.Join(files, "router.hcl")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": applied, "GetChain": grpcChain}},
		// A CAS write that was not applied changed no chain: no check.
		"put-cas-rejected-no-grpc-check": {args: []string{"put", "--cas", "--modify-index", "3", filepath.Join(files, "router.hcl")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": &chainstorev1.ApplyResponse{Applied: false, Index: 8}, "GetChain": grpcChain}},
		// proxy-defaults is named "global", not after a chain: no check.
		"put-proxy-defaults-no-grpc-check": {args: []string{"put", filepath.Join(files, "proxy-defaults.hcl")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": applied, "GetChain": grpcChain}},
		// The check only informs: failing to read the chain is one note,
		// and the put still succeeds.
		"put-grpc-check-unavailable": {args: []string{"put", filepath.Join(files, "router.hcl")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": applied}, errs: map[string]error{"GetChain": errNoLeader}},
		"put-grpc-check-bad-chain": {args: []string{"put", filepath.Join(files, "router.hcl")}, showCalls: true,
			resp: map[string]proto.Message{"Apply": applied, "GetChain": &chainstorev1.GetChainResponse{Version: &chainstorev1.ChainVersion{Chain: []byte("{")}}}},
		"put-decode-error": {args: []string{"put", filepath.Join(files, "bad.hcl")}},
		"put-missing-file": {args: []string{"put", filepath.Join(files, "nope.hcl")}},
		"put-no-args":      {args: []string{"put"}},
		"get": {args: []string{"get", "service-router", "web"},
			resp: map[string]proto.Message{"Get": &chainstorev1.GetResponse{Found: true, Entry: []byte(routerJSON), CreateIndex: 5, ModifyIndex: 7}}},
		"get-not-found":      {args: []string{"get", "service-router", "web"}, resp: map[string]proto.Message{"Get": &chainstorev1.GetResponse{}}},
		"get-bad-kind":       {args: []string{"get", "service-nope", "web"}, errs: map[string]error{"Get": entryErr(codes.InvalidArgument, "invalid config entry kind: service-nope", api.ReasonInvalidEntry, "")}},
		"list":               {args: []string{"list", "service-defaults"}, resp: map[string]proto.Message{"List": list}},
		"list-json":          {args: []string{"list", "service-defaults", "--json"}, resp: map[string]proto.Message{"List": list}},
		"delete":             {args: []string{"delete", "service-defaults", "web"}, resp: map[string]proto.Message{"Delete": &chainstorev1.DeleteResponse{Deleted: true, Index: 10}}},
		"delete-cas-refused": {args: []string{"delete", "--cas", "--modify-index", "2", "service-defaults", "web"}, resp: map[string]proto.Message{"Delete": &chainstorev1.DeleteResponse{}}},
		"peers":              {args: []string{"peers"}, resp: map[string]proto.Message{"Peers": peers}},
		"peers-json":         {args: []string{"peers", "--json"}, resp: map[string]proto.Message{"Peers": peers}},
		"status":             {args: []string{"status"}, resp: map[string]proto.Message{"Status": statusResp}},
		"status-json":        {args: []string{"status", "--json"}, resp: map[string]proto.Message{"Status": statusResp}},
		"members":            {args: []string{"members"}, resp: map[string]proto.Message{"Members": members}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{reqs: map[string]proto.Message{}, resp: tc.resp, errs: tc.errs, failFirst: tc.failFirst}
			addr := startFakeServer(t, f)
			code, stdout, stderr := runStorectl(t, files, append([]string{"--addr", addr}, tc.args...)...)
			var got bytes.Buffer
			fmt.Fprintf(&got, "$ storectl %s\nexit %d\n--- stdout\n%s--- stderr\n%s", joinArgs(tc.args, files), code, stdout, stderr)
			if tc.failFirst > 0 || tc.showCalls {
				f.mu.Lock()
				fmt.Fprintf(&got, "--- calls\n%v\n", f.calls)
				f.mu.Unlock()
			}
			testutil.Golden(t, filepath.Join("testdata", "entries-"+name+".golden"), got.Bytes())
		})
	}
}

// joinArgs renders args with the temp dir replaced by DIR.
func joinArgs(args []string, dir string) string {
	var b bytes.Buffer
	for i, a := range args {
		if i > 0 {
			b.WriteByte(' ')
		}
		if rel, err := filepath.Rel(dir, a); err == nil && filepath.IsAbs(a) {
			a = "DIR/" + rel
		}
		b.WriteString(a)
	}
	return b.String()
}

func TestPutSendsCanonicalJSONAndCAS(t *testing.T) {
	t.Parallel()
	files := writeEntryFiles(t, map[string]string{"router.hcl": routerHCL})
	f := &fakeServer{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{"Apply": &chainstorev1.ApplyResponse{Applied: true}, "GetChain": chainResponse(t)}}
	addr := startFakeServer(t, f)
	if code, _, stderr := runStorectl(t, files, "--addr", addr, "put", "--cas", "--modify-index", "12", filepath.Join(files, "router.hcl")); code != 0 {
		t.Fatalf("put: exit %d: %s", code, stderr)
	}
	want := &chainstorev1.ApplyRequest{Entry: []byte(routerJSON), Cas: true, ModifyIndex: 12}
	if diff := cmp.Diff(want.String(), f.last("Apply").(*chainstorev1.ApplyRequest).String()); diff != "" {
		t.Errorf("ApplyRequest (-want +got):\n%s", diff)
	}
}

// TestPutSendsJSONAsWritten: a JSON document is sent byte for byte (the
// server decodes it the same way), unless it is over maxVerbatimJSON,
// which is compacted to canonical JSON; invalid JSON never leaves
// storectl.
func TestPutSendsJSONAsWritten(t *testing.T) {
	t.Parallel()
	asWritten := "{\n  \"kind\": \"service-defaults\",\n  \"name\": \"web\",\n  \"protocol\": \"http\"\n}\n"
	large := `{"Kind":"service-defaults","Name":"big","Meta":{"a":"` + strings.Repeat("x", 500) + `"}}` + strings.Repeat(" ", maxVerbatimJSON)
	files := writeEntryFiles(t, map[string]string{"web.json": asWritten, "big.json": large, "bad.json": `{"kind": "service-defaults", "name": }`})
	f := &fakeServer{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{"Apply": &chainstorev1.ApplyResponse{Applied: true}, "GetChain": chainResponse(t)}}
	addr := startFakeServer(t, f)
	bigEntry, err := chain.DecodeEntry([]byte(large))
	if err != nil {
		t.Fatalf("DecodeEntry(big.json): %v", err)
	}
	compact, err := chain.EncodeEntry(bigEntry)
	if err != nil {
		t.Fatalf("EncodeEntry(big.json): %v", err)
	}
	for file, want := range map[string]string{"web.json": asWritten, "big.json": string(compact)} {
		if code, _, stderr := runStorectl(t, files, "--addr", addr, "put", filepath.Join(files, file)); code != 0 {
			t.Fatalf("put %s: exit %d: %s", file, code, stderr)
		}
		if got := string(f.last("Apply").(*chainstorev1.ApplyRequest).GetEntry()); got != want {
			t.Errorf("put %s sent %.200q, want %.200q", file, got, want)
		}
	}
	code, _, stderr := runStorectl(t, files, "--addr", addr, "put", filepath.Join(files, "bad.json"))
	if code != 1 || !strings.Contains(stderr, "Failed to decode config entry input") {
		t.Errorf("put bad.json: exit %d, stderr %q; want exit 1 and a decode error", code, stderr)
	}
	if calls := f.calls["Apply"]; calls != 2 {
		t.Errorf("Apply called %d times, want 2 (never for the invalid file)", calls)
	}
}

func TestAddrFailoverAndEnv(t *testing.T) {
	t.Parallel()
	f := &fakeServer{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{"Status": &chainstorev1.StatusResponse{Node: "n9"}}}
	addr := startFakeServer(t, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close()

	code, stdout, stderr := runStorectl(t, "", "--addr", dead+","+addr, "status", "--json")
	if code != 0 || !bytes.Contains([]byte(stdout), []byte(`"node": "n9"`)) {
		t.Errorf("status via [dead, live]: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runStorectl(t, "", "--addr", dead, "status")
	if code != 1 || !bytes.Contains([]byte(stderr), []byte("Error reading status: ")) {
		t.Errorf("status with the server down: exit %d, stderr %q; want exit 1 and an error", code, stderr)
	}
	if os.Getenv(cli.AddrEnv) == "" {
		fs, cf := newFlagSet("x", &bytes.Buffer{})
		if err := fs.Parse(nil); err != nil || cf.addr != api.DefaultAddr {
			t.Errorf("default --addr = %q, want %s", cf.addr, api.DefaultAddr)
		}
	}
}
