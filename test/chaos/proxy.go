package chaos

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Dir selects which byte direction of a proxied link a fault applies to.
// Up is dialer -> target (the requests of the side that dialed), Down is
// target -> dialer (its responses).
type Dir uint8

// Directions of a proxied connection.
const (
	Up   Dir = 1 << iota // dialer -> target
	Down                 // target -> dialer
	Both = Up | Down
)

// String implements fmt.Stringer.
func (d Dir) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both"
	}
	return fmt.Sprintf("Dir(%d)", uint8(d))
}

const (
	// chunkSize is the largest read the proxy forwards as one unit; delay
	// applies per chunk.
	chunkSize = 32 << 10
	// queueChunks bounds the bytes a paused direction holds per connection
	// (queueChunks x chunkSize); beyond that the proxy stops reading and TCP
	// flow control pushes back on the sender, as a real partition does.
	queueChunks = 64
)

// Proxy forwards TCP connections accepted on its listener to one target
// address: one Proxy is one directed link (the side that dials -> the side
// that listens). Faults are switches that apply to the live connections and
// to the ones accepted later:
//
//   - Pause(dir): stop forwarding in dir and hold the bytes (up to a bound,
//     then stop reading); Heal delivers them. This is what a partition looks
//     like to TCP: nothing is lost, nothing arrives.
//   - Blackhole: reset every live connection and refuse new ones (accept then
//     reset) until Heal; bytes in flight are dropped.
//   - SetDelay(dir, fixed, jitter): every chunk is delivered no earlier than
//     fixed + U[0, jitter) after the proxy read it; order is kept.
//   - Reset: close every live connection with RST once; new ones work.
//   - Heal: clear pause, blackhole and delay.
//
// The zero value is not usable; create one with NewProxy.
type Proxy struct {
	ln     net.Listener
	target string

	// mu protects every field below it. Lock order: Proxy.mu before
	// proxyConn.mu is never needed (connections read the proxy state through
	// snapshot()).
	mu        sync.Mutex
	paused    Dir
	blackhole bool
	delay     [2]time.Duration // indexed by dirIndex
	jitter    [2]time.Duration
	changed   chan struct{} // closed and replaced on every state change
	conns     map[*proxyConn]struct{}
	closed    bool
	accepted  int
	refused   int
	rng       *rand.Rand

	wg sync.WaitGroup // accept loop and every connection's pumps
}

// ProxyStats counts connections since the proxy started.
type ProxyStats struct {
	Accepted, Refused, Live int
}

// NewProxy listens on listenAddr (use "127.0.0.1:0") and forwards to target.
// It starts the accept loop; Close stops it and joins every goroutine.
func NewProxy(listenAddr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for proxy to %s: %w", target, err)
	}
	p := &Proxy{
		ln:      ln,
		target:  target,
		changed: make(chan struct{}),
		conns:   make(map[*proxyConn]struct{}),
		rng:     rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15)),
	}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the dialer should use instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Stats returns connection counters.
func (p *Proxy) Stats() ProxyStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProxyStats{Accepted: p.accepted, Refused: p.refused, Live: len(p.conns)}
}

// Pause stops forwarding in dir (bytes are held) until Heal or Resume.
func (p *Proxy) Pause(dir Dir) {
	p.update(func() { p.paused |= dir })
}

// Resume undoes Pause for dir only.
func (p *Proxy) Resume(dir Dir) {
	p.update(func() { p.paused &^= dir })
}

// Blackhole resets every live connection and refuses new ones until Heal.
func (p *Proxy) Blackhole() {
	p.update(func() { p.blackhole = true })
	p.Reset()
}

// SetDelay delays every chunk in dir by fixed plus a uniform jitter in
// [0, jitter). Zero values remove the delay.
func (p *Proxy) SetDelay(dir Dir, fixed, jitter time.Duration) {
	p.update(func() {
		for _, d := range []Dir{Up, Down} {
			if dir&d != 0 {
				p.delay[dirIndex(d)] = fixed
				p.jitter[dirIndex(d)] = jitter
			}
		}
	})
}

// Reset closes every live connection with an RST (both sides see a reset).
func (p *Proxy) Reset() {
	p.mu.Lock()
	conns := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		c.abort()
	}
}

// Heal clears every fault: pause, blackhole and delay. Held bytes are
// delivered.
func (p *Proxy) Heal() {
	p.update(func() {
		p.paused = 0
		p.blackhole = false
		p.delay = [2]time.Duration{}
		p.jitter = [2]time.Duration{}
	})
}

// Close stops accepting, resets every connection and joins all goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrProxyClosed
	}
	p.closed = true
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	err := p.ln.Close()
	p.Reset()
	p.wg.Wait()
	if err != nil {
		return fmt.Errorf("close proxy listener: %w", err)
	}
	return nil
}

// update applies fn under the lock and wakes every pump.
func (p *Proxy) update(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fn()
	close(p.changed)
	p.changed = make(chan struct{})
}

// linkState is a snapshot of one direction's fault settings.
type linkState struct {
	paused  bool
	closed  bool
	delay   time.Duration
	changed <-chan struct{}
}

func (p *Proxy) snapshot(d Dir) linkState {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := dirIndex(d)
	delay := p.delay[i]
	if j := p.jitter[i]; j > 0 {
		delay += time.Duration(p.rng.Int64N(int64(j)))
	}
	return linkState{
		paused:  p.paused&d != 0 || p.blackhole,
		closed:  p.closed,
		delay:   delay,
		changed: p.changed,
	}
}

func dirIndex(d Dir) int {
	if d == Down {
		return 1
	}
	return 0
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.mu.Lock()
		if p.closed || p.blackhole {
			p.refused++
			p.mu.Unlock()
			resetConn(in)
			continue
		}
		p.accepted++
		c := &proxyConn{p: p, in: in, done: make(chan struct{})}
		p.conns[c] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go c.run()
	}
}

// proxyConn is one accepted connection and its upstream connection. run
// owns it: it dials the target, starts the four pump goroutines and waits
// for them.
type proxyConn struct {
	p    *Proxy
	in   net.Conn
	done chan struct{} // closed by abort or when a side ends

	mu      sync.Mutex // protects out and aborted
	out     net.Conn
	aborted bool
	once    sync.Once
}

func (c *proxyConn) run() {
	defer c.p.wg.Done()
	defer func() {
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	}()
	d := net.Dialer{Timeout: 5 * time.Second}
	out, err := d.Dial("tcp", c.p.target)
	if err != nil {
		resetConn(c.in)
		return
	}
	c.mu.Lock()
	if c.aborted {
		c.mu.Unlock()
		resetConn(out)
		resetConn(c.in)
		return
	}
	c.out = out
	c.mu.Unlock()

	var wg sync.WaitGroup
	c.pipe(&wg, c.in, out, Up)
	c.pipe(&wg, out, c.in, Down)
	wg.Wait()
	resetConn(c.in)
	resetConn(out)
}

// abort resets both sides; the pumps then fail and run returns.
func (c *proxyConn) abort() {
	c.once.Do(func() { close(c.done) })
	c.mu.Lock()
	c.aborted = true
	out := c.out
	c.mu.Unlock()
	resetConn(c.in)
	if out != nil {
		resetConn(out)
	}
}

type chunk struct {
	data []byte
	at   time.Time
}

// pipe starts a reader (src -> queue) and a writer (queue -> dst) for one
// direction. When the reader sees EOF it closes the queue, and the writer
// half-closes dst after flushing, so a clean close travels through; errors
// abort the whole connection.
func (c *proxyConn) pipe(wg *sync.WaitGroup, src, dst net.Conn, dir Dir) {
	q := make(chan chunk, queueChunks)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(q)
		for {
			buf := make([]byte, chunkSize)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case q <- chunk{data: buf[:n], at: time.Now()}:
				case <-c.done:
					return
				}
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					c.abort()
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for ch := range q {
			if !c.wait(dir, ch.at) {
				return
			}
			if _, err := dst.Write(ch.data); err != nil {
				c.abort()
				return
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
}

// wait blocks until a chunk read at 'at' may be delivered in dir: the
// direction is not paused and its delay has passed. It returns false when
// the connection is aborted or the proxy closed.
func (c *proxyConn) wait(dir Dir, at time.Time) bool {
	for {
		st := c.p.snapshot(dir)
		if st.closed {
			return false
		}
		if st.paused {
			select {
			case <-st.changed:
				continue
			case <-c.done:
				return false
			}
		}
		wait := time.Until(at.Add(st.delay))
		if wait <= 0 {
			return true
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			// Re-check: the link may have been paused while we waited.
			// The jitter is re-drawn, which can only shorten or lengthen
			// the wait within [fixed, fixed+jitter).
			st2 := c.p.snapshot(dir)
			if !st2.paused && !st2.closed {
				return true
			}
		case <-st.changed:
			t.Stop()
		case <-c.done:
			t.Stop()
			return false
		}
	}
}

// resetConn closes a TCP connection with SO_LINGER 0, so the peer sees an
// RST rather than an orderly FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
