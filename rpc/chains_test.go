package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"

	"github.com/chainstore/chainstore/api"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// chNode is one server with the entries and chain services on a real
// loopback gRPC server. Its "raft" is esRaft: a single FSM, no
// replication; tests that need several replicas apply the same writes to
// each node in the same order, which gives them the same indexes.
type chNode struct {
	id      string
	addr    string
	raft    *esRaft
	fsm     *fsm.FSM
	hub     *chainwatch.Hub
	cs      *ChainServer
	client  *api.Client
	chains  chainstorev1.ChainServiceClient
	stopped chan struct{}
	stop    func() // stops the gRPC server (a crash as seen by clients)
}

type chNodeOpts struct {
	leader   bool
	hubCfg   func(*chainwatch.Config)
	chainCfg func(*ChainServerConfig)
}

func startChainNode(tb testing.TB, id string, cl *esCluster, o chNodeOpts) *chNode {
	tb.Helper()
	cfg := testServerConfig(id)
	f := fsm.New(nil)
	r := &esRaft{fsm: f, nodeID: id, leader: o.leader}
	hcfg := chainwatch.DefaultConfig()
	if o.hubCfg != nil {
		o.hubCfg(&hcfg)
	}
	hub, err := chainwatch.New(hcfg, chainwatch.FSMSource(f), nil)
	if err != nil {
		tb.Fatalf("chainwatch.New: %v", err)
	}
	ccfg := DefaultChainServerConfig()
	ccfg.Watcher.ProgressInterval = time.Hour
	ccfg.Watcher.ResumeWait = 2 * time.Second
	if o.chainCfg != nil {
		o.chainCfg(&ccfg)
	}
	svc := newTestServices(tb, cfg, r, f, cl, hub, ccfg)
	cs := svc.chains
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	g := NewGRPCServer(cfg, nil)
	Register(g, svc)

	hubCtx, hubCancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := hub.Run(hubCtx); err != nil {
			tb.Errorf("hub.Run: %v", err)
		}
	}()
	go func() {
		defer wg.Done()
		_ = g.Serve(lis)
	}()
	addr := lis.Addr().String()
	cl.set(id, addr)
	clientCfg := api.DefaultClientConfig()
	clientCfg.Addrs = []string{addr}
	client, err := api.NewClient(clientCfg)
	if err != nil {
		tb.Fatalf("api.NewClient: %v", err)
	}
	n := &chNode{id: id, addr: addr, raft: r, fsm: f, hub: hub, cs: cs, client: client,
		chains: chainstorev1.NewChainServiceClient(client.Conn()), stopped: make(chan struct{})}
	var once sync.Once
	n.stop = func() {
		once.Do(func() {
			hubCancel()
			svc.Close()
			g.Stop()
			wg.Wait()
			close(n.stopped)
		})
	}
	tb.Cleanup(func() {
		_ = client.Close()
		n.stop()
	})
	return n
}

// chPutAll writes entry to every node in turn (each is its own replica).
func chPutAll(t *testing.T, entry string, nodes ...*chNode) uint64 {
	t.Helper()
	var idx uint64
	for i, n := range nodes {
		resp := put(t, n.client, entry)
		if i > 0 && resp.GetIndex() != idx {
			t.Fatalf("node %s applied %s at index %d, node %s at %d: replicas diverged", n.id, entry, resp.GetIndex(), nodes[0].id, idx)
		}
		idx = resp.GetIndex()
	}
	return idx
}

func chResolver(name string, timeout time.Duration) string {
	return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":%q}`, name, timeout.String())
}

// decodeChain decodes a version's compiled chain.
func decodeChain(t *testing.T, v *chainstorev1.ChainVersion) *chain.CompiledChain {
	t.Helper()
	if v.GetError() != "" {
		t.Fatalf("version %d: compile error %q", v.GetIndex(), v.GetError())
	}
	var c chain.CompiledChain
	if err := json.Unmarshal(v.GetChain(), &c); err != nil {
		t.Fatalf("decode chain of version %d: %v", v.GetIndex(), err)
	}
	return &c
}

func connectTimeoutOf(t *testing.T, v *chainstorev1.ChainVersion, service string) time.Duration {
	t.Helper()
	n := decodeChain(t, v).Nodes["resolver:"+service+".default.dc1"]
	if n == nil || n.Resolver == nil {
		t.Fatalf("version %d has no resolver node for %s", v.GetIndex(), service)
	}
	return time.Duration(n.Resolver.ConnectTimeout)
}

// watchStream is a test client of one Watch stream.
type watchStream struct {
	t      *testing.T
	stream chainstorev1.ChainService_WatchClient
	cancel context.CancelFunc
}

func openWatch(t *testing.T, n *chNode) *watchStream {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	stream, err := n.chains.Watch(ctx)
	if err != nil {
		cancel()
		t.Fatalf("Watch: %v", err)
	}
	t.Cleanup(cancel)
	return &watchStream{t: t, stream: stream, cancel: cancel}
}

func (w *watchStream) subscribe(id uint64, ref *chainstorev1.ChainRef, lastIndex uint64, lastHash string) {
	w.t.Helper()
	err := w.stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{
		Id: id, Chain: ref, LastIndex: lastIndex, LastHash: lastHash,
	}}})
	if err != nil {
		w.t.Fatalf("send subscribe: %v", err)
	}
}

func (w *watchStream) unsubscribe(id uint64) {
	w.t.Helper()
	err := w.stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Unsubscribe{Unsubscribe: &chainstorev1.WatchUnsubscribe{Id: id}}})
	if err != nil {
		w.t.Fatalf("send unsubscribe: %v", err)
	}
}

// recv returns the next message, skipping progress messages.
func (w *watchStream) recv() *chainstorev1.WatchResponse {
	w.t.Helper()
	for {
		resp, err := w.stream.Recv()
		if err != nil {
			w.t.Fatalf("Recv: %v", err)
		}
		if resp.GetProgress() == nil {
			return resp
		}
	}
}

func (w *watchStream) expectSubscribed(id uint64) {
	w.t.Helper()
	if resp := w.recv(); resp.GetSubscribed().GetSubscriptionId() != id {
		w.t.Fatalf("got %v, want subscribed %d", resp, id)
	}
}

func (w *watchStream) expectUpdate(id uint64) *chainstorev1.ChainVersion {
	w.t.Helper()
	resp := w.recv()
	u := resp.GetUpdate()
	if u == nil || u.GetSubscriptionId() != id {
		w.t.Fatalf("got %v, want an update of subscription %d", resp, id)
	}
	return u.GetVersion()
}

func ref(service string) *chainstorev1.ChainRef { return &chainstorev1.ChainRef{Service: service} }

func TestGetChain(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true})
	idx := put(t, n.client, chResolver("web", 7*time.Second)).GetIndex()
	put(t, n.client, chResolver("other", time.Second))
	ctx := testCtx(t)

	tests := map[string]struct {
		req         *chainstorev1.GetChainRequest
		wantTimeout time.Duration
		wantHash    bool // CustomizationHash set
	}{
		"default": {req: &chainstorev1.GetChainRequest{Chain: ref("web")}, wantTimeout: 7 * time.Second},
		"stale": {req: &chainstorev1.GetChainRequest{Chain: ref("web"), Options: &chainstorev1.QueryOptions{
			Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}}, wantTimeout: 7 * time.Second},
		"consistent": {req: &chainstorev1.GetChainRequest{Chain: ref("web"), Options: &chainstorev1.QueryOptions{
			Consistency: chainstorev1.Consistency_CONSISTENCY_CONSISTENT}}, wantTimeout: 7 * time.Second},
		"connect timeout override": {req: &chainstorev1.GetChainRequest{Chain: &chainstorev1.ChainRef{Service: "web",
			Overrides: &chainstorev1.ChainOverrides{ConnectTimeout: durationpb.New(3 * time.Second)}}},
			wantTimeout: 3 * time.Second, wantHash: true},
	}
	for name, tc := range tests {
		resp, err := n.chains.GetChain(ctx, tc.req)
		if err != nil {
			t.Fatalf("%s: GetChain: %v", name, err)
		}
		v := resp.GetVersion()
		// The index is web's own entry's, not the store's latest.
		if v.GetIndex() != idx || resp.GetMeta().GetIndex() != idx {
			t.Errorf("%s: index %d (meta %d), want %d", name, v.GetIndex(), resp.GetMeta().GetIndex(), idx)
		}
		if got := connectTimeoutOf(t, v, "web"); got != tc.wantTimeout {
			t.Errorf("%s: connect timeout %s, want %s", name, got, tc.wantTimeout)
		}
		if got := decodeChain(t, v).CustomizationHash != ""; got != tc.wantHash {
			t.Errorf("%s: customization hash set = %v, want %v", name, got, tc.wantHash)
		}
	}

	_, err := n.chains.GetChain(ctx, &chainstorev1.GetChainRequest{Chain: ref("")})
	if status.Code(err) != codes.InvalidArgument || api.ErrorReason(err) != api.ReasonInvalidChain {
		t.Errorf("GetChain without a service = %v, want InvalidArgument %s", err, api.ReasonInvalidChain)
	}
}

func TestGetChainCompileError(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	// A size limit no chain fits makes every chain fail to "compile".
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true, hubCfg: func(c *chainwatch.Config) { c.MaxChainBytes = 10 }})
	idx := put(t, n.client, chResolver("web", 7*time.Second)).GetIndex()
	_, err := n.chains.GetChain(testCtx(t), &chainstorev1.GetChainRequest{Chain: ref("web")})
	if status.Code(err) != codes.FailedPrecondition || api.ErrorReason(err) != api.ReasonChainCompileError {
		t.Fatalf("GetChain = %v, want FailedPrecondition %s", err, api.ReasonChainCompileError)
	}
	md := api.ErrorInfo(err).GetMetadata()
	want := map[string]string{
		api.MetaService: "web",
		api.MetaError:   `compiled chain "web" is 0 bytes, over the limit of 10 bytes`,
		api.MetaIndex:   fmt.Sprint(idx),
	}
	// The size in the message depends on the compiler's output.
	if md[api.MetaError] != "" {
		want[api.MetaError] = md[api.MetaError]
	}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("error metadata (-want +got):\n%s", diff)
	}
	if api.ErrorText(err) == "" {
		t.Errorf("api.ErrorText is empty")
	}
}

func TestGetChainBlocking(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true})
	idx := put(t, n.client, chResolver("web", 7*time.Second)).GetIndex()
	ctx := testCtx(t)

	// Nothing changes: the wait ends and the current version comes back.
	resp, err := n.chains.GetChain(ctx, &chainstorev1.GetChainRequest{Chain: ref("web"),
		Options: &chainstorev1.QueryOptions{MinIndex: idx, Wait: durationpb.New(30 * time.Millisecond)}})
	if err != nil || resp.GetVersion().GetIndex() != idx {
		t.Fatalf("GetChain(min_index %d, short wait) = %v, %v; want index %d", idx, resp, err, idx)
	}

	// A write unblocks it; an unrelated one does not.
	type result struct {
		resp *chainstorev1.GetChainResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := n.chains.GetChain(ctx, &chainstorev1.GetChainRequest{Chain: ref("web"),
			Options: &chainstorev1.QueryOptions{MinIndex: idx, Wait: durationpb.New(time.Minute)}})
		done <- result{resp, err}
	}()
	put(t, n.client, chResolver("api", time.Second))
	next := put(t, n.client, chResolver("web", 8*time.Second)).GetIndex()
	r := <-done
	if r.err != nil {
		t.Fatalf("blocking GetChain: %v", r.err)
	}
	if got := r.resp.GetVersion().GetIndex(); got != next {
		t.Errorf("blocking GetChain returned index %d, want %d", got, next)
	}
}

func TestGetChainForwardedToLeader(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	leader := startChainNode(t, "l", cl, chNodeOpts{leader: true})
	follower := startChainNode(t, "f", cl, chNodeOpts{})
	follower.raft.set(func(r *esRaft) { r.leaderID = "l" })
	// Only the leader has the entry (the fake does not replicate), so the
	// answer shows who served it.
	idx := put(t, leader.client, chResolver("web", 7*time.Second)).GetIndex()
	ctx := testCtx(t)

	resp, err := follower.chains.GetChain(ctx, &chainstorev1.GetChainRequest{Chain: ref("web")})
	if err != nil {
		t.Fatalf("GetChain on the follower: %v", err)
	}
	if resp.GetVersion().GetIndex() != idx || resp.GetMeta().GetServedBy() != "node-l" {
		t.Errorf("default read on a follower: index %d served by %q, want %d by node-l", resp.GetVersion().GetIndex(), resp.GetMeta().GetServedBy(), idx)
	}
	resp, err = follower.chains.GetChain(ctx, &chainstorev1.GetChainRequest{Chain: ref("web"),
		Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}})
	if err != nil {
		t.Fatalf("stale GetChain on the follower: %v", err)
	}
	if resp.GetVersion().GetIndex() != 0 || resp.GetMeta().GetServedBy() != "node-f" {
		t.Errorf("stale read on a follower: index %d served by %q, want 0 by node-f", resp.GetVersion().GetIndex(), resp.GetMeta().GetServedBy())
	}
}

func TestWatchSubscriptionsOnLiveStream(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true})
	w := openWatch(t, n)

	w.subscribe(1, ref("web"), 0, "")
	w.expectSubscribed(1)
	if v := w.expectUpdate(1); v.GetIndex() != 0 || v.GetHash() == "" {
		t.Errorf("first version of web: index %d hash %q, want index 0 and a hash", v.GetIndex(), v.GetHash())
	}
	w.subscribe(2, ref("api"), 0, "")
	w.expectSubscribed(2)
	w.expectUpdate(2)

	idx := put(t, n.client, chResolver("web", 3*time.Second)).GetIndex()
	if v := w.expectUpdate(1); v.GetIndex() != idx || connectTimeoutOf(t, v, "web") != 3*time.Second {
		t.Errorf("web update: index %d, want %d with a 3s timeout", v.GetIndex(), idx)
	}

	// A bad reference is refused; the stream goes on.
	w.subscribe(3, ref(""), 0, "")
	if u := w.recv().GetUnsubscribed(); u.GetSubscriptionId() != 3 || u.GetError() == "" {
		t.Errorf("subscribing without a service: got %v, want unsubscribed 3 with an error", u)
	}
	w.subscribe(2, ref("db"), 0, "")
	if u := w.recv().GetUnsubscribed(); u.GetSubscriptionId() != 2 || u.GetError() == "" {
		t.Errorf("subscribing with an id in use: got %v, want unsubscribed 2 with an error", u)
	}

	w.unsubscribe(1)
	if u := w.recv().GetUnsubscribed(); u.GetSubscriptionId() != 1 || u.GetError() != "" {
		t.Fatalf("got %v, want unsubscribed 1", u)
	}
	put(t, n.client, chResolver("web", 4*time.Second))
	apiIdx := put(t, n.client, chResolver("api", 4*time.Second)).GetIndex()
	if v := w.expectUpdate(2); v.GetIndex() != apiIdx {
		t.Errorf("after unsubscribing web: update index %d, want api's %d", v.GetIndex(), apiIdx)
	}
}

func TestWatchResume(t *testing.T) { //nolint:tparallel // the subtests run in order: unchanged writes a new version and updates have, which the later ones read
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true, chainCfg: func(c *ChainServerConfig) {
		c.Watcher.ResumeWait = 50 * time.Millisecond
	}})
	idx := put(t, n.client, chResolver("web", 3*time.Second)).GetIndex()
	first := openWatch(t, n)
	first.subscribe(1, ref("web"), 0, "")
	first.expectSubscribed(1)
	have := first.expectUpdate(1)

	t.Run("unchanged", func(t *testing.T) {
		w := openWatch(t, n)
		w.subscribe(5, ref("web"), have.GetIndex(), have.GetHash())
		w.expectSubscribed(5)
		marker := put(t, n.client, chResolver("web", 4*time.Second)).GetIndex()
		if v := w.expectUpdate(5); v.GetIndex() != marker {
			t.Errorf("first update index %d, want %d: the version the client had was sent again", v.GetIndex(), marker)
		}
		have = first.expectUpdate(1)
	})
	t.Run("newer", func(t *testing.T) {
		w := openWatch(t, n)
		w.subscribe(5, ref("web"), idx, "a-hash-the-client-had")
		w.expectSubscribed(5)
		if v := w.expectUpdate(5); v.GetIndex() != have.GetIndex() || v.GetHash() != have.GetHash() {
			t.Errorf("got index %d, want the current %d", v.GetIndex(), have.GetIndex())
		}
	})
	t.Run("server behind", func(t *testing.T) {
		w := openWatch(t, n)
		w.subscribe(5, ref("web"), have.GetIndex()+100, "x")
		var err error
		for err == nil {
			_, err = w.stream.Recv()
		}
		if status.Code(err) != codes.Unavailable || api.ErrorReason(err) != api.ReasonServerBehind {
			t.Errorf("stream ended with %v, want Unavailable %s", err, api.ReasonServerBehind)
		}
	})
}

func TestWatchSlowClientDoesNotDelayOthers(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true})
	slow, fast := openWatch(t, n), openWatch(t, n)
	for _, w := range []*watchStream{slow, fast} {
		w.subscribe(1, ref("web"), 0, "")
		w.expectSubscribed(1)
		w.expectUpdate(1)
	}
	// The slow client reads nothing while the chain changes 50 times.
	var last uint64
	for i := 1; i <= 50; i++ {
		last = put(t, n.client, chResolver("web", time.Duration(i)*time.Second)).GetIndex()
		if v := fast.expectUpdate(1); v.GetIndex() != last {
			t.Fatalf("fast client: index %d, want %d", v.GetIndex(), last)
		}
	}
	// Then it gets increasing versions ending with the newest.
	var prev uint64
	for prev != last {
		v := slow.expectUpdate(1)
		if v.GetIndex() <= prev {
			t.Fatalf("slow client: index %d after %d", v.GetIndex(), prev)
		}
		prev = v.GetIndex()
	}
}

func TestWatchEndsWhenHubStops(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true})
	w := openWatch(t, n)
	w.subscribe(1, ref("web"), 0, "")
	w.expectSubscribed(1)
	w.expectUpdate(1)
	go n.stop()
	var err error
	for err == nil {
		_, err = w.stream.Recv()
	}
	if c := status.Code(err); c != codes.Unavailable {
		t.Errorf("stream ended with %v, want Unavailable", err)
	}
	<-n.stopped
}

func TestWatchStreamCap(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	n := startChainNode(t, "a", cl, chNodeOpts{leader: true, chainCfg: func(c *ChainServerConfig) { c.MaxStreams = 1 }})
	w := openWatch(t, n)
	w.subscribe(1, ref("web"), 0, "")
	w.expectSubscribed(1)
	second := openWatch(t, n)
	_, err := second.stream.Recv()
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("second stream over a cap of 1: %v, want ResourceExhausted", err)
	}
}

// TestChainWatchClientFailover runs the agent's client against two
// replicas: it resumes on the second when the first dies, never receives
// a version it had or an older one, and does not miss the final one.
func TestChainWatchClientFailover(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	a := startChainNode(t, "a", cl, chNodeOpts{leader: true})
	b := startChainNode(t, "b", cl, chNodeOpts{leader: true, chainCfg: func(c *ChainServerConfig) {
		c.Watcher.ResumeWait = 10 * time.Second
	}})
	first := chPutAll(t, chResolver("web", time.Second), a, b)

	client, events := runWatchClient(t, []string{a.addr, b.addr}, nil)
	ctx := testCtx(t)
	nextWeb := func() api.ChainEvent {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.Service == "web" {
					return e
				}
			case <-ctx.Done():
				t.Fatalf("no web event: %v", ctx.Err())
			}
		}
	}

	if e := nextWeb(); e.Index != first || e.Server != a.addr {
		t.Fatalf("first event index %d from %s, want %d from %s", e.Index, e.Server, first, a.addr)
	}
	// a gets a write b has not applied yet, then dies. The client must
	// not take b's older version: b is behind, so it waits until b
	// catches up, then resumes with nothing to send.
	ahead := put(t, a.client, chResolver("web", 2*time.Second)).GetIndex()
	if e := nextWeb(); e.Index != ahead {
		t.Fatalf("event index %d, want %d", e.Index, ahead)
	}
	a.stop()
	testutil.Poll(t, 10*time.Second, "the client to open a stream on b", func() bool { return b.cs.streams.Load() > 0 })
	if got := put(t, b.client, chResolver("web", 2*time.Second)).GetIndex(); got != ahead {
		t.Fatalf("b applied the write at %d, want %d", got, ahead)
	}
	final := put(t, b.client, chResolver("web", 3*time.Second)).GetIndex()
	e := nextWeb()
	if e.Index != final || e.Server != b.addr {
		t.Errorf("after failover: index %d from %s, want the final %d from %s", e.Index, e.Server, final, b.addr)
	}
	// api's first version may still be on its way (from a before it
	// stopped, or from b after the resume): wait for it, web must stay.
	testutil.Poll(t, 10*time.Second, "Last() to hold web at the final index and api", func() bool {
		last := client.Last()
		return last[0].Index == final && last[1].Hash != ""
	})
}

// TestChainWatchClientResumesFromSavedState: a client seeded with the
// version it already holds receives nothing for that chain until it
// changes; a client seeded with an index no server will ever reach (a
// restored cluster, state from another cluster) starts over after every
// server refused it behindRounds times, instead of retrying forever.
func TestChainWatchClientResumesFromSavedState(t *testing.T) { //nolint:tparallel // the subtests share node a: the first one's write would race the second one's Last() check
	t.Parallel()
	cl := newESCluster()
	a := startChainNode(t, "a", cl, chNodeOpts{leader: true, chainCfg: func(c *ChainServerConfig) {
		c.Watcher.ResumeWait = 50 * time.Millisecond
	}})
	put(t, a.client, chResolver("web", time.Second))
	w := openWatch(t, a)
	w.subscribe(1, ref("web"), 0, "")
	w.expectSubscribed(1)
	have := w.expectUpdate(1)

	run := func(t *testing.T, seed api.ChainEvent) (*api.ChainWatchClient, chan api.ChainEvent) {
		t.Helper()
		return runWatchClient(t, []string{a.addr}, func(c *api.ChainWatchClient) {
			if !c.SetLast(seed) {
				t.Fatalf("SetLast(%+v) = false", seed)
			}
		})
	}
	next := func(t *testing.T, events chan api.ChainEvent, service string) api.ChainEvent {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case e := <-events:
				if e.Service == service {
					return e
				}
			case <-timeout:
				t.Fatalf("no %s event", service)
				return api.ChainEvent{}
			}
		}
	}

	t.Run("unchanged chain sends nothing", func(t *testing.T) {
		_, events := run(t, api.ChainEvent{Service: "web", Index: have.GetIndex(), Hash: have.GetHash()})
		if e := next(t, events, "api"); e.Hash == "" {
			t.Errorf("api event without a hash: %+v", e)
		}
		marker := put(t, a.client, chResolver("web", 2*time.Second)).GetIndex()
		if e := next(t, events, "web"); e.Index != marker {
			t.Errorf("first web event at index %d, want the change at %d: the saved version was sent again", e.Index, marker)
		}
	})
	t.Run("index no server reaches", func(t *testing.T) {
		client, events := run(t, api.ChainEvent{Service: "web", Index: have.GetIndex() + 1000, Hash: "from-another-cluster"})
		e := next(t, events, "web")
		if e.Index > have.GetIndex()+100 || e.Hash == "from-another-cluster" {
			t.Errorf("web event %+v, want the server's current version", e)
		}
		if last := client.Last(); last[0].Hash != e.Hash {
			t.Errorf("Last()[0] = %+v, want the received version", last[0])
		}
	})
	if (&api.ChainWatchClient{}).SetLast(api.ChainEvent{Service: "web"}) {
		t.Error("SetLast accepted an event without index and hash")
	}
}

// runWatchClient runs a api.ChainWatchClient for web and api against addrs
// (short backoff) until the test ends; prepare, if set, runs before Run.
// Every event received goes to the returned channel.
func runWatchClient(t *testing.T, addrs []string, prepare func(*api.ChainWatchClient)) (*api.ChainWatchClient, chan api.ChainEvent) {
	t.Helper()
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = addrs
	cfg.Chains = []api.WatchedChain{{Service: "web"}, {Service: "api"}}
	cfg.MinBackoff, cfg.MaxBackoff = 5*time.Millisecond, 50*time.Millisecond
	client, err := api.NewChainWatchClient(cfg, nil)
	if err != nil {
		t.Fatalf("api.NewChainWatchClient: %v", err)
	}
	if prepare != nil {
		prepare(client)
	}
	events := make(chan api.ChainEvent, 100)
	ctx, cancel := context.WithCancel(testCtx(t))
	done := make(chan error, 1)
	go func() { done <- client.Run(ctx, func(e api.ChainEvent) { events <- e }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return client, events
}
