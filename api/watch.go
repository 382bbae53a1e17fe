package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/types/known/durationpb"

	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
)

// Errors of the chain watch client.
var (
	// ErrWatchIdle: nothing, not even a progress message, arrived on a
	// watch stream for ChainWatchConfig.IdleTimeout; the server may be
	// stuck or partitioned, so the client moves to the next one.
	ErrWatchIdle = errors.New("watch stream idle")
	// ErrConnect: no connection to a server could be made within
	// ChainWatchConfig.ConnectTimeout.
	ErrConnect = errors.New("cannot connect")
	// ErrNoLeader: the server said (in a progress message) that it knows no
	// leader or has not heard from it for a while: what it streams may be
	// stale. The client moves to another server.
	ErrNoLeader = errors.New("no leader")
)

// WatchedChain is one chain a ChainWatchClient subscribes to.
type WatchedChain struct {
	Service    string
	Datacenter string // "" for the server's
	// Optional overrides (docs/discovery-chain.md, Overrides).
	OverrideProtocol        string
	OverrideConnectTimeout  time.Duration
	OverrideMeshGatewayMode string
}

func (w WatchedChain) ref() *chainstorev1.ChainRef {
	r := &chainstorev1.ChainRef{Service: w.Service, Datacenter: w.Datacenter}
	if w.OverrideProtocol != "" || w.OverrideConnectTimeout != 0 || w.OverrideMeshGatewayMode != "" {
		r.Overrides = &chainstorev1.ChainOverrides{Protocol: w.OverrideProtocol, MeshGatewayMode: w.OverrideMeshGatewayMode}
		if w.OverrideConnectTimeout != 0 {
			r.Overrides.ConnectTimeout = durationpb.New(w.OverrideConnectTimeout)
		}
	}
	return r
}

// ChainWatchConfig configures a ChainWatchClient.
type ChainWatchConfig struct {
	// Addrs are the servers' gRPC addresses, tried in order; after a
	// failure the client moves on to the next one (wrapping around).
	Addrs []string
	// Chains are the chains to watch, all on one stream.
	Chains []WatchedChain
	// MinBackoff and MaxBackoff bound the jittered exponential delay
	// between connection attempts. The first attempt after a healthy
	// stream, and each attempt on another address within one round of
	// failures, waits a random delay below MinBackoff only; once every
	// address has failed the delay doubles up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// ConnectTimeout bounds one connection attempt to one address.
	ConnectTimeout time.Duration
	// IdleTimeout: a stream on which nothing arrives for this long is
	// dropped (ErrWatchIdle). It must be longer than the servers'
	// progress interval plus jitter (10 s + 10% by default).
	IdleTimeout time.Duration
	// MaxRecvMsgSize is the largest message (bytes) the client reads.
	MaxRecvMsgSize int
	// Token is the ACL token sent on the stream ("" for none).
	Token string
	// KeepaliveTime and KeepaliveTimeout: as in ClientConfig (gRPC-Go
	// pings every 10 s at most): they find dead hosts.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// ProbeAfter and ProbeTimeout: after ProbeAfter with nothing received
	// on the stream the client probes its server (OperatorService.Status,
	// on the same connection) and, when no answer comes within
	// ProbeTimeout, takes it for frozen and moves to the next one. An idle
	// stream is probed every ProbeAfter: by default one WatchPing per
	// second per agent on the stream itself (a Status call to servers
	// that do not accept pings). ProbeAfter 0 disables probing.
	ProbeAfter, ProbeTimeout time.Duration
	// TLS configures TLS to the servers; the zero value is plain text.
	TLS TLSConfig
}

// DefaultChainWatchConfig returns the defaults for watching chains on
// DefaultAddr.
func DefaultChainWatchConfig() ChainWatchConfig {
	return ChainWatchConfig{
		Addrs:            []string{DefaultAddr},
		MinBackoff:       100 * time.Millisecond,
		MaxBackoff:       10 * time.Second,
		ConnectTimeout:   2 * time.Second,
		IdleTimeout:      30 * time.Second,
		MaxRecvMsgSize:   64 << 20,
		KeepaliveTime:    10 * time.Second,
		KeepaliveTimeout: 2 * time.Second,
		ProbeAfter:       time.Second,
		ProbeTimeout:     time.Second,
	}
}

// Validate reports the first invalid field.
func (c ChainWatchConfig) Validate() error {
	if err := validateAddrs(c.Addrs); err != nil {
		return err
	}
	if len(c.Chains) == 0 {
		return errors.New("at least one chain to watch is needed")
	}
	for i, ch := range c.Chains {
		if ch.Service == "" {
			return fmt.Errorf("chain %d: missing service name", i)
		}
	}
	switch {
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("need 0 < MinBackoff (%s) <= MaxBackoff (%s)", c.MinBackoff, c.MaxBackoff)
	case c.ConnectTimeout <= 0:
		return fmt.Errorf("ConnectTimeout must be positive, got %s", c.ConnectTimeout)
	case c.IdleTimeout <= 0:
		return fmt.Errorf("IdleTimeout must be positive, got %s", c.IdleTimeout)
	case c.KeepaliveTime <= 0 || c.KeepaliveTimeout <= 0:
		return errors.New("KeepaliveTime and KeepaliveTimeout must be positive")
	case c.ProbeAfter < 0 || (c.ProbeAfter > 0 && c.ProbeTimeout <= 0):
		return fmt.Errorf("ProbeAfter (%s) must not be negative, and ProbeTimeout (%s) must be positive when probing", c.ProbeAfter, c.ProbeTimeout)
	case c.MaxRecvMsgSize <= 0:
		return fmt.Errorf("MaxRecvMsgSize must be positive, got %d", c.MaxRecvMsgSize)
	}
	return nil
}

// ChainEvent is one chain version a ChainWatchClient received.
type ChainEvent struct {
	// Service is the watched chain's service name (as configured).
	Service string
	// Index and Hash identify the version (see watch.proto).
	Index uint64
	Hash  string
	// Chain is the compiled chain's JSON; nil when Error is set.
	Chain []byte
	// Error is the compile error, or "".
	Error string
	// Server is the address of the server that sent it.
	Server string
}

// chainLine is the JSON line shape of a ChainEvent.
type chainLine struct {
	Service string          `json:"service"`
	Index   uint64          `json:"index"`
	Hash    string          `json:"hash,omitempty"`
	Chain   json.RawMessage `json:"chain,omitempty"`
	Error   string          `json:"error,omitempty"`
}

// JSONLine renders the event as the one-line JSON object storeagent and
// `storectl watch` print: {"service":"web","index":N,"hash":"...","chain":{...}},
// or with "error" instead of "chain" for a chain that does not compile.
func (e ChainEvent) JSONLine() ([]byte, error) {
	l := chainLine{Service: e.Service, Index: e.Index, Hash: e.Hash, Error: e.Error}
	if e.Error == "" {
		l.Chain = e.Chain
	}
	b, err := json.Marshal(l)
	if err != nil {
		return nil, fmt.Errorf("encode chain event of %q: %w", e.Service, err)
	}
	return b, nil
}

// ChainWatchClient keeps one Watch stream open to one of the servers,
// subscribed to every configured chain, and resumes it on another server
// when it breaks: it sends the index and hash of the last version it got
// for each chain, so it receives nothing it already has and never a
// version older than it had. It keeps the last version of each chain
// while disconnected (Last).
type ChainWatchClient struct {
	cfg    ChainWatchConfig
	logger hclog.Logger

	mu       sync.Mutex   // protects last, status, onStatus
	last     []ChainEvent // per chain (index in cfg.Chains); Hash "" = none yet
	status   WatchStatus
	onStatus func(WatchStatus)
}

// WatchStatus says whether the chains a ChainWatchClient holds are known
// to be current.
type WatchStatus struct {
	// Stale is true while the client cannot confirm it follows a cluster
	// with a leader: its last server said it has no leader (quorum lost,
	// or cut off), or no server could be reached. The last versions stay
	// in use meanwhile. It turns false when a server with a leader answers.
	Stale bool
	// Reason says why, when Stale.
	Reason string
	// Server is the address the status comes from.
	Server string
	// Since is when Stale last changed.
	Since time.Time
}

// OnStatus registers fn, called (on Run's goroutine) each time the status
// changes. Call it before Run.
func (c *ChainWatchClient) OnStatus(fn func(WatchStatus)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onStatus = fn
}

// Status returns the current status.
func (c *ChainWatchClient) Status() WatchStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// setStatus records a status and calls the handler when Stale changes.
func (c *ChainWatchClient) setStatus(stale bool, reason, server string) {
	c.mu.Lock()
	changed := stale != c.status.Stale
	if changed || !stale {
		// While stale, the reason of the change is kept: later failures
		// (servers down while looking for one with a leader) follow from it.
		c.status.Reason, c.status.Server = reason, server
	}
	if changed {
		c.status.Stale, c.status.Since = stale, time.Now()
	}
	st, fn := c.status, c.onStatus
	c.mu.Unlock()
	if changed && fn != nil {
		fn(st)
	}
}

// NewChainWatchClient returns a client; Run starts it.
func NewChainWatchClient(cfg ChainWatchConfig, logger hclog.Logger) (*ChainWatchClient, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid chain watch config: %w", err)
	}
	if _, err := cfg.TLS.credentials(); err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	c := &ChainWatchClient{cfg: cfg, logger: logger, last: make([]ChainEvent, len(cfg.Chains))}
	for i, ch := range cfg.Chains {
		c.last[i].Service = ch.Service
	}
	return c, nil
}

// SetLast records ev as the version the client already holds for the
// first configured chain of ev.Service, as if it had been received: call it
// before Run to resume from state an earlier run saved (storeagent's --out
// files). Run then receives nothing for that chain until it changes. It
// reports false, and records nothing, when no configured chain has that
// service or ev has no index or hash.
func (c *ChainWatchClient) SetLast(ev ChainEvent) bool {
	if ev.Index == 0 || ev.Hash == "" {
		return false
	}
	for i, ch := range c.cfg.Chains {
		if ch.Service == ev.Service {
			c.mu.Lock()
			c.last[i] = ev
			c.mu.Unlock()
			return true
		}
	}
	return false
}

// behindRounds is how many rounds over every server, each server saying
// it is behind the client's last index (and none answering otherwise),
// make the client drop that index: no server will ever reach it, so the
// cluster lost committed state (restored from an older backup, or
// rebuilt) or the saved state came from another cluster.
const behindRounds = 2

// forgetLast clears every chain's last index and hash, so that the next
// subscription takes the server's current version whatever its index.
func (c *ChainWatchClient) forgetLast() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.last {
		c.last[i].Index, c.last[i].Hash = 0, ""
	}
}

// Last returns the newest version received for each chain, in the order
// of ChainWatchConfig.Chains (Hash "" when none has arrived yet).
func (c *ChainWatchClient) Last() []ChainEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ChainEvent(nil), c.last...)
}

// Run watches until ctx is done, then returns nil. It calls handle, on
// its own goroutine and in order, for every version received. handle
// must not block for long: the stream is not read meanwhile (the server
// then skips intermediate versions for this client, nothing more).
func (c *ChainWatchClient) Run(ctx context.Context, handle func(ChainEvent)) error {
	n := len(c.cfg.Addrs)
	backoff := c.cfg.MinBackoff
	failures := 0
	behind := 0 // sessions refused with SERVER_BEHIND since the last healthy one
	for attempt := 0; ; attempt++ {
		addr := c.cfg.Addrs[attempt%n]
		healthy, err := c.session(ctx, addr, handle)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case ErrorReason(err) == ReasonServerBehind:
			if behind++; behind >= behindRounds*n {
				c.logger.Error("every server stays behind the index this client last saw (cluster restored from an older state, or saved state from another cluster?); starting over from the servers' current versions",
					"sessions", behind)
				c.forgetLast()
				behind = 0
			}
		case healthy:
			behind = 0
		}
		var delay time.Duration
		if healthy {
			failures, backoff = 0, c.cfg.MinBackoff
			delay = jitter(c.cfg.MinBackoff)
		} else {
			failures++
			if failures >= n && !errors.Is(err, ErrNoLeader) {
				c.setStatus(true, fmt.Sprintf("no server answered in the last %d attempts: %v", failures, err), addr)
			}
			delay = jitter(c.cfg.MinBackoff)
			if failures%n == 0 {
				delay = backoff/2 + jitter(backoff/2)
				backoff = min(backoff*2, c.cfg.MaxBackoff)
			}
		}
		c.logger.Warn("chain watch stream ended; reconnecting", "server", addr,
			"next", c.cfg.Addrs[(attempt+1)%n], "delay", delay, "error", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		}
	}
}

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// session runs one stream against addr until it fails or ctx is done.
// healthy reports whether the server answered at all.
func (c *ChainWatchClient) session(ctx context.Context, addr string, handle func(ChainEvent)) (healthy bool, err error) {
	creds, err := c.cfg.TLS.credentials()
	if err != nil {
		return false, fmt.Errorf("client TLS: %w", err)
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(c.cfg.MaxRecvMsgSize)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.cfg.KeepaliveTime, Timeout: c.cfg.KeepaliveTimeout, PermitWithoutStream: true}),
	)
	if err != nil {
		return false, fmt.Errorf("create connection to %s: %w", addr, err)
	}
	defer func() { _ = conn.Close() }()
	if err := waitReady(ctx, conn, c.cfg.ConnectTimeout); err != nil {
		return false, fmt.Errorf("%w to %s: %w", ErrConnect, addr, err)
	}

	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stream, err := chainstorev1.NewChainServiceClient(conn).Watch(WithToken(sctx, c.cfg.Token))
	if err != nil {
		return false, fmt.Errorf("open watch stream on %s: %w", addr, err)
	}
	idle := time.AfterFunc(c.cfg.IdleTimeout, func() { cancel(ErrWatchIdle) })
	defer idle.Stop()
	// The prober's pings and the subscribes below share the stream:
	// gRPC allows one sender at a time.
	var sendMu sync.Mutex
	send := func(req *chainstorev1.WatchRequest) error {
		sendMu.Lock()
		defer sendMu.Unlock()
		return stream.Send(req)
	}
	var prober *streamProber
	if c.cfg.ProbeAfter > 0 {
		ping := &chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Ping{Ping: &chainstorev1.WatchPing{}}}
		prober = newStreamProber(conn, c.cfg.ProbeAfter, c.cfg.ProbeTimeout, func() error { return send(ping) })
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			prober.run(sctx, func() { cancel(ErrServerFrozen) })
		}()
		defer wg.Wait() // after cancel (deferred above runs later: cancel here too)
		defer cancel(nil)
	}

	for i, ch := range c.cfg.Chains {
		c.mu.Lock()
		last := c.last[i]
		c.mu.Unlock()
		req := &chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{Subscribe: &chainstorev1.WatchSubscribe{
			Id: uint64(i + 1), Chain: ch.ref(), LastIndex: last.Index, LastHash: last.Hash,
		}}}
		if err := send(req); err != nil {
			return false, c.streamErr(sctx, addr, err)
		}
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return healthy, c.streamErr(sctx, addr, err)
		}
		idle.Reset(c.cfg.IdleTimeout)
		if prober != nil {
			if resp.GetProgress().GetAcceptsPing() {
				prober.pingable.Store(true)
			}
			prober.touch()
		}
		if err := c.handleResponse(addr, resp, handle); err != nil {
			// A server without a leader answered, but it is no place to
			// stay: not healthy, so the back-off grows if every server
			// says the same.
			return false, fmt.Errorf("watch stream on %s: %w", addr, err)
		}
		healthy = true
	}
}

// handleResponse applies one server message. It returns ErrNoLeader
// (wrapped) when the server says it has no leader.
func (c *ChainWatchClient) handleResponse(addr string, resp *chainstorev1.WatchResponse, handle func(ChainEvent)) error {
	switch ev := resp.GetEvent().(type) {
	case *chainstorev1.WatchResponse_Progress:
		p := ev.Progress
		if p.GetNoLeader() {
			reason := fmt.Sprintf("server %s (%s) knows no leader", p.GetServedBy(), addr)
			if lc := p.GetLastContact().AsDuration(); lc > 0 {
				reason = fmt.Sprintf("server %s (%s) last heard from the leader %s ago", p.GetServedBy(), addr, lc.Round(100*time.Millisecond))
			}
			c.logger.Warn("no leader: "+reason+"; keeping the last chains (they may be stale) and trying another server", "index", p.GetIndex())
			c.setStatus(true, "no leader: "+reason, addr)
			return fmt.Errorf("%w: %s", ErrNoLeader, reason)
		}
		c.setStatus(false, "", addr)
	case *chainstorev1.WatchResponse_Update:
		i, ok := c.chainIndex(ev.Update.GetSubscriptionId())
		if !ok {
			return nil
		}
		v := ev.Update.GetVersion()
		ce := ChainEvent{Service: c.cfg.Chains[i].Service, Index: v.GetIndex(), Hash: v.GetHash(), Error: v.GetError(), Server: addr}
		if ce.Error == "" {
			ce.Chain = v.GetChain()
		}
		c.mu.Lock()
		prev := c.last[i]
		c.last[i] = ce
		c.mu.Unlock()
		if prev.Hash != "" && ce.Index < prev.Index {
			c.logger.Warn("chain index went down (server restored a snapshot?)", "service", ce.Service,
				"previous", prev.Index, "index", ce.Index, "server", addr)
		}
		handle(ce)
	case *chainstorev1.WatchResponse_SubscriptionReset:
		// The server's state was replaced: what we hold may not compare
		// with its versions. Keep serving it; the current version follows.
		if i, ok := c.chainIndex(ev.SubscriptionReset.GetSubscriptionId()); ok {
			c.logger.Info("chain subscription reset by the server", "service", c.cfg.Chains[i].Service, "server", addr)
			c.mu.Lock()
			c.last[i].Hash, c.last[i].Index = "", 0
			c.mu.Unlock()
		}
	case *chainstorev1.WatchResponse_Unsubscribed:
		if i, ok := c.chainIndex(ev.Unsubscribed.GetSubscriptionId()); ok && ev.Unsubscribed.GetError() != "" {
			c.logger.Error("server refused a chain subscription", "service", c.cfg.Chains[i].Service,
				"server", addr, "error", ev.Unsubscribed.GetError())
		}
	}
	return nil
}

func (c *ChainWatchClient) chainIndex(id uint64) (int, bool) {
	if id == 0 || id > uint64(len(c.cfg.Chains)) {
		return 0, false
	}
	return int(id - 1), true
}

// streamErr prefers the reason the client itself cancelled the stream.
func (c *ChainWatchClient) streamErr(sctx context.Context, addr string, err error) error {
	if cause := context.Cause(sctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return fmt.Errorf("watch stream on %s: %w", addr, err)
}

// waitReady connects conn and waits until it is ready, failing at once on
// a refused connection and after timeout otherwise.
func waitReady(ctx context.Context, conn *grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn.Connect()
	for {
		st := conn.GetState()
		switch st {
		case connectivity.Ready:
			return nil
		case connectivity.TransientFailure, connectivity.Shutdown:
			return fmt.Errorf("connection state %s", st)
		}
		if !conn.WaitForStateChange(ctx, st) {
			return ctx.Err()
		}
	}
}
