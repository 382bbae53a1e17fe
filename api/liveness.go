package api

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Frozen servers (issue: a paused leader kept its clients waiting for
// 20 s). A process stopped with SIGSTOP, or stuck, keeps its TCP
// connections open (the kernel still acknowledges bytes), so nothing fails:
// calls just wait for their deadline. gRPC keepalives would notice, but
// gRPC-Go never pings more often than every 10 s. So the client probes: a
// call still running after ProbeAfter triggers one OperatorService.Status
// call to the same server (pick_first keeps a single connection); when it
// does not come back within ProbeTimeout, that server is suspended from
// the address list for suspendFor (pick_first then moves to the next
// address) and every attempt in flight is cancelled: a read is sent again,
// through the next server, within the caller's deadline; a write returns
// Unavailable, its outcome unknown (storectl retries only plain, idempotent
// writes). Probes back off to maxProbeGap while one long call (a blocking
// query) keeps running on a healthy server. A watch stream is probed after
// each ProbeAfter with nothing received (streamProber; with a WatchPing on
// the stream itself when the server accepts it) and dropped with
// ErrServerFrozen; the watch client then moves to the next address.

// statusMethod is the probe; its own calls are never probed.
const statusMethod = "/chainstore.v1.OperatorService/Status"

// suspendFor is how long a frozen server stays out of the address list; it
// then comes back last in the order.
const suspendFor = 30 * time.Second

// errProbeTimeout marks a probe that got no answer.
var errProbeTimeout = errors.New("probe timed out")

// addrList is a Client's address list as given to its manual resolver,
// minus the servers currently taken for frozen.
type addrList struct {
	r     *manual.Resolver
	addrs []string

	mu        sync.Mutex           // protects suspended, timers, closed
	suspended map[string]time.Time // address -> when it comes back
	timers    []*time.Timer        // restores, stopped by close
	closed    bool
}

func newAddrList(r *manual.Resolver, addrs []string) *addrList {
	return &addrList{r: r, addrs: addrs, suspended: map[string]time.Time{}}
}

func (l *addrList) initial() resolver.State { return l.stateLocked() }

// stateLocked is the addresses not suspended, in the given order, then (if
// every one is suspended) all of them.
func (l *addrList) stateLocked() resolver.State {
	var live []resolver.Address
	for _, a := range l.addrs {
		if _, ok := l.suspended[a]; !ok {
			live = append(live, resolver.Address{Addr: a})
		}
	}
	if len(live) == 0 {
		for _, a := range l.addrs {
			live = append(live, resolver.Address{Addr: a})
		}
	}
	return resolver.State{Addresses: live}
}

// suspend takes the configured address that peerAddr (a remote IP:port)
// belongs to out of the list for suspendFor; then it comes back, last. A
// list of one address is left alone. It reports whether peerAddr is now
// suspended.
func (l *addrList) suspend(ctx context.Context, peerAddr string) bool {
	addr := l.match(ctx, peerAddr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr == "" || l.closed || len(l.addrs) < 2 {
		return false
	}
	if _, ok := l.suspended[addr]; ok {
		return true
	}
	l.suspended[addr] = time.Now().Add(suspendFor)
	l.r.UpdateState(l.stateLocked())
	l.timers = append(l.timers, time.AfterFunc(suspendFor, func() { l.restore(addr) }))
	return true
}

// match returns the configured address that peerAddr is, resolving host
// names, or "".
func (l *addrList) match(ctx context.Context, peerAddr string) string {
	pHost, pPort, err := net.SplitHostPort(peerAddr)
	if err != nil {
		return ""
	}
	l.mu.Lock()
	addrs := slices.Clone(l.addrs)
	l.mu.Unlock()
	for _, a := range addrs {
		if a == peerAddr {
			return a
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for _, a := range addrs {
		host, port, err := net.SplitHostPort(a)
		if err != nil || port != pPort {
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			continue
		}
		if slices.Contains(ips, pHost) {
			return a
		}
	}
	return ""
}

// restore puts addr back at the end of the order.
func (l *addrList) restore(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	delete(l.suspended, addr)
	order := make([]string, 0, len(l.addrs))
	for _, a := range l.addrs {
		if a != addr {
			order = append(order, a)
		}
	}
	l.addrs = append(order, addr)
	l.r.UpdateState(l.stateLocked())
}

func (l *addrList) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for _, t := range l.timers {
		t.Stop()
	}
}

// probe calls Status on conn with timeout. It returns the address the
// probe went to and errProbeTimeout when that server did not answer in
// time (a refusal or any other answer means it is alive).
func probe(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var p peer.Peer
	_, err := chainstorev1.NewOperatorServiceClient(conn).Status(ctx, &chainstorev1.StatusRequest{}, grpc.Peer(&p))
	addr := ""
	if p.Addr != nil {
		addr = p.Addr.String()
	}
	if status.Code(err) == codes.DeadlineExceeded && ctx.Err() != nil {
		return addr, errProbeTimeout
	}
	return addr, nil
}

// watchdog probes the server of every unary call still running after
// after (see the comment at the top of the file). At most one probe runs
// at a time per client; when one finds the server frozen, every attempt in
// flight (all on that server's connection: pick_first uses one) is
// abandoned.
type watchdog struct {
	after, timeout time.Duration
	list           *addrList
	busy           atomic.Bool // a probe is running

	mu       sync.Mutex // protects inflight
	inflight map[*attempt]struct{}
}

// attempt is one unary call attempt in flight.
type attempt struct {
	cancel context.CancelFunc
	frozen atomic.Pointer[string] // set when abandoned: the frozen server
}

func newWatchdog(after, timeout time.Duration, list *addrList) *watchdog {
	return &watchdog{after: after, timeout: timeout, list: list, inflight: map[*attempt]struct{}{}}
}

func (w *watchdog) interceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if w.after <= 0 || method == statusMethod {
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	for try := 0; ; try++ {
		frozen, err := w.invoke(ctx, method, req, reply, cc, invoker, opts...)
		if frozen == "" {
			return err
		}
		if !readMethods[method] || ctx.Err() != nil || try >= 2 {
			return status.Errorf(codes.Unavailable,
				"server %s did not answer a probe within %s (frozen?); moved to the next server; a write may or may not have been applied", frozen, w.timeout)
		}
	}
}

// invoke runs one attempt. When its server is found frozen the attempt is
// cancelled and invoke returns that server's address.
func (w *watchdog) invoke(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) (string, error) {
	callCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	a := &attempt{cancel: cancel}
	w.mu.Lock()
	w.inflight[a] = struct{}{}
	w.mu.Unlock()
	done := make(chan struct{})
	// The timer's goroutine ends when the attempt does (it checks done
	// between probes, each bounded by w.timeout).
	// The probes do not stop with the call's context: a cancelled call
	// still leaves its server's answer worth knowing; each is bounded by
	// w.timeout.
	probeCtx := context.WithoutCancel(ctx)
	t := time.AfterFunc(w.after, func() { w.watch(probeCtx, cc, done) })
	err := invoker(callCtx, method, req, reply, cc, opts...)
	close(done)
	t.Stop()
	w.mu.Lock()
	delete(w.inflight, a)
	w.mu.Unlock()
	if f := a.frozen.Load(); f != nil && ctx.Err() == nil {
		return *f, err
	}
	return "", err
}

// readMethods are the calls that only read: an attempt abandoned on a
// frozen server is sent again (the others return Unavailable).
var readMethods = map[string]bool{
	"/chainstore.v1.EntriesService/Get":       true,
	"/chainstore.v1.EntriesService/List":      true,
	"/chainstore.v1.OperatorService/Members":  true,
	"/chainstore.v1.OperatorService/Peers":    true,
	"/chainstore.v1.OperatorService/Status":   true,
	"/chainstore.v1.CatalogService/Instances": true,
	"/chainstore.v1.CatalogService/Services":  true,
	"/chainstore.v1.ChainService/GetChain":    true,
}

// maxProbeGap bounds the back-off between probes of one long call (a
// blocking query may legitimately wait minutes).
const maxProbeGap = 8 * time.Second

// watch probes (unless another attempt's watch is probing) until the
// attempt ends or a probe finds the server frozen: after w.after, then at
// doubling gaps up to maxProbeGap.
func (w *watchdog) watch(ctx context.Context, cc *grpc.ClientConn, done <-chan struct{}) {
	gap := w.after
	for {
		if w.busy.CompareAndSwap(false, true) {
			addr, err := probe(ctx, cc, w.timeout)
			w.busy.Store(false)
			if errors.Is(err, errProbeTimeout) && addr != "" {
				w.abandon(ctx, addr)
				return
			}
		}
		t := time.NewTimer(gap)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C:
		}
		gap = min(2*gap, max(maxProbeGap, w.after))
	}
}

// ErrServerFrozen is the cause of a watch stream the client dropped
// because its server did not answer a probe (see above).
var ErrServerFrozen = errors.New("server did not answer a probe in time (frozen?)")

// streamProber probes a watch stream's server every after while nothing
// arrives on the stream (touch records arrivals) and calls frozen once a
// probe gets no answer. Once the server has said it accepts pings
// (pingable, from its progress messages) a probe is a WatchPing on the
// stream itself, answered by a progress message: for the server that is
// one small message each way instead of a unary Status call, which with
// thousands of idle agents was most of an idle server's CPU (issue 12).
// Older servers get the Status call. run is the prober's goroutine; it
// returns when ctx is done or after calling frozen.
type streamProber struct {
	conn           *grpc.ClientConn
	after, timeout time.Duration
	last           atomic.Int64 // unix nanos of the last arrival
	// ping sends a WatchPing on the stream (nil: never ping).
	ping     func() error
	pingable atomic.Bool
	arrived  chan struct{} // poked by touch; buffered 1
}

func newStreamProber(conn *grpc.ClientConn, after, timeout time.Duration, ping func() error) *streamProber {
	return &streamProber{conn: conn, after: after, timeout: timeout, ping: ping, arrived: make(chan struct{}, 1)}
}

func (p *streamProber) touch() {
	p.last.Store(time.Now().UnixNano())
	select {
	case p.arrived <- struct{}{}:
	default:
	}
}

func (p *streamProber) run(ctx context.Context, frozen func()) {
	p.touch()
	tick := time.NewTicker(p.after / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if time.Since(time.Unix(0, p.last.Load())) < p.after {
			continue
		}
		alive := true
		if p.ping != nil && p.pingable.Load() {
			alive = p.pingProbe(ctx)
		} else if _, err := probe(ctx, p.conn, p.timeout); errors.Is(err, errProbeTimeout) {
			alive = false
		}
		if !alive && ctx.Err() == nil {
			frozen()
			return
		}
		p.touch()
	}
}

// pingProbe sends a WatchPing and reports whether anything arrived within
// the timeout. A failed send means the stream is ending, which the
// stream's reader reports; that is not a frozen server.
func (p *streamProber) pingProbe(ctx context.Context) bool {
	select {
	case <-p.arrived:
	default:
	}
	if err := p.ping(); err != nil {
		return true
	}
	t := time.NewTimer(p.timeout)
	defer t.Stop()
	select {
	case <-p.arrived:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return true
	}
}

// abandon suspends the frozen server and cancels every attempt in flight.
// With a single address there is nowhere to go: the calls keep waiting for
// their deadline.
func (w *watchdog) abandon(ctx context.Context, addr string) {
	if !w.list.suspend(ctx, addr) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for a := range w.inflight {
		a.frozen.Store(&addr)
		a.cancel()
	}
}
