package servertest

import (
	"net"
	"sync"
	"testing"
	"time"
)

// FreezeProxy is a TCP proxy in front of one server that can freeze: stop
// moving bytes both ways while keeping every connection open and accepting
// new ones (which then hear nothing), as a server process stopped with
// SIGSTOP looks to its clients (the kernel still completes TCP handshakes).
type FreezeProxy struct {
	target string
	lis    net.Listener
	wg     sync.WaitGroup // accept loop and pipes

	mu     sync.Mutex    // protects frozen, thaw and conns
	frozen bool          // true between Freeze and Thaw
	thaw   chan struct{} // closed by Thaw (and Close): frozen pipes resume
	conns  map[net.Conn]struct{}
	closed bool
}

// NewFreezeProxy starts a proxy to target, closed at the end of the test.
func NewFreezeProxy(tb testing.TB, target string) *FreezeProxy {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("freeze proxy: %v", err)
	}
	p := &FreezeProxy{target: target, lis: lis, thaw: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	tb.Cleanup(p.Close)
	return p
}

// Addr is the proxy's address, for clients.
func (p *FreezeProxy) Addr() string { return p.lis.Addr().String() }

// Freeze stops forwarding.
func (p *FreezeProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.frozen {
		p.frozen, p.thaw = true, make(chan struct{})
	}
}

// Thaw resumes forwarding.
func (p *FreezeProxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen {
		p.frozen = false
		close(p.thaw)
	}
}

// Close closes the listener and every connection and waits for the
// proxy's goroutines.
func (p *FreezeProxy) Close() {
	_ = p.lis.Close()
	p.Thaw()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// wait blocks while the proxy is frozen; false once it is closed.
func (p *FreezeProxy) wait() bool {
	p.mu.Lock()
	frozen, thaw, closed := p.frozen, p.thaw, p.closed
	p.mu.Unlock()
	if frozen {
		<-thaw
	}
	return !closed
}

func (p *FreezeProxy) acceptLoop() {
	defer p.wg.Done()
	for {
		down, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(down)
	}
}

// serve dials the target once not frozen and pipes both ways.
func (p *FreezeProxy) serve(down net.Conn) {
	defer p.wg.Done()
	if !p.track(down) || !p.wait() {
		_ = down.Close()
		return
	}
	up, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil || !p.track(up) {
		_ = down.Close()
		return
	}
	p.wg.Add(2)
	go p.pipe(down, up)
	go p.pipe(up, down)
}

func (p *FreezeProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// pipe copies src to dst, pausing (without reading) while frozen.
func (p *FreezeProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		_ = dst.Close()
		_ = src.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		if !p.wait() {
			return
		}
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
