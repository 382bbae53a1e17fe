package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"

	"github.com/chainstore/chainstore/api"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// gateRaft is an esRaft whose Apply waits for a token from gate (when
// gate is set) before it applies: a stalled or slow Raft. It records how
// many Applies wait at once.
type gateRaft struct {
	*esRaft
	gate   atomic.Pointer[chan struct{}]
	active atomic.Int64
	peak   atomic.Int64
}

func (g *gateRaft) Apply(ctx context.Context, cmd []byte) (any, uint64, error) {
	n := g.active.Add(1)
	defer g.active.Add(-1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if gp := g.gate.Load(); gp != nil {
		select {
		case <-*gp:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
	return g.esRaft.Apply(ctx, cmd)
}

// hold makes every Apply wait on a new gate and returns it; closing it
// lets them all through, sending on it lets one through.
func (g *gateRaft) hold() chan struct{} {
	ch := make(chan struct{})
	g.gate.Store(&ch)
	return ch
}

// release removes the gate (new Applies pass) and opens the old one.
func (g *gateRaft) release() {
	if gp := g.gate.Swap(nil); gp != nil {
		close(*gp)
	}
}

// limNode is a leader entries service over a gateRaft on a real loopback
// gRPC server.
type limNode struct {
	raft   *gateRaft
	srv    *Services
	fsm    *fsm.FSM
	client *api.Client
}

func startLimNode(t *testing.T, mutate func(*ServerConfig)) *limNode {
	t.Helper()
	cfg := testServerConfig("a")
	if mutate != nil {
		mutate(&cfg)
	}
	f := fsm.New(nil)
	r := &gateRaft{esRaft: &esRaft{fsm: f, nodeID: "a", leader: true}}
	srv := newTestServices(t, cfg, r, f, newESCluster(), nil)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	g := NewGRPCServer(cfg, nil)
	Register(g, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = g.Serve(lis)
	}()
	ccfg := api.DefaultClientConfig()
	ccfg.Addrs = []string{lis.Addr().String()}
	client, err := api.NewClient(ccfg)
	if err != nil {
		t.Fatalf("api.NewClient: %v", err)
	}
	t.Cleanup(func() {
		r.release()
		_ = client.Close()
		srv.Close()
		g.Stop()
		<-done
	})
	return &limNode{raft: r, srv: srv, fsm: f, client: client}
}

func sdEntry(name string) []byte {
	return []byte(fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":"http"}`, name))
}

// wantOverloaded checks an OVERLOADED refusal of class with limit.
func wantOverloaded(t *testing.T, err error, class string, limit int) {
	t.Helper()
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("error = %v, want ResourceExhausted", err)
	}
	info := api.ErrorInfo(err)
	want := map[string]string{api.MetaClass: class, api.MetaLimit: fmt.Sprint(limit)}
	if info.GetReason() != api.ReasonOverloaded || !cmp.Equal(info.GetMetadata(), want) {
		t.Errorf("api.ErrorInfo = %v, want reason %s with %v", info, api.ReasonOverloaded, want)
	}
	if msg := status.Convert(err).Message(); !strings.Contains(msg, "server overloaded") || !strings.Contains(msg, class) {
		t.Errorf("message %q does not say the server is overloaded for %s requests", msg, class)
	}
	hasRetry := slices.ContainsFunc(status.Convert(err).Details(), func(d any) bool {
		ri, ok := d.(*errdetails.RetryInfo)
		return ok && ri.GetRetryDelay().AsDuration() > 0
	})
	if !hasRetry {
		t.Errorf("status has no RetryInfo")
	}
}

// TestWriteConcurrencyCap: with writes stalled in Raft, N-1 and N
// concurrent writes are admitted, the N+1st Apply or Delete fails at once
// with ResourceExhausted; reads are unaffected; everything admitted
// completes once Raft moves.
func TestWriteConcurrencyCap(t *testing.T) { //nolint:tparallel // the steps run in order, each adding writes in flight to those the step before left
	t.Parallel()
	const limit = 4
	n := startLimNode(t, func(c *ServerConfig) { c.MaxConcurrentWrites = limit })
	ctx := testCtx(t)
	put(t, n.client, string(sdEntry("existing")))
	n.raft.hold()

	var wg sync.WaitGroup
	errs := make(chan error, limit)
	start := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: sdEntry(fmt.Sprintf("w%d", i))})
			errs <- err
		}()
	}
	steps := []struct {
		name      string
		inFlight  int // writes to have in flight before the probe
		wantAdmit bool
	}{
		{"N-1", limit - 2, true},
		{"N", limit - 1, true},
		{"N+1", limit, false},
	}
	started := 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			for started < st.inFlight {
				start(started)
				started++
			}
			testutil.Poll(t, 10*time.Second, fmt.Sprintf("%d writes in raft", st.inFlight), func() bool { return n.raft.active.Load() == int64(st.inFlight) })
			if st.wantAdmit {
				start(started)
				started++
				testutil.Poll(t, 10*time.Second, "the probe write in raft", func() bool { return n.raft.active.Load() == int64(st.inFlight+1) })
				return
			}
			begin := time.Now()
			_, err := n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: sdEntry("over")})
			wantOverloaded(t, err, classWrite, limit)
			_, err = n.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "existing"})
			wantOverloaded(t, err, classWrite, limit)
			if d := time.Since(begin); d > 2*time.Second {
				t.Errorf("refusals took %s, want fail-fast", d)
			}
			// Reads are another class.
			if _, err := n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "existing"}); err != nil {
				t.Errorf("Get while writes are at the cap: %v", err)
			}
		})
	}
	n.raft.release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("admitted write: %v", err)
		}
	}
	if p := n.raft.peak.Load(); p != limit {
		t.Errorf("peak writes in raft = %d, want %d", p, limit)
	}
	if _, err := n.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "existing"}); err != nil {
		t.Errorf("Delete after the load: %v", err)
	}
}

// TestBlockingQueryCap: N-1 and N blocking reads wait, the N+1st fails at
// once with ResourceExhausted; non-blocking reads and writes go on.
func TestBlockingQueryCap(t *testing.T) { //nolint:tparallel // the steps run in order, each adding blocked queries to those the step before left
	t.Parallel()
	const limit = 3
	n := startLimNode(t, func(c *ServerConfig) { c.MaxBlockingQueries = limit })
	ctx := testCtx(t)
	idx := put(t, n.client, string(sdEntry("web"))).GetIndex()
	blockingGet := &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
		Options: &chainstorev1.QueryOptions{MinIndex: idx, Wait: durationpb.New(time.Minute)}}

	var wg sync.WaitGroup
	errs := make(chan error, limit)
	start := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := n.client.Get(ctx, blockingGet)
			errs <- err
		}()
	}
	steps := []struct {
		name      string
		inFlight  int
		wantAdmit bool
	}{
		{"N-1", limit - 2, true},
		{"N", limit - 1, true},
		{"N+1", limit, false},
	}
	started := 0
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			for started < st.inFlight {
				start()
				started++
			}
			testutil.Poll(t, 10*time.Second, "blocked queries", func() bool { return n.srv.Blocked() == int64(st.inFlight) })
			if st.wantAdmit {
				start()
				started++
				testutil.Poll(t, 10*time.Second, "the probe blocked", func() bool { return n.srv.Blocked() == int64(st.inFlight+1) })
				return
			}
			_, err := n.client.Get(ctx, blockingGet)
			wantOverloaded(t, err, classBlockingRead, limit)
			_, err = n.client.List(ctx, &chainstorev1.ListRequest{Kind: "service-defaults", Options: &chainstorev1.QueryOptions{MinIndex: idx}})
			wantOverloaded(t, err, classBlockingRead, limit)
			if _, err := n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web"}); err != nil {
				t.Errorf("non-blocking Get at the cap: %v", err)
			}
		})
	}
	// A write (another class) goes through and wakes every blocked read.
	put(t, n.client, `{"Kind":"service-defaults","Name":"web","Protocol":"grpc"}`)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("admitted blocking Get: %v", err)
		}
	}
	if _, err := n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
		Options: &chainstorev1.QueryOptions{MinIndex: 1}}); err != nil {
		t.Errorf("blocking Get after the cap freed: %v", err)
	}
}

// TestAdmissionClassifiesGetChain: a blocking GetChain takes a
// blocking-read slot (the interceptor is driven directly; the chain test
// harness has no knob for the server config).
func TestAdmissionClassifiesGetChain(t *testing.T) {
	t.Parallel()
	cfg := DefaultServerConfig()
	cfg.MaxBlockingQueries = 1
	intercept := admission(cfg)
	info := &grpc.UnaryServerInfo{FullMethod: chainstorev1.ChainService_GetChain_FullMethodName}
	blocking := &chainstorev1.GetChainRequest{Chain: ref("web"), Options: &chainstorev1.QueryOptions{MinIndex: 5}}
	inside, leave := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := intercept(context.Background(), blocking, info, func(context.Context, any) (any, error) {
			close(inside)
			<-leave
			return nil, nil
		})
		done <- err
	}()
	<-inside
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	if _, err := intercept(context.Background(), blocking, info, ok); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("second blocking GetChain = %v, want ResourceExhausted", err)
	}
	if _, err := intercept(context.Background(), &chainstorev1.GetChainRequest{Chain: ref("web")}, info, ok); err != nil {
		t.Errorf("non-blocking GetChain = %v, want admitted", err)
	}
	close(leave)
	if err := <-done; err != nil {
		t.Errorf("first GetChain: %v", err)
	}
	if _, err := intercept(context.Background(), blocking, info, ok); err != nil {
		t.Errorf("blocking GetChain after the slot freed = %v", err)
	}
}

// TestEntryNameAndKindRules: kind and name checks of Apply, Get and
// Delete, with the name length limit at N-1, N and N+1 (also counted after
// lower-casing). Nothing refused reaches Raft.
func TestEntryNameAndKindRules(t *testing.T) { //nolint:tparallel // the subtests share one node and check its raft apply count did not move, which a concurrent accepted Apply would break
	t.Parallel()
	n := startLimNode(t, nil)
	ctx := testCtx(t)
	name := func(size int) string { return strings.Repeat("n", size) }
	// "\u023a" (2 bytes) lower-cases to "\u2c65" (3 bytes).
	growing := strings.Repeat("n", MaxEntryNameLen-2) + "\u023a"

	type call func(kind, name string) error
	apply := func(kind, name string) error {
		doc := map[string]string{"Kind": kind, "Name": name}
		if kind == "" {
			delete(doc, "Kind")
		}
		entry, err := json.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: entry})
		return err
	}
	get := func(kind, name string) error {
		_, err := n.client.Get(ctx, &chainstorev1.GetRequest{Kind: kind, Name: name})
		return err
	}
	del := func(kind, name string) error {
		_, err := n.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: kind, Name: name})
		return err
	}
	calls := map[string]call{"Apply": apply, "Get": get, "Delete": del}

	tests := map[string]struct {
		kind, name string
		want       codes.Code
		wantInMsg  string
	}{
		"name N-1 bytes":           {"service-defaults", name(MaxEntryNameLen - 1), codes.OK, ""},
		"name N bytes":             {"service-defaults", name(MaxEntryNameLen), codes.OK, ""},
		"name N+1 bytes":           {"service-defaults", name(MaxEntryNameLen + 1), codes.InvalidArgument, "the limit is 256 bytes"},
		"name N bytes multi-byte":  {"service-defaults", strings.Repeat("é", MaxEntryNameLen/2), codes.OK, ""},
		"name N+1 after lowering":  {"service-defaults", growing, codes.InvalidArgument, "lower-cased name is 257 bytes"},
		"name with NUL":            {"service-defaults", "a\x00b", codes.InvalidArgument, "control character U+0000"},
		"name with newline":        {"service-defaults", "a\nb", codes.InvalidArgument, "control character U+000A"},
		"name with DEL":            {"service-defaults", "a\x7fb", codes.InvalidArgument, "control character U+007F"},
		"name with C1 control":     {"service-defaults", "a\u0085b", codes.InvalidArgument, "control character U+0085"},
		"empty name":               {"service-defaults", "", codes.InvalidArgument, ""},
		"empty kind":               {"", "web", codes.InvalidArgument, ""},
		"unknown kind":             {"service-nope", "web", codes.InvalidArgument, ""},
		"kind in the wrong case":   {"Service-Defaults", "web", codes.InvalidArgument, ""},
		"over-long name, bad kind": {"service-nope", name(MaxEntryNameLen + 1), codes.InvalidArgument, ""},
	}
	for tname, tc := range tests {
		for cname, c := range calls {
			if cname == "Apply" && tc.kind == "Service-Defaults" {
				continue // the decoder accepts any case of the kind in a document
			}
			t.Run(tname+"/"+cname, func(t *testing.T) {
				before, _ := n.raft.counts()
				err := c(tc.kind, tc.name)
				if status.Code(err) != tc.want {
					t.Fatalf("%s(%q, %q) = %v, want %v", cname, tc.kind, shortName(tc.name), err, tc.want)
				}
				if tc.want == codes.OK {
					return
				}
				if api.ErrorReason(err) != api.ReasonInvalidEntry {
					t.Errorf("reason %q, want %s", api.ErrorReason(err), api.ReasonInvalidEntry)
				}
				if !strings.Contains(status.Convert(err).Message(), tc.wantInMsg) {
					t.Errorf("message %q does not contain %q", status.Convert(err).Message(), tc.wantInMsg)
				}
				if after, _ := n.raft.counts(); after != before {
					t.Errorf("a refused %s reached raft", cname)
				}
			})
		}
	}
}

func TestCheckName(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		name string
		ok   bool
	}{
		"plain":             {"web", true},
		"empty (elsewhere)": {"", true},
		"unicode":           {"wéb-✓", true},
		"invalid UTF-8":     {"a\xffb", false},
		"truncated rune":    {"a\xe2\x9c", false},
		"tab":               {"a\tb", false},
		"N bytes":           {strings.Repeat("x", MaxEntryNameLen), true},
		"N+1 bytes":         {strings.Repeat("x", MaxEntryNameLen+1), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			err := checkName("service-defaults", tc.name)
			if (err == nil) != tc.ok {
				t.Fatalf("checkName(%q) = %v, want ok %v", tc.name, err, tc.ok)
			}
			if err != nil && status.Code(statusOf(err, leaderHint{})) != codes.InvalidArgument {
				t.Errorf("status of %v is not InvalidArgument", err)
			}
		})
	}
}

// TestMaxRecvMsgSize: a request message of N-1 and N bytes reaches the
// service (which refuses the too-large entry inside it with
// InvalidArgument / ENTRY_TOO_LARGE); N+1 bytes is refused by gRPC with
// ResourceExhausted before any handler runs. The entry-size boundary
// itself is TestEntrySizeLimit's.
func TestMaxRecvMsgSize(t *testing.T) {
	t.Parallel()
	n := startLimNode(t, nil)
	ctx := testCtx(t)
	const limit = DefaultMaxRecvMsgSize
	reqOfSize := func(t *testing.T, size int) *chainstorev1.ApplyRequest {
		t.Helper()
		// Field tag (1 byte) + 3-byte length varint + entry.
		req := &chainstorev1.ApplyRequest{Entry: []byte(strings.Repeat(" ", size-4))}
		if got := proto.Size(req); got != size {
			t.Fatalf("request is %d bytes, want %d", got, size)
		}
		return req
	}
	tests := []struct {
		name       string
		size       int
		want       codes.Code
		wantReason string
	}{
		{"N-1", limit - 1, codes.InvalidArgument, api.ReasonEntryTooLarge},
		{"N", limit, codes.InvalidArgument, api.ReasonEntryTooLarge},
		{"N+1", limit + 1, codes.ResourceExhausted, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := n.client.Apply(ctx, reqOfSize(t, tc.size))
			if status.Code(err) != tc.want || api.ErrorReason(err) != tc.wantReason {
				t.Fatalf("Apply(%d-byte message) = %v (reason %q), want %v with reason %q", tc.size, err, api.ErrorReason(err), tc.want, tc.wantReason)
			}
			if tc.want == codes.ResourceExhausted && !strings.Contains(err.Error(), "larger than max") {
				t.Errorf("error %v is not gRPC's message-size refusal", err)
			}
		})
	}
}

// nextFor reads w until an event about subscription id that is not an
// update (updates of other subscriptions are skipped).
func nextFor(w *watchStream, id uint64) *chainstorev1.WatchResponse {
	w.t.Helper()
	for {
		resp := w.recv()
		switch {
		case resp.GetSubscribed() != nil && resp.GetSubscribed().GetSubscriptionId() == id,
			resp.GetUnsubscribed() != nil && resp.GetUnsubscribed().GetSubscriptionId() == id:
			return resp
		}
	}
}

// TestWatchSubscriptionCap: on one stream, subscriptions N-1 and N are
// accepted and N+1 is refused in-band (Unsubscribed with the error); the
// stream itself stays open (no gRPC error) and takes a new subscription
// once one is closed.
func TestWatchSubscriptionCap(t *testing.T) { //nolint:tparallel // the subtests share one stream and run in order: N+1 is refused only once N was accepted
	t.Parallel()
	const limit = 3
	n := startChainNode(t, "a", newESCluster(), chNodeOpts{leader: true,
		chainCfg: func(c *ChainServerConfig) { c.Watcher.MaxSubscriptions = limit }})
	w := openWatch(t, n)
	for id := uint64(1); id < limit; id++ {
		w.subscribe(id, ref(fmt.Sprintf("s%d", id)), 0, "")
		if nextFor(w, id).GetSubscribed() == nil {
			t.Fatalf("subscription %d (below the cap) refused", id)
		}
	}
	tests := []struct {
		name   string
		id     uint64
		refuse bool
	}{
		{"N", limit, false},
		{"N+1", limit + 1, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w.subscribe(tc.id, ref(fmt.Sprintf("s%d", tc.id)), 0, "")
			resp := nextFor(w, tc.id)
			if !tc.refuse {
				if resp.GetSubscribed() == nil {
					t.Fatalf("got %v, want subscribed", resp)
				}
				return
			}
			if u := resp.GetUnsubscribed(); !strings.Contains(u.GetError(), chainwatch.ErrTooManySubscriptions.Error()) {
				t.Fatalf("got %v, want unsubscribed with %q", resp, chainwatch.ErrTooManySubscriptions)
			}
		})
	}
	w.unsubscribe(1)
	if nextFor(w, 1).GetUnsubscribed() == nil {
		t.Fatal("unsubscribe 1 not confirmed")
	}
	w.subscribe(10, ref("s10"), 0, "")
	if nextFor(w, 10).GetSubscribed() == nil {
		t.Fatal("stream does not take a subscription after one was closed")
	}
}

// TestChainsPerHubCap: with MaxChains = N, GetChain of chains N-1 and N
// succeeds and of chain N+1 fails with ResourceExhausted (cached chains
// count until WarmTTL); a Watch subscription to chain N+1 is refused
// in-band.
func TestChainsPerHubCap(t *testing.T) { //nolint:tparallel // the subtests share one hub and run in order: chain N+1 is refused only once chains N-1 and N are tracked
	t.Parallel()
	const limit = 2
	n := startChainNode(t, "a", newESCluster(), chNodeOpts{leader: true,
		hubCfg: func(c *chainwatch.Config) { c.MaxChains = limit; c.WarmTTL = time.Hour }})
	ctx := testCtx(t)
	tests := []struct {
		name    string
		service string
		want    codes.Code
	}{
		{"N-1", "c1", codes.OK},
		{"N", "c2", codes.OK},
		{"N+1", "c3", codes.ResourceExhausted},
		{"a tracked chain again", "c1", codes.OK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := n.chains.GetChain(ctx, &chainstorev1.GetChainRequest{Chain: ref(tc.service)})
			if status.Code(err) != tc.want {
				t.Fatalf("GetChain(%s) = %v, want %v", tc.service, err, tc.want)
			}
			if tc.want == codes.ResourceExhausted && !strings.Contains(err.Error(), fmt.Sprintf("limit %d", limit)) {
				t.Errorf("error %v does not name the limit", err)
			}
		})
	}
	w := openWatch(t, n)
	w.subscribe(1, ref("c4"), 0, "")
	if u := nextFor(w, 1).GetUnsubscribed(); !strings.Contains(u.GetError(), chainwatch.ErrTooManyChains.Error()) {
		t.Errorf("subscription to chain N+1: %v, want refused with %q", u, chainwatch.ErrTooManyChains)
	}
	w.subscribe(2, ref("c2"), 0, "")
	if nextFor(w, 2).GetSubscribed() == nil {
		t.Errorf("subscription to a tracked chain refused")
	}
}

// TestWatchStreamCapBoundary: streams N-1 and N open, N+1 ends with
// ResourceExhausted, and a stream opens again once one closed.
func TestWatchStreamCapBoundary(t *testing.T) {
	t.Parallel()
	const limit = 2
	n := startChainNode(t, "a", newESCluster(), chNodeOpts{leader: true,
		chainCfg: func(c *ChainServerConfig) { c.MaxStreams = limit }})
	var open []*watchStream
	for i := 1; i <= limit+1; i++ {
		w := openWatch(t, n)
		if i <= limit {
			w.subscribe(1, ref("web"), 0, "")
			w.expectSubscribed(1)
			open = append(open, w)
			continue
		}
		// The server may refuse the stream before the subscribe reaches
		// it; Send then reports io.EOF and Recv carries the status.
		if err := w.stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{
			Id: 1, Chain: ref("web"),
		}}}); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("send subscribe on stream %d: %v", i, err)
		}
		if _, err := w.stream.Recv(); status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("stream %d over a cap of %d: %v, want ResourceExhausted", i, limit, err)
		}
	}
	open[0].cancel()
	testutil.Poll(t, 10*time.Second, "a stream slot to free", func() bool { return n.cs.streams.Load() < limit })
	w := openWatch(t, n)
	w.subscribe(1, ref("web"), 0, "")
	w.expectSubscribed(1)
}

// TestMaxChainBytes: a compiled chain of exactly MaxChainBytes is served;
// one byte over, GetChain fails with FailedPrecondition
// CHAIN_COMPILE_ERROR.
func TestMaxChainBytes(t *testing.T) {
	t.Parallel()
	probe := startChainNode(t, "p", newESCluster(), chNodeOpts{leader: true})
	resp, err := probe.chains.GetChain(testCtx(t), &chainstorev1.GetChainRequest{Chain: ref("web")})
	if err != nil {
		t.Fatalf("GetChain: %v", err)
	}
	size := len(resp.GetVersion().GetChain())
	tests := []struct {
		name  string
		limit int
		want  codes.Code
	}{
		{"chain N-1 bytes", size + 1, codes.OK},
		{"chain N bytes", size, codes.OK},
		{"chain N+1 bytes", size - 1, codes.FailedPrecondition},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := startChainNode(t, "a", newESCluster(), chNodeOpts{leader: true,
				hubCfg: func(c *chainwatch.Config) { c.MaxChainBytes = tc.limit }})
			_, err := n.chains.GetChain(testCtx(t), &chainstorev1.GetChainRequest{Chain: ref("web")})
			if status.Code(err) != tc.want {
				t.Fatalf("GetChain with MaxChainBytes %d (chain %d bytes) = %v, want %v", tc.limit, size, err, tc.want)
			}
			if tc.want != codes.OK && api.ErrorReason(err) != api.ReasonChainCompileError {
				t.Errorf("reason %q, want %s", api.ErrorReason(err), api.ReasonChainCompileError)
			}
		})
	}
}

// TestOverload drives a server whose Raft commits one write per 2 ms
// (500/s) with 4x its write concurrency cap (128; the default 2,048
// needs more goroutines than -race allows alongside) of clients for 3 s, then
// checks: the excess is refused with ResourceExhausted quickly, no other
// error, at most the cap of writes in Raft at once, bounded heap, and a
// write succeeds within 10 s of the load stopping.
//
// It is not parallel: sequential tests run before the parallel ones, so
// the heap figures are this test's own.
func TestOverload(t *testing.T) {
	const (
		limit   = 128
		clients = 4 * limit
		loadFor = 3 * time.Second
		// Heap bounds: peak above the baseline during the load, and what
		// is left after it (the FSM keeps the written entries).
		maxPeakGrowth = 64 << 20
		maxLeftGrowth = 16 << 20
	)
	n := startLimNode(t, func(c *ServerConfig) { c.MaxConcurrentWrites = limit })
	ctx := testCtx(t)
	put(t, n.client, string(sdEntry("warmup")))

	// The slow Raft: one token every 2 ms.
	gate := n.raft.hold()
	stopTicks := make(chan struct{})
	var tickWG sync.WaitGroup
	tickWG.Add(1)
	go func() {
		defer tickWG.Done()
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stopTicks:
				return
			case <-tick.C:
				select {
				case gate <- struct{}{}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		close(stopTicks)
		tickWG.Wait()
	})

	base := heapAfterGC()
	var peak atomic.Uint64
	sampleStop := make(chan struct{})
	var sampleWG sync.WaitGroup
	sampleWG.Add(1)
	go func() {
		defer sampleWG.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			select {
			case <-sampleStop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()

	type result struct {
		ok, refused int
		other       []error
		refusalLat  []time.Duration
	}
	results := make([]result, clients)
	loadCtx, stopLoad := context.WithTimeout(ctx, loadFor)
	defer stopLoad()
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[c]
			for i := 0; loadCtx.Err() == nil; i++ {
				begin := time.Now()
				_, err := n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: sdEntry(fmt.Sprintf("c%d-%d", c, i%8))})
				switch status.Code(err) {
				case codes.OK:
					r.ok++
				case codes.ResourceExhausted:
					r.refused++
					r.refusalLat = append(r.refusalLat, time.Since(begin))
					// A well-behaved client backs off for the RetryInfo
					// delay (jittered), then tries again.
					select {
					case <-loadCtx.Done():
					case <-time.After(overloadRetryDelay/2 + time.Duration(rand.Int64N(int64(overloadRetryDelay)))):
					}
				default:
					r.other = append(r.other, err)
				}
			}
		}()
	}
	wg.Wait()
	stopLoad()
	close(sampleStop)
	sampleWG.Wait()

	var ok, refused int
	var lat []time.Duration
	for _, r := range results {
		ok, refused = ok+r.ok, refused+r.refused
		lat = append(lat, r.refusalLat...)
		for _, err := range r.other {
			t.Errorf("unexpected error under load: %v", err)
		}
	}
	slices.Sort(lat)
	if ok == 0 || refused == 0 {
		t.Fatalf("ok %d, refused %d: want both", ok, refused)
	}
	p50, p99, worst := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	t.Logf("overload: %d clients, cap %d: %d ok, %d refused; refusal latency p50 %s p99 %s max %s; peak writes in raft %d",
		clients, limit, ok, refused, p50, p99, worst, n.raft.peak.Load())
	// The refusal latencies are logged, not asserted: under -race on a
	// busy 2-core machine they measure the client's CPU contention, not
	// the server (BenchmarkOverloadRefusal-style figures belong in a
	// benchmark). What is asserted is structural: refusals happened, and
	// Raft never held more writes than the cap.
	if p := n.raft.peak.Load(); p > limit {
		t.Errorf("peak writes in raft = %d, over the cap %d", p, limit)
	}

	// Recovery: the load has stopped; a write must succeed within 10 s.
	begin := time.Now()
	testutil.Poll(t, 10*time.Second, "a write after the load", func() bool {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err := n.client.Apply(wctx, &chainstorev1.ApplyRequest{Entry: sdEntry("after-load")})
		return err == nil
	})
	t.Logf("first write after the load: %s", time.Since(begin))
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("recovery took %s, want under 10 s", d)
	}

	left := heapAfterGC()
	t.Logf("heap: base %d KiB, peak %d KiB, after %d KiB", base>>10, peak.Load()>>10, left>>10)
	if pk := peak.Load(); pk > base && pk-base > maxPeakGrowth {
		t.Errorf("heap grew by %d MiB during the load, bound %d MiB", (pk-base)>>20, maxPeakGrowth>>20)
	}
	if left > base && left-base > maxLeftGrowth {
		t.Errorf("heap grew by %d MiB after the load, bound %d MiB", (left-base)>>20, maxLeftGrowth>>20)
	}
}

func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// FuzzApplyRequest: the request conversion the server runs before it
// proposes (size limit, decode, name rules, Prepare; kind/name checks for
// Delete) never panics; what it accepts also passes the admission name
// check, encodes to an fsm command that DecodeCommand round-trips, and
// applies to a fresh FSM without panicking.
func FuzzApplyRequest(f *testing.F) {
	seeds := []string{
		`{"Kind":"service-defaults","Name":"web","Protocol":"http"}`,
		`{"kind":"service-resolver","name":"web","connect_timeout":"5s","subsets":{"v1":{"filter":"Service.Meta.version == v1"}}}`,
		`{"Kind":"service-splitter","Name":"web","Splits":[{"Weight":100}]}`,
		`{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathPrefix":"/a"}},"Destination":{"Service":"api"}}]}`,
		`{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":"http"}}`,
		"Kind = \"service-defaults\"\nName = \"web\"\nProtocol = \"grpc\"\n",
		`{"Kind":"service-defaults","Name":"a\u0001b"}`,
		`{"Kind":"service-defaults","Name":"` + strings.Repeat("x", MaxEntryNameLen+1) + `"}`,
		`[1,2]`,
		``,
	}
	for i, s := range seeds {
		f.Add([]byte(s), i%2 == 0, uint64(i), "service-defaults", "web")
	}
	f.Add([]byte(`{}`), true, uint64(0), "", "")
	f.Add([]byte(`{"Kind":"service-defaults","Name":"\u023a"}`), false, uint64(1), "service-nope", "\x00")
	f.Fuzz(func(t *testing.T, entry []byte, cas bool, modifyIndex uint64, kind, name string) {
		const maxEntry = 64 << 10
		req := &chainstorev1.ApplyRequest{Entry: entry, Cas: cas, ModifyIndex: modifyIndex}
		cmd, err := applyRequestCommand(req, maxEntry)
		if err == nil {
			if n := cmd.Entry.GetName(); len(n) > MaxEntryNameLen || len(cmd.Key.Name) > MaxEntryNameLen {
				t.Fatalf("accepted a name of %d bytes (key %d bytes)", len(n), len(cmd.Key.Name))
			}
		} else if c := status.Code(statusOf(err, leaderHint{})); c != codes.InvalidArgument {
			t.Fatalf("conversion error %v maps to %v, want InvalidArgument", err, c)
		}
		del := &chainstorev1.DeleteRequest{Kind: kind, Name: name, Cas: cas, ModifyIndex: modifyIndex}
		dcmd, derr := deleteRequestCommand(del)
		if derr != nil {
			if c := status.Code(statusOf(derr, leaderHint{})); c != codes.InvalidArgument {
				t.Fatalf("delete conversion error %v maps to %v, want InvalidArgument", derr, c)
			}
		}
		var cmds []fsm.Command
		if err == nil {
			cmds = append(cmds, cmd)
		}
		if derr == nil {
			cmds = append(cmds, dcmd)
		}
		machine := fsm.New(nil)
		for i, c := range cmds {
			data, err := fsm.EncodeCommand(c)
			if err != nil {
				t.Fatalf("EncodeCommand of an accepted request: %v", err)
			}
			back, err := fsm.DecodeCommand(data)
			if err != nil {
				t.Fatalf("DecodeCommand(EncodeCommand(%+v)): %v", c, err)
			}
			again, err := fsm.EncodeCommand(back)
			if err != nil || string(again) != string(data) {
				t.Fatalf("command does not round-trip: %q vs %q (%v)", data, again, err)
			}
			if back.Op != c.Op || back.Key != c.Key || back.CASIndex != c.CASIndex ||
				(c.Entry != nil && !chain.EqualEntries(back.Entry, c.Entry)) {
				t.Fatalf("decoded command %+v differs from %+v", back, c)
			}
			res := machine.Apply(&raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: data})
			if _, ok := res.(fsm.ApplyResult); !ok {
				if _, ok := res.(*fsm.ApplyResult); !ok {
					t.Fatalf("FSM.Apply returned %T, want an ApplyResult", res)
				}
			}
		}
	})
}
