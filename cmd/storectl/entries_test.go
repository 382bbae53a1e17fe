package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/rpc"
	"github.com/chainstore/chainstore/rpc/configpb"
)

// The entry commands against a fake EntriesService on a real loopback gRPC
// server. Outputs are pinned in testdata/entries-*.golden (rewrite them
// with `go test ./cmd/storectl/ -update` and review the diff).

// fakeEntries answers every call with the canned response or error and
// records the last request of each method.
type fakeEntries struct {
	configpb.UnimplementedEntriesServiceServer

	mu   sync.Mutex
	reqs map[string]proto.Message
	resp map[string]proto.Message
	errs map[string]error
	// failFirst, when above 0, limits errs to the first failFirst calls of
	// a method; later calls get resp.
	failFirst int
	calls     map[string]int
}

func (f *fakeEntries) answer(method string, req proto.Message) (proto.Message, error) {
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

func (f *fakeEntries) last(method string) proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[method]
}

func (f *fakeEntries) Apply(_ context.Context, r *configpb.ApplyRequest) (*configpb.ApplyResponse, error) {
	m, err := f.answer("Apply", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.ApplyResponse), nil
}

func (f *fakeEntries) Get(_ context.Context, r *configpb.GetRequest) (*configpb.GetResponse, error) {
	m, err := f.answer("Get", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.GetResponse), nil
}

func (f *fakeEntries) List(_ context.Context, r *configpb.ListRequest) (*configpb.ListResponse, error) {
	m, err := f.answer("List", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.ListResponse), nil
}

func (f *fakeEntries) Delete(_ context.Context, r *configpb.DeleteRequest) (*configpb.DeleteResponse, error) {
	m, err := f.answer("Delete", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.DeleteResponse), nil
}

func (f *fakeEntries) Members(_ context.Context, r *configpb.MembersRequest) (*configpb.MembersResponse, error) {
	m, err := f.answer("Members", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.MembersResponse), nil
}

func (f *fakeEntries) Peers(_ context.Context, r *configpb.PeersRequest) (*configpb.PeersResponse, error) {
	m, err := f.answer("Peers", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.PeersResponse), nil
}

func (f *fakeEntries) Status(_ context.Context, r *configpb.StatusRequest) (*configpb.StatusResponse, error) {
	m, err := f.answer("Status", r)
	if err != nil {
		return nil, err
	}
	return m.(*configpb.StatusResponse), nil
}

// startFakeEntries serves f on loopback and returns its address.
func startFakeEntries(t *testing.T, f *fakeEntries) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	configpb.RegisterEntriesServiceServer(g, f)
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
		md[rpc.MetaError] = text
	}
	st, err := status.New(c, msg).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: rpc.ErrorDomain, Metadata: md})
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
		"router.hcl": routerHCL,
		"bad.hcl":    "kind = \"service-router\"\nname = \"web\"\ncornfig = 1\n",
	})
	graphText := `discovery chain "web" uses a protocol "tcp" that does not permit advanced routing or splitting behavior`
	peers := &configpb.PeersResponse{Peers: []*configpb.Peer{
		{Id: "11111111-aaaa", Name: "n1", Address: "127.0.0.1:8500", Leader: true, Voter: true},
		{Id: "22222222-bbbb", Name: "n2", Address: "127.0.0.1:8510", Voter: true},
		{Id: "33333333-cccc", Name: "n3", Address: "127.0.0.1:8520", Voter: false},
	}}
	statusResp := &configpb.StatusResponse{Node: "n2", NodeId: "22222222-bbbb", Datacenter: "dc1", State: "Follower",
		Leader: "n1", LeaderId: "11111111-aaaa", LeaderGrpcAddr: "127.0.0.1:8502", Term: 3, CommitIndex: 42, AppliedIndex: 41, LastLogIndex: 42}
	members := &configpb.MembersResponse{Members: []*configpb.Member{
		{Name: "n1", Id: "11111111-aaaa", Datacenter: "dc1", GossipAddr: "127.0.0.1:8501", RaftAddr: "127.0.0.1:8500", GrpcAddr: "127.0.0.1:8502", Status: "alive"},
		{Name: "n2", Id: "22222222-bbbb", Datacenter: "dc1", GossipAddr: "127.0.0.1:8511", RaftAddr: "127.0.0.1:8510", GrpcAddr: "127.0.0.1:8512", Status: "failed"},
	}}
	list := &configpb.ListResponse{Entries: []*configpb.StoredEntry{
		{Kind: "service-defaults", Name: "admin", Entry: []byte(`{"Kind":"service-defaults","Name":"admin","Protocol":"http"}`), CreateIndex: 4, ModifyIndex: 4},
		{Kind: "service-defaults", Name: "web", Entry: []byte(`{"Kind":"service-defaults","Name":"web","Protocol":"http"}`), CreateIndex: 3, ModifyIndex: 9},
	}}

	cases := map[string]struct {
		args      []string
		resp      map[string]proto.Message
		errs      map[string]error
		failFirst int
	}{
		"put":              {args: []string{"put", filepath.Join(files, "router.hcl")}, resp: map[string]proto.Message{"Apply": &configpb.ApplyResponse{Applied: true, Index: 7}}},
		"put-cas-rejected": {args: []string{"put", "--cas", "--modify-index", "3", filepath.Join(files, "router.hcl")}, resp: map[string]proto.Message{"Apply": &configpb.ApplyResponse{Applied: false, Index: 8}}},
		"put-graph-error": {args: []string{"put", filepath.Join(files, "router.hcl")},
			errs: map[string]error{"Apply": entryErr(codes.InvalidArgument, `config entry "service-router" / "web": `+graphText, rpc.ReasonGraphInvalid, graphText)}},
		// A CAS write's unknown outcome is reported, never retried.
		"put-cas-unknown-outcome": {args: []string{"put", "--cas", "--modify-index", "3", filepath.Join(files, "router.hcl")},
			errs: map[string]error{"Apply": entryErr(codes.Unknown, "outcome unknown: leadership was lost while the write was being committed", rpc.ReasonUnknownOutcome, "")}},
		// A plain upsert is idempotent: an unknown outcome is retried.
		"put-retried-after-unknown-outcome": {args: []string{"put", filepath.Join(files, "router.hcl")}, failFirst: 2,
			resp: map[string]proto.Message{"Apply": &configpb.ApplyResponse{Applied: true, Index: 7}},
			errs: map[string]error{"Apply": entryErr(codes.Unknown, "outcome unknown: leadership was lost while the write was being committed", rpc.ReasonUnknownOutcome, "")}},
		"put-graph-error-not-retried": {args: []string{"put", filepath.Join(files, "router.hcl")}, failFirst: 1,
			resp: map[string]proto.Message{"Apply": &configpb.ApplyResponse{Applied: true, Index: 7}},
			errs: map[string]error{"Apply": entryErr(codes.InvalidArgument, `config entry "service-router" / "web": `+graphText, rpc.ReasonGraphInvalid, graphText)}},
		"delete-retried-without-leader": {args: []string{"delete", "service-defaults", "web"}, failFirst: 1,
			resp: map[string]proto.Message{"Delete": &configpb.DeleteResponse{Deleted: true, Index: 10}},
			errs: map[string]error{"Delete": entryErr(codes.Unavailable, "no cluster leader", rpc.ReasonNoLeader, "")}},
		"put-decode-error": {args: []string{"put", filepath.Join(files, "bad.hcl")}},
		"put-missing-file": {args: []string{"put", filepath.Join(files, "nope.hcl")}},
		"put-no-args":      {args: []string{"put"}},
		"get": {args: []string{"get", "service-router", "web"},
			resp: map[string]proto.Message{"Get": &configpb.GetResponse{Found: true, Entry: []byte(routerJSON), CreateIndex: 5, ModifyIndex: 7}}},
		"get-not-found":      {args: []string{"get", "service-router", "web"}, resp: map[string]proto.Message{"Get": &configpb.GetResponse{}}},
		"get-bad-kind":       {args: []string{"get", "service-nope", "web"}, errs: map[string]error{"Get": entryErr(codes.InvalidArgument, "invalid config entry kind: service-nope", rpc.ReasonInvalidEntry, "")}},
		"list":               {args: []string{"list", "service-defaults"}, resp: map[string]proto.Message{"List": list}},
		"list-json":          {args: []string{"list", "service-defaults", "--json"}, resp: map[string]proto.Message{"List": list}},
		"delete":             {args: []string{"delete", "service-defaults", "web"}, resp: map[string]proto.Message{"Delete": &configpb.DeleteResponse{Deleted: true, Index: 10}}},
		"delete-cas-refused": {args: []string{"delete", "--cas", "--modify-index", "2", "service-defaults", "web"}, resp: map[string]proto.Message{"Delete": &configpb.DeleteResponse{}}},
		"peers":              {args: []string{"peers"}, resp: map[string]proto.Message{"Peers": peers}},
		"peers-json":         {args: []string{"peers", "--json"}, resp: map[string]proto.Message{"Peers": peers}},
		"status":             {args: []string{"status"}, resp: map[string]proto.Message{"Status": statusResp}},
		"status-json":        {args: []string{"status", "--json"}, resp: map[string]proto.Message{"Status": statusResp}},
		"members":            {args: []string{"members"}, resp: map[string]proto.Message{"Members": members}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &fakeEntries{reqs: map[string]proto.Message{}, resp: tc.resp, errs: tc.errs, failFirst: tc.failFirst}
			addr := startFakeEntries(t, f)
			code, stdout, stderr := runStorectl(t, files, append([]string{"--addr", addr}, tc.args...)...)
			var got bytes.Buffer
			fmt.Fprintf(&got, "$ storectl %s\nexit %d\n--- stdout\n%s--- stderr\n%s", joinArgs(tc.args, files), code, stdout, stderr)
			if tc.failFirst > 0 {
				f.mu.Lock()
				fmt.Fprintf(&got, "--- calls\n%v\n", f.calls)
				f.mu.Unlock()
			}
			offlineGolden(t, "entries-"+name, got.Bytes())
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
	f := &fakeEntries{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{"Apply": &configpb.ApplyResponse{Applied: true}}}
	addr := startFakeEntries(t, f)
	if code, _, stderr := runStorectl(t, files, "--addr", addr, "put", "--cas", "--modify-index", "12", filepath.Join(files, "router.hcl")); code != 0 {
		t.Fatalf("put: exit %d: %s", code, stderr)
	}
	want := &configpb.ApplyRequest{Entry: []byte(routerJSON), Cas: true, ModifyIndex: 12}
	if diff := cmp.Diff(want.String(), f.last("Apply").(*configpb.ApplyRequest).String()); diff != "" {
		t.Errorf("ApplyRequest (-want +got):\n%s", diff)
	}
}

func TestAddrFailoverAndEnv(t *testing.T) {
	t.Parallel()
	f := &fakeEntries{reqs: map[string]proto.Message{}, resp: map[string]proto.Message{"Status": &configpb.StatusResponse{Node: "n9"}}}
	addr := startFakeEntries(t, f)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()

	code, stdout, stderr := runStorectl(t, "", "--addr", dead+","+addr, "status", "--json")
	if code != 0 || !bytes.Contains([]byte(stdout), []byte(`"node": "n9"`)) {
		t.Errorf("status via [dead, live]: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = runStorectl(t, "", "--addr", dead, "status")
	if code != 1 || !bytes.Contains([]byte(stderr), []byte("Error reading status: ")) {
		t.Errorf("status with the server down: exit %d, stderr %q; want exit 1 and an error", code, stderr)
	}
	if os.Getenv(addrEnv) == "" {
		fs, cf := newFlagSet("x", &bytes.Buffer{})
		if err := fs.Parse(nil); err != nil || cf.addr != rpc.DefaultAddr {
			t.Errorf("default --addr = %q, want %s", cf.addr, rpc.DefaultAddr)
		}
	}
}
