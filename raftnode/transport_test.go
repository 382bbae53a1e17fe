package raftnode

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/testutil"
)

// linkProxy forwards every accepted TCP connection to target and counts
// them: a stand-in for the fault suite's per-link proxy.
type linkProxy struct {
	ln       net.Listener
	target   string
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex // protects conns
	conns    []net.Conn
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &linkProxy{ln: ln, target: target}
	p.wg.Go(p.serve)
	t.Cleanup(p.close)
	return p
}

func (p *linkProxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(out, in); _ = out.Close() })
		p.wg.Go(func() { _, _ = io.Copy(in, out); _ = in.Close() })
	}
}

func (p *linkProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func TestDialOverrideRoutesEveryLinkThroughProxies(t *testing.T) {
	// Node addresses are only known once they listen, so the override looks
	// the proxy up in a map filled in before bootstrap.
	var mu sync.Mutex
	proxies := map[string]*linkProxy{} // real raft address -> its proxy
	var dials, misses atomic.Int64
	override := func(addr string) string {
		dials.Add(1)
		mu.Lock()
		defer mu.Unlock()
		p, ok := proxies[addr]
		if !ok {
			misses.Add(1)
			return ""
		}
		return p.ln.Addr().String()
	}

	c := &testCluster{tb: t}
	for _, id := range []string{"n1", "n2", "n3"} {
		cfg := testConfig(t, id)
		cfg.DialOverride = override
		tn := c.startNode(cfg, testHooks{})
		c.nodes = append(c.nodes, tn)
		mu.Lock()
		proxies[tn.node.Addr()] = newLinkProxy(t, tn.node.Addr())
		mu.Unlock()
	}
	for _, tn := range c.nodes {
		if err := tn.node.BootstrapCluster(c.servers()); err != nil {
			t.Fatalf("BootstrapCluster: %v", err)
		}
	}
	c.waitReadyLeader()
	idx := c.apply("through", "proxy")
	c.waitConverged(idx)

	if dials.Load() == 0 || misses.Load() != 0 {
		t.Errorf("override called %d times with %d unknown addresses, want > 0 and 0", dials.Load(), misses.Load())
	}
	// The leader dials every follower, through the follower's proxy.
	l := c.waitReadyLeader()
	fs := c.followers(l)
	for _, f := range fs {
		if n := proxies[f.node.Addr()].accepted.Load(); n == 0 {
			t.Errorf("proxy in front of follower %s accepted no connections", f.cfg.NodeID)
		}
	}

	// Cutting one follower's proxy cuts it off: nothing bypasses the proxy.
	cut, other := fs[0], fs[1]
	proxies[cut.node.Addr()].close()
	last := c.apply("after", "cut")
	testutil.Poll(t, waitTimeout, "the connected follower to apply the write", func() bool {
		return other.fsm.appliedIndex() >= last
	})
	if got := cut.fsm.appliedIndex(); got >= last {
		t.Errorf("follower behind a closed proxy applied %d >= %d", got, last)
	}
}

func TestStreamLayer(t *testing.T) {
	t.Run("unspecified bind without advertise is rejected", func(t *testing.T) {
		if _, err := newStreamLayer("0.0.0.0:0", "", nil, nil); !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("newStreamLayer(0.0.0.0:0, \"\") = %v, want ErrInvalidConfig", err)
		}
	})
	t.Run("advertise address is reported", func(t *testing.T) {
		s, err := newStreamLayer("127.0.0.1:0", "127.0.0.2:7000", nil, nil)
		if err != nil {
			t.Fatalf("newStreamLayer: %v", err)
		}
		defer func() { _ = s.Close() }()
		if got := s.Addr().String(); got != "127.0.0.2:7000" {
			t.Errorf("Addr() = %s, want 127.0.0.2:7000", got)
		}
	})
	t.Run("dial goes to the override and falls back on empty", func(t *testing.T) {
		target, err := newStreamLayer("127.0.0.1:0", "", nil, nil)
		if err != nil {
			t.Fatalf("newStreamLayer: %v", err)
		}
		defer func() { _ = target.Close() }()
		accepted := make(chan struct{}, 2)
		go func() {
			for {
				conn, err := target.Accept()
				if err != nil {
					return
				}
				_ = conn.Close()
				accepted <- struct{}{}
			}
		}()
		var asked []string
		s, err := newStreamLayer("127.0.0.1:0", "", func(addr string) string {
			asked = append(asked, addr)
			if addr == "peer-a:1" {
				return target.Addr().String()
			}
			return ""
		}, nil)
		if err != nil {
			t.Fatalf("newStreamLayer: %v", err)
		}
		defer func() { _ = s.Close() }()
		conn, err := s.Dial("peer-a:1", time.Second)
		if err != nil {
			t.Fatalf("Dial through override: %v", err)
		}
		_ = conn.Close()
		<-accepted
		conn, err = s.Dial(raft.ServerAddress(target.Addr().String()), time.Second)
		if err != nil {
			t.Fatalf("Dial without override: %v", err)
		}
		_ = conn.Close()
		<-accepted
		if len(asked) != 2 || asked[0] != "peer-a:1" {
			t.Errorf("override asked for %v, want [peer-a:1 <target>]", asked)
		}
	})
}
