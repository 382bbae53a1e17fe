package chainwatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
)

// maxDrain bounds how many feed items one processing round merges, so
// subscribe requests are served between rounds even under a write flood.
const maxDrain = 4096

// Hub compiles each watched chain once per change and publishes versions
// that any number of watchers read. See the package documentation.
type Hub struct {
	cfg    Config
	opts   options
	src    Source
	logger hclog.Logger

	reqs    chan *acquireReq // subscribe requests, served by Run
	started atomic.Bool
	done    chan struct{} // closed when Run returns

	progress atomic.Pointer[progressMark] // the highest feed index processed

	compiles     atomic.Uint64
	publishes    atomic.Uint64
	bytesEncoded atomic.Uint64
	numChains    atomic.Int64
	// Read by Stats for metrics: compile time, open subscriptions and
	// watchers, and what watchers delivered or skipped.
	compileNanos  atomic.Int64
	subscriptions atomic.Int64
	watchers      atomic.Int64
	deliveries    atomic.Uint64
	skipped       atomic.Uint64

	// The fields below are owned by the Run goroutine: only it reads or
	// writes them, so they need no lock.
	chains map[ChainKey]*chainState
	deps   map[chain.Key]map[*chainState]struct{} // entry key -> chains whose last compile read it
	epoch  uint64                                 // restores seen
	cursor *fsm.FeedItem                          // last feed item processed
}

// chainState is one chain the hub tracks (watched, or warm after its last
// watcher left).
type chainState struct {
	key ChainKey

	current   atomic.Pointer[Version] // newest published version; never nil once created
	refs      atomic.Int64            // open Subscriptions
	idleSince atomic.Int64            // UnixNano of the last release (written before refs drops)
	freshAt   atomic.Uint64           // the view index of the last compile

	// Owned by the Run goroutine.
	reads []chain.Key // what the last compile read, sorted
	stale bool        // a change touched it while it had no watcher
}

// progressMark is the processed feed index and a channel closed when it
// is superseded.
type progressMark struct {
	index    uint64
	advanced chan struct{}
}

type acquireReq struct {
	key      ChainKey
	minIndex uint64
	reply    chan acquireResp // buffered: Run never blocks on it
	state    atomic.Int32     // reqPending, then reqClaimed (by Run) or reqAbandoned (by the caller)
}

// States of an acquireReq.
const (
	reqPending int32 = iota
	reqClaimed
	reqAbandoned
)

type acquireResp struct {
	c   *chainState
	err error
}

// New returns a hub reading src. Start it with Run.
func New(cfg Config, src Source, logger hclog.Logger, opts ...Option) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid chainwatch config: %w", err)
	}
	if src == nil {
		return nil, errors.New("chainwatch: nil Source")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	h := &Hub{
		cfg:    cfg,
		opts:   o,
		src:    src,
		logger: logger.Named("chainwatch"),
		reqs:   make(chan *acquireReq, 256),
		done:   make(chan struct{}),
		chains: make(map[ChainKey]*chainState),
		deps:   make(map[chain.Key]map[*chainState]struct{}),
	}
	h.progress.Store(&progressMark{advanced: make(chan struct{})})
	return h, nil
}

// Config returns the hub's configuration.
func (h *Hub) Config() Config { return h.cfg }

// Run is the hub's single writer: it follows the store's change feed,
// recompiles the watched chains a change touched, serves subscribe
// requests and expires warm chains. It returns nil when ctx is done, and
// an error if called twice.
func (h *Hub) Run(ctx context.Context) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("chainwatch: Run called twice")
	}
	defer close(h.done)
	h.cursor = h.src.FeedHead()
	h.setProgress(max(h.cursor.Change().Index, h.src.AppliedIndex()))

	sweep := time.NewTicker(min(max(h.cfg.WarmTTL/4, time.Millisecond), time.Second))
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.cursor.Ready():
			h.processFeed()
		case r := <-h.reqs:
			h.serveAcquires(r)
		case <-sweep.C:
			h.sweep()
		}
	}
}

// Done is closed when Run has returned.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Index is the highest feed index the hub has processed: every watched
// chain is current as of it.
func (h *Hub) Index() uint64 { return h.progress.Load().index }

// WaitIndex blocks until the hub has processed the feed through idx.
func (h *Hub) WaitIndex(ctx context.Context, idx uint64) error {
	for {
		p := h.progress.Load()
		if p.index >= idx {
			return nil
		}
		select {
		case <-p.advanced:
		case <-h.done:
			return ErrStopped
		case <-ctx.Done():
			return fmt.Errorf("wait for chain hub index %d: %w", idx, ctx.Err())
		}
	}
}

// Stats are cumulative counters of a hub.
type Stats struct {
	// Compiles counts chain compiles (published or not).
	Compiles uint64
	// Publishes counts versions published.
	Publishes uint64
	// BytesEncoded counts compiled-chain JSON bytes produced.
	BytesEncoded uint64
	// Chains is the number of chains tracked now (watched or warm).
	Chains int
	// CompileTime is the total time spent in the compiler.
	CompileTime time.Duration
	// Subscriptions is the number of open subscriptions (watch-stream
	// subscriptions and blocking GetChain reads); Watchers the number of
	// open Watchers (one per watch stream).
	Subscriptions, Watchers int
	// Deliveries counts chain versions Watchers handed to their streams;
	// Skipped counts versions a Watcher never delivered because a newer
	// one was published before its stream took it.
	Deliveries, Skipped uint64
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	return Stats{
		Compiles:     h.compiles.Load(),
		Publishes:    h.publishes.Load(),
		BytesEncoded: h.bytesEncoded.Load(),
		Chains:       int(h.numChains.Load()),
		CompileTime:  time.Duration(h.compileNanos.Load()),

		Subscriptions: int(h.subscriptions.Load()),
		Watchers:      int(h.watchers.Load()),
		Deliveries:    h.deliveries.Load(),
		Skipped:       h.skipped.Load(),
	}
}

// Subscription is one watcher's hold on a chain: while it is open the
// hub keeps the chain compiled. Close it when done.
type Subscription struct {
	c    *chainState
	h    *Hub
	once sync.Once
}

// Key is the normalized key of the subscribed chain.
func (s *Subscription) Key() ChainKey { return s.c.key }

// Current returns the chain's newest version (never nil). Wait on its
// Superseded channel for the next one.
func (s *Subscription) Current() *Version { return s.c.current.Load() }

// Close releases the subscription. It is idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.c.idleSince.Store(time.Now().UnixNano())
		s.c.refs.Add(-1)
		s.h.subscriptions.Add(-1)
	})
}

// Subscribe opens a subscription to the chain named by key and returns
// once the chain has a version reflecting the store as of at least
// minIndex (and at least as of the hub's own index). When the store has
// not applied minIndex yet, Subscribe first waits for it until ctx is
// done, then fails with ErrBehind. Other errors: ErrInvalidChain,
// ErrTooManyChains, ErrStopped, or ctx's error.
func (h *Hub) Subscribe(ctx context.Context, key ChainKey, minIndex uint64) (*Subscription, error) {
	key, err := normalizeKey(key, h.cfg.Datacenter)
	if err != nil {
		return nil, err
	}
	if minIndex > h.src.AppliedIndex() {
		if err := h.src.WaitForIndex(ctx, minIndex); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, fmt.Errorf("%w: applied index %d, wanted %d", ErrBehind, h.src.AppliedIndex(), minIndex)
			}
			return nil, fmt.Errorf("subscribe to chain %s: %w", key, err)
		}
	}
	r := &acquireReq{key: key, minIndex: minIndex, reply: make(chan acquireResp, 1)}
	select {
	case h.reqs <- r:
	case <-h.done:
		return nil, ErrStopped
	case <-ctx.Done():
		return nil, fmt.Errorf("subscribe to chain %s: %w", key, ctx.Err())
	}
	select {
	case resp := <-r.reply:
		return h.subscription(resp)
	case <-h.done:
	case <-ctx.Done():
	}
	// Give up, unless Run has already claimed the request: then its answer
	// is coming (Run answers a request as soon as it claims it) and the
	// reference it holds must be released.
	if r.state.CompareAndSwap(reqPending, reqAbandoned) {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("subscribe to chain %s: %w", key, ctx.Err())
		}
		return nil, ErrStopped
	}
	resp := <-r.reply
	if resp.err == nil && ctx.Err() != nil {
		(&Subscription{c: resp.c, h: h}).Close()
		return nil, fmt.Errorf("subscribe to chain %s: %w", key, ctx.Err())
	}
	return h.subscription(resp)
}

func (h *Hub) subscription(resp acquireResp) (*Subscription, error) {
	if resp.err != nil {
		return nil, resp.err
	}
	return &Subscription{c: resp.c, h: h}, nil
}

// ---- Run goroutine ----

// serveAcquires answers r and any other queued requests against one view,
// skipping those their callers gave up on.
func (h *Hub) serveAcquires(r *acquireReq) {
	var view View
	for i := 0; ; i++ {
		if r.state.CompareAndSwap(reqPending, reqClaimed) {
			r.reply <- h.acquire(r, &view)
		}
		if i >= cap(h.reqs) {
			return
		}
		select {
		case r = <-h.reqs:
		default:
			return
		}
	}
}

// acquire finds or creates the chain of r and makes sure it is fresh.
// *view is taken on first need and shared by the requests of one round.
func (h *Hub) acquire(r *acquireReq, view *View) acquireResp {
	getView := func() View {
		if *view == nil {
			*view = h.src.View()
		}
		return *view
	}
	c := h.chains[r.key]
	switch {
	case c == nil:
		if len(h.chains) >= h.cfg.MaxChains {
			return acquireResp{err: fmt.Errorf("%w (limit %d)", ErrTooManyChains, h.cfg.MaxChains)}
		}
		c = &chainState{key: r.key}
		h.chains[r.key] = c
		h.numChains.Add(1)
		h.compile(c, getView())
	case c.stale, max(h.Index(), c.freshAt.Load()) < r.minIndex:
		v := getView()
		if v.Index() < r.minIndex {
			// The shared view predates the index this request waited
			// for: take a newer one.
			*view = nil
			v = getView()
		}
		h.refresh(c, v)
	}
	c.refs.Add(1)
	h.subscriptions.Add(1)
	return acquireResp{c: c}
}

// refresh brings c up to date with view: it recompiles c only if a key
// its last compile read has changed since; otherwise the cached version
// is still right and is only marked fresh as of the view. (The applied
// index also moves for logs that change no entry, such as a new leader's
// no-op, which the feed does not report.)
func (h *Hub) refresh(c *chainState, view View) {
	fresh := c.freshAt.Load()
	for _, k := range c.reads {
		if view.KeyIndex(k) > fresh {
			h.compile(c, view)
			return
		}
	}
	c.freshAt.Store(max(fresh, view.Index()))
	c.stale = false
}

// processFeed merges every ready feed item and recompiles the chains the
// merged change touched, each once.
func (h *Hub) processFeed() {
	touched := make(map[chain.Key]uint64)
	var last uint64
	reset := false
	for n := 0; n < maxDrain; n++ {
		select {
		case <-h.cursor.Ready():
		default:
			n = maxDrain
			continue
		}
		h.cursor = h.cursor.Next()
		cs := h.cursor.Change()
		last = max(last, cs.Index)
		if cs.Reset {
			reset = true
		}
		for _, k := range cs.Keys {
			touched[k] = max(touched[k], cs.Index)
		}
	}
	if reset {
		h.resetAll(h.src.View())
	} else if len(touched) > 0 {
		h.recompileTouched(touched)
	}
	h.setProgress(last)
}

// recompileTouched compiles every watched chain whose last compile read a
// key changed after that compile, once, against one view. Unwatched
// chains are only marked stale.
func (h *Hub) recompileTouched(touched map[chain.Key]uint64) {
	var dirty []*chainState
	seen := make(map[*chainState]struct{})
	for k, idx := range touched {
		for c := range h.deps[k] {
			if _, ok := seen[c]; ok || idx <= c.freshAt.Load() {
				continue
			}
			seen[c] = struct{}{}
			if c.refs.Load() == 0 {
				c.stale = true
				continue
			}
			dirty = append(dirty, c)
		}
	}
	if len(dirty) > 0 {
		h.compileAll(dirty, h.src.View())
	}
}

// resetAll handles a snapshot restore: a new epoch, every watched chain
// recompiled and republished (so each watcher gets a reset), every
// unwatched chain dropped.
func (h *Hub) resetAll(view View) {
	h.epoch++
	h.logger.Info("store restored from a snapshot: resetting every chain", "epoch", h.epoch, "index", view.Index())
	var live []*chainState
	for _, c := range h.chains {
		if c.refs.Load() == 0 {
			h.evict(c)
			continue
		}
		live = append(live, c)
	}
	h.compileAll(live, view)
}

// Parallel compiles: a round with at least parallelMin dirty chains is
// compiled by up to GOMAXPROCS short-lived workers (the View is safe for
// concurrent reads); results are installed in order on the Run goroutine.
const parallelMin = 32

// compileAll compiles cs against view and installs the results.
func (h *Hub) compileAll(cs []*chainState, view View) {
	workers := min(runtime.GOMAXPROCS(0), len(cs)/(parallelMin/2))
	if len(cs) < parallelMin || workers < 2 {
		for _, c := range cs {
			h.compile(c, view)
		}
		return
	}
	results := make([]built, len(cs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(cs); i = int(next.Add(1) - 1) {
				results[i] = h.build(cs[i].key, view)
			}
		}()
	}
	wg.Wait()
	for i, c := range cs {
		h.install(c, results[i])
	}
}

// built is the outcome of compiling one chain against one view.
type built struct {
	reads     []chain.Key
	index     uint64 // highest KeyIndex among reads
	body      []byte // chain JSON, nil on error
	errText   string
	hash      string
	viewIndex uint64
	took      time.Duration // time in the compiler
}

// compile compiles c against view and installs the result.
func (h *Hub) compile(c *chainState, view View) { h.install(c, h.build(c.key, view)) }

// build compiles and encodes one chain. It only reads view and the
// hub's immutable config, so workers may run it concurrently.
func (h *Hub) build(key ChainKey, view View) built {
	start := time.Now()
	res, err := chain.Compile(h.cfg.compileRequest(key, view))
	b := built{viewIndex: view.Index(), took: time.Since(start)}
	if res != nil {
		b.reads = res.Reads
	}
	for _, k := range b.reads {
		b.index = max(b.index, view.KeyIndex(k))
	}
	if err != nil {
		b.errText = err.Error()
	} else if b.body, err = json.Marshal(res.Chain); err != nil {
		b.body, b.errText = nil, fmt.Sprintf("encode compiled chain %q: %v", key.Service, err)
	} else if len(b.body) > h.cfg.MaxChainBytes {
		b.errText = fmt.Sprintf("compiled chain %q is %d bytes, over the limit of %d bytes", key.Service, len(b.body), h.cfg.MaxChainBytes)
		b.body = nil
	}
	b.hash = hashOf(b.body, b.errText)
	return b
}

// install records what a compile of c read and publishes its result if it
// changed (or the epoch did). Run goroutine only.
func (h *Hub) install(c *chainState, b built) {
	h.setReads(c, b.reads)
	c.freshAt.Store(b.viewIndex)
	c.stale = false
	h.compiles.Add(1)
	h.compileNanos.Add(int64(b.took))
	h.bytesEncoded.Add(uint64(len(b.body)))
	if h.opts.onCompile != nil {
		h.opts.onCompile(c.key)
	}
	h.publish(c, b)
}

// publish swaps in a new version unless the current one has the same hash
// in the same epoch, then wakes the old version's waiters.
func (h *Hub) publish(c *chainState, b built) {
	index := b.index
	old := c.current.Load()
	if old != nil && old.Epoch == h.epoch {
		if old.Hash == b.hash {
			// Same chain: wake nobody, but carry the higher index so a
			// watcher resuming here with that index is not handed an
			// older label for the same content.
			if index > old.Index {
				c.current.Store(old.withIndex(index))
			}
			return
		}
		// Within an epoch the index a watcher sees never goes down.
		index = max(index, old.Index)
	}
	v := newVersion(index, b.hash, b.body, b.errText, h.epoch)
	if old != nil {
		v.seq = old.seq + 1
	}
	c.current.Store(v)
	h.publishes.Add(1)
	if old != nil {
		close(old.superseded)
	}
}

// setReads replaces c's read set in the dependency index.
func (h *Hub) setReads(c *chainState, reads []chain.Key) {
	if slices.Equal(c.reads, reads) {
		return
	}
	h.dropDeps(c)
	for _, k := range reads {
		set := h.deps[k]
		if set == nil {
			set = make(map[*chainState]struct{})
			h.deps[k] = set
		}
		set[c] = struct{}{}
	}
	c.reads = slices.Clone(reads)
}

func (h *Hub) dropDeps(c *chainState) {
	for _, k := range c.reads {
		if set := h.deps[k]; set != nil {
			delete(set, c)
			if len(set) == 0 {
				delete(h.deps, k)
			}
		}
	}
	c.reads = nil
}

// sweep drops chains that have had no watcher for WarmTTL.
func (h *Hub) sweep() {
	now := time.Now().UnixNano()
	for _, c := range h.chains {
		if c.refs.Load() == 0 && now-c.idleSince.Load() >= int64(h.cfg.WarmTTL) {
			h.evict(c)
		}
	}
}

func (h *Hub) evict(c *chainState) {
	delete(h.chains, c.key)
	h.dropDeps(c)
	h.numChains.Add(-1)
}

// setProgress records that the feed was processed through idx and wakes
// WaitIndex callers. The index never goes down.
func (h *Hub) setProgress(idx uint64) {
	old := h.progress.Load()
	if idx <= old.index {
		return
	}
	h.progress.Store(&progressMark{index: idx, advanced: make(chan struct{})})
	close(old.advanced)
}
