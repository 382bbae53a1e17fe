package api_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// freezeBound is how long a client may stay on a frozen server before its
// call has gone through another one (issue 14, item 4: clients timed out
// every 5 s for the whole 20 s pause). Keepalives notice the freeze in
// about 2 s; the rest is slack for -race on a loaded machine.
const freezeBound = 6 * time.Second

// TestClientMovesOffAFrozenServer: the server a client uses stops answering
// (as under SIGSTOP: connections stay open, nothing comes back). A read
// with a freezeBound deadline succeeds through the other server.
func TestClientMovesOffAFrozenServer(t *testing.T) {
	t.Parallel()
	a, b := servertest.StartSingle(t), servertest.StartSingle(t)
	doc := servertest.Resolver("web", 5*time.Second)
	a.Put(doc)
	b.Put(doc)
	proxy := servertest.NewFreezeProxy(t, a.Addr())
	cl := servertest.NewClient(t, proxy.Addr(), b.Addr())
	get := func(timeout time.Duration) (*chainstorev1.GetResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return cl.Get(ctx, &chainstorev1.GetRequest{Kind: "service-resolver", Name: "web"})
	}
	first, err := get(5 * time.Second)
	if err != nil || first.GetMeta().GetServedBy() == "" {
		t.Fatalf("Get before the freeze = %v, %v", first, err)
	}
	proxy.Freeze()
	start := time.Now()
	resp, err := get(freezeBound)
	if err != nil {
		t.Fatalf("Get with a frozen first server = %v after %s, want an answer from the other server", err, time.Since(start))
	}
	if resp.GetMeta().GetServedBy() == first.GetMeta().GetServedBy() {
		t.Errorf("answer served by %s, the frozen server", resp.GetMeta().GetServedBy())
	}
	t.Logf("moved to %s in %s", resp.GetMeta().GetServedBy(), time.Since(start).Round(10*time.Millisecond))
}

// TestWatchMovesOffAFrozenServer: the same for a chain watch: the next
// version written reaches the client through the other server.
func TestWatchMovesOffAFrozenServer(t *testing.T) {
	t.Parallel()
	a, b := servertest.StartSingle(t), servertest.StartSingle(t)
	doc := servertest.Resolver("web", 5*time.Second)
	a.Put(doc)
	b.Put(doc)
	proxy := servertest.NewFreezeProxy(t, a.Addr())
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = []string{proxy.Addr(), b.Addr()}
	cfg.Chains = []api.WatchedChain{{Service: "web"}}
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	w, err := api.NewChainWatchClient(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan api.ChainEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e api.ChainEvent) { events <- e }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	first := <-events
	if first.Server != proxy.Addr() {
		t.Fatalf("first event from %s, want the first address %s", first.Server, proxy.Addr())
	}
	proxy.Freeze()
	next := b.Put(servertest.Resolver("web", 6*time.Second))
	var got api.ChainEvent
	testutil.Poll(t, freezeBound, "the new version through the other server", func() bool {
		select {
		case got = <-events:
		default:
		}
		return got.Index == next
	})
	if got.Server != b.Addr() {
		t.Errorf("new version from %s, want %s", got.Server, b.Addr())
	}
}

// syncWriter is a strings.Builder safe for concurrent use, for logs.
type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestWatchReportsLostQuorum is issue 14, item 3: two of three servers are
// lost; the survivor's stream used to go silent. Now the client says "no
// leader: ..." within seconds, marks its chains stale (keeping them), and
// once quorum is back its status turns fresh again.
func TestWatchReportsLostQuorum(t *testing.T) {
	t.Parallel()
	c := servertest.NewCluster(t, 3, nil)
	leader := c.Leader()
	if _, err := c.Client(leader).Apply(context.Background(), &chainstorev1.ApplyRequest{Entry: []byte(servertest.Resolver("web", 5*time.Second))}); err != nil {
		t.Fatal(err)
	}
	followers := c.Followers()
	survivor, lost := followers[0], []*servertest.Node{leader, followers[1]}
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = []string{survivor.GRPCAddr(), lost[0].GRPCAddr(), lost[1].GRPCAddr()}
	cfg.Chains = []api.WatchedChain{{Service: "web"}}
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 200*time.Millisecond
	var logs syncWriter
	w, err := api.NewChainWatchClient(cfg, hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan api.ChainEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e api.ChainEvent) { events <- e }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if first := <-events; first.Server != survivor.GRPCAddr() {
		t.Fatalf("first event from %s, want the survivor %s", first.Server, survivor.GRPCAddr())
	}
	testutil.Poll(t, 10*time.Second, "a fresh status from the survivor", func() bool { return !w.Status().Stale && w.Status().Server != "" })

	start := time.Now()
	for _, nd := range lost {
		c.Crash(nd)
	}
	testutil.Poll(t, 15*time.Second, `a stale status and "no leader:" in the log`, func() bool {
		return w.Status().Stale && strings.Contains(logs.String(), "no leader:")
	})
	st := w.Status()
	t.Logf("stale after %s: %s", time.Since(start).Round(100*time.Millisecond), st.Reason)
	if !strings.Contains(st.Reason, "no leader") {
		t.Errorf("status reason %q, want it to say no leader", st.Reason)
	}
	if last := w.Last(); len(last) != 1 || last[0].Hash == "" {
		t.Errorf("Last() = %+v, want the chain still held", last)
	}
}

// TestIdleWatchProbesWithoutStatusCalls: a watch client whose server
// accepts pings probes its idle stream with them and makes no Status
// call at all (each was a unary call per idle agent per ProbeAfter).
func TestIdleWatchProbesWithoutStatusCalls(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t)
	s.Put(servertest.Resolver("web", 5*time.Second))
	cfg := api.DefaultChainWatchConfig()
	cfg.Addrs = []string{s.Addr()}
	cfg.Chains = []api.WatchedChain{{Service: "web"}}
	cfg.ProbeAfter, cfg.ProbeTimeout = 50*time.Millisecond, 5*time.Second
	w, err := api.NewChainWatchClient(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan api.ChainEvent, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, func(e api.ChainEvent) { events <- e }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-events
	// The first progress message (it says accepts_ping) sets the status's
	// server; until then the client probes with Status.
	testutil.Poll(t, freezeBound, "the first progress message", func() bool { return w.Status().Server != "" })
	before := statusCalls(t, s.HTTPAddr())
	// About 25 probe periods of an idle stream.
	<-time.After(25 * cfg.ProbeAfter)
	if st := w.Status(); st.Stale {
		t.Fatalf("watch status after idling = %+v, want current (every ping answered)", st)
	}
	// At most one: a Status probe started before the first progress
	// message arrived may finish inside the window. Without pings there
	// are about 25.
	if got := statusCalls(t, s.HTTPAddr()) - before; got > 1 {
		t.Fatalf("server got %d Status calls from an idle watch client, want at most 1 (probes are pings on the stream)", got)
	}
	// The stream itself carried the probes: the same first stream is
	// still up, and a new version arrives on it.
	next := s.Put(servertest.Resolver("web", 6*time.Second))
	var got api.ChainEvent
	testutil.Poll(t, freezeBound, "the next version on the probed stream", func() bool {
		select {
		case got = <-events:
		default:
		}
		return got.Index == next
	})
}

// statusCalls reads the server's count of OperatorService.Status calls
// from its metrics.
func statusCalls(t *testing.T, httpAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/v1/agent/metrics?format=prometheus")
	if err != nil {
		t.Fatalf("scrape metrics: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read metrics: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "chainstore_rpc_request_duration_seconds_count{") && strings.Contains(line, `"/chainstore.v1.OperatorService/Status"`) {
			f := strings.Fields(line)
			v, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			n += v
		}
	}
	return n
}
