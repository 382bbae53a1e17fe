package xdsserver

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/chainwatch"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/xds"
)

// ChainStatus is the publishing state of one chain (one listener name).
type ChainStatus struct {
	// Name is the listener name, the chain's service.
	Name string
	// Index and Hash identify the newest chain version seen from the hub
	// (0 and "" before the first).
	Index uint64
	Hash  string
	// PublishedHash is the hash of the chain version whose resources are
	// published ("" if none ever was); it differs from Hash while the
	// newest version cannot be published (see Error).
	PublishedHash string
	// Error says why the newest version is not published: the compile
	// error, or the translation or validation failure. Resources of the
	// last good version stay published meanwhile (their endpoints still
	// follow the catalog).
	Error string `json:",omitempty"`
	// Warnings are what gRPC clients ignore or cannot match in the
	// published resources (xds.Warning strings).
	Warnings []string `json:",omitempty"`
	// Services are the catalog services whose instances the published
	// chain's targets use.
	Services []string `json:",omitempty"`
	// Updated is when the chain's resources were last published.
	Updated time.Time `json:",omitzero"`
}

// Chains returns the publishing status of every chain the server follows,
// sorted by name.
func (s *Server) Chains() []ChainStatus {
	s.mu.Lock()
	out := make([]ChainStatus, 0, len(s.chains))
	for _, c := range s.chains {
		out = append(out, c)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b ChainStatus) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Stats are cumulative counters of the publisher.
type Stats struct {
	// Rounds counts the rounds that rebuilt at least one chain.
	Rounds uint64
	// Rebuilds counts chain translations; Failures those that published
	// nothing (translation or validation failed).
	Rebuilds, Failures uint64
	// Updates counts the resources handed to the caches, per type URL
	// (a resource whose encoding did not change is not handed over).
	Updates map[string]uint64
}

// stats are the counters behind Stats, written by Run.
type stats struct {
	rounds, rebuilds, failures atomic.Uint64
	updates                    [len(typeURLs)]atomic.Uint64
}

// Stats returns the publisher's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		Rounds:   s.stats.rounds.Load(),
		Rebuilds: s.stats.rebuilds.Load(),
		Failures: s.stats.failures.Load(),
		Updates:  make(map[string]uint64, len(typeURLs)),
	}
	for i, t := range typeURLs {
		st.Updates[t] = s.stats.updates[i].Load()
	}
	return st
}

// chainState is one followed chain. Owned by Run.
type chainState struct {
	name     string
	sub      *chainwatch.Subscription // nil until subscribed
	retryAt  time.Time                // when to retry a failed subscription
	gaveUp   bool                     // the subscription failed for good (invalid name)
	seen     *chainwatch.Version      // the version last acted on
	compiled *chain.CompiledChain     // the version whose resources are published (nil: none yet)
	pubHash  string                   // its hash
	next     *chain.CompiledChain     // the newest version when it is not published yet, else nil
	nextHash string                   // its hash
	services []string                 // services of compiled's targets, sorted
	chainErr string                   // why seen cannot be published (compile or decode), or ""
	buildErr string                   // the last build or validation failure, or ""
	warnings []string
	updated  time.Time
}

// publisher is Run's state: the chains, the service index, the hash of
// every published resource and the feed cursor. Only Run touches it.
type publisher struct {
	s      *Server
	cursor *fsm.FeedItem
	chains map[string]*chainState
	// bySvc indexes the chains whose published targets use a service.
	bySvc map[string]map[*chainState]struct{}
	// hashes are the SHA-256 of the deterministic encoding of every
	// published resource, per type URL and name.
	hashes map[string]map[string][sha256.Size]byte
	retry  *time.Timer
}

// Run is the publisher, the only writer of the caches: it subscribes to
// the chains clients ask for, follows their versions and the catalog
// feed, translates and validates each chain and publishes what changed.
// It returns nil when ctx is done or the hub has stopped, and ends every
// ADS stream on its way out. Calling it twice is an error.
func (s *Server) Run(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("xdsserver: Run called twice")
	}
	defer s.cancelStreams()
	p := &publisher{
		s:      s,
		cursor: s.store.FeedHead(),
		chains: make(map[string]*chainState),
		bySvc:  make(map[string]map[*chainState]struct{}),
		hashes: make(map[string]map[string][sha256.Size]byte, len(typeURLs)),
		retry:  time.NewTimer(time.Hour),
	}
	p.retry.Stop()
	defer func() {
		p.retry.Stop()
		for _, c := range p.chains {
			if c.sub != nil {
				c.sub.Close()
			}
		}
	}()
	for _, t := range typeURLs {
		p.hashes[t] = make(map[string][sha256.Size]byte)
	}
	var cases []reflect.SelectCase
	for {
		if stop := p.round(ctx); stop {
			return nil
		}
		hold := s.releaseDeferred(time.Now())
		cases = p.cases(ctx, cases[:0], hold)
		chosen, _, _ := reflect.Select(cases)
		clear(cases) // drop the channel references until the next wait
		if chosen < 2 {
			return nil // ctx done or hub stopped
		}
	}
}

// cases prepares the wait: ctx, hub stop, wake, feed, the timer (for the
// next subscription retry or the deferred-watch deadline next, if any),
// then the Superseded channel of each chain's last-seen version.
func (p *publisher) cases(ctx context.Context, cases []reflect.SelectCase, next time.Time) []reflect.SelectCase {
	recv := func(ch any) reflect.SelectCase {
		return reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)}
	}
	var retry <-chan time.Time // nil: never fires
	for _, c := range p.chains {
		if c.sub == nil && !c.gaveUp && (next.IsZero() || c.retryAt.Before(next)) {
			next = c.retryAt
		}
	}
	if !next.IsZero() {
		p.retry.Reset(time.Until(next))
		retry = p.retry.C
	}
	cases = append(cases,
		recv(ctx.Done()),
		recv(p.s.hub.Done()),
		recv(p.s.wake),
		recv(p.cursor.Ready()),
		recv(retry),
	)
	for _, c := range p.chains {
		if c.seen != nil {
			cases = append(cases, recv(c.seen.Superseded()))
		}
	}
	return cases
}

// round takes the queued names, retries due subscriptions, reads every
// ready feed item, rebuilds the chains that changed and publishes the
// result. It returns true when the hub has stopped.
func (p *publisher) round(ctx context.Context) (stop bool) {
	dirty := make(map[*chainState]bool)
	for _, name := range p.s.takePending() {
		c := &chainState{name: name}
		p.chains[name] = c
		p.s.setStatus(c)
	}
	now := time.Now()
	for _, c := range p.chains {
		if c.sub != nil || c.gaveUp || now.Before(c.retryAt) {
			continue
		}
		switch err := p.subscribe(ctx, c); {
		case errors.Is(err, chainwatch.ErrStopped) || ctx.Err() != nil:
			return true
		case err == nil:
			dirty[c] = true
		}
	}

	// The catalog: every feed item ready now, merged.
	reset, services := false, make(map[string]struct{})
	for {
		select {
		case <-p.cursor.Ready():
			p.cursor = p.cursor.Next()
			cs := p.cursor.Change()
			reset = reset || cs.Reset
			for _, svc := range cs.Services {
				services[svc] = struct{}{}
			}
			continue
		default:
		}
		break
	}
	for svc := range services {
		for c := range p.bySvc[svc] {
			dirty[c] = true
		}
	}
	for _, c := range p.chains {
		if c.sub == nil {
			continue
		}
		switch v := c.sub.Current(); {
		case reset:
			dirty[c] = true
		case v == c.seen:
		case c.seen != nil && v.Hash == c.seen.Hash && v.Epoch == c.seen.Epoch:
			c.seen = v // the same chain relabelled with a newer index
			p.s.setStatus(c)
		default:
			dirty[c] = true
		}
	}
	if len(dirty) == 0 {
		return false
	}

	// One view for the round: every chain sees the same catalog.
	view := p.s.store.View()
	updates := make(map[string]map[string]types.Resource, len(typeURLs))
	order := make([]*chainState, 0, len(dirty))
	for c := range dirty {
		order = append(order, c)
	}
	slices.SortFunc(order, func(a, b *chainState) int { return cmp.Compare(a.name, b.name) })
	for _, c := range order {
		p.rebuild(c, view, updates)
	}
	p.s.stats.rounds.Add(1)
	p.s.stats.rebuilds.Add(uint64(len(order)))
	p.publish(updates)
	for _, c := range order {
		p.s.setStatus(c)
	}
	return false
}

// subscribe opens c's subscription. A failure is recorded in c; one that
// may pass is retried after RetryInterval.
func (p *publisher) subscribe(ctx context.Context, c *chainState) error {
	sctx, cancel := context.WithTimeout(ctx, p.s.cfg.SubscribeTimeout)
	defer cancel()
	sub, err := p.s.hub.Subscribe(sctx, chainwatch.ChainKey{Service: c.name}, 0)
	if err != nil {
		c.chainErr = "subscribe: " + err.Error()
		c.gaveUp = errors.Is(err, chainwatch.ErrInvalidChain)
		c.retryAt = time.Now().Add(p.s.cfg.RetryInterval)
		p.s.logger.Warn("cannot follow chain", "chain", c.name, "error", err, "retry", !c.gaveUp)
		p.s.setStatus(c)
		return err
	}
	c.sub, c.chainErr = sub, ""
	return nil
}

// rebuild translates c's newest version against view, validates the
// result and adds the resources whose encoding changed to updates. When
// the newest version cannot be published (compile error, translation or
// validation failure) the last published version is rebuilt instead, so
// its endpoints keep following the catalog, and the failure is recorded.
// A chain that fails validation adds nothing.
func (p *publisher) rebuild(c *chainState, view InstanceView, updates map[string]map[string]types.Resource) {
	if v := c.sub.Current(); v != c.seen {
		if c.seen == nil || v.Hash != c.seen.Hash || v.Epoch != c.seen.Epoch {
			p.takeVersion(c, v)
		}
		c.seen = v
	}
	var candidates []*chain.CompiledChain
	if c.next != nil {
		candidates = append(candidates, c.next)
	}
	if c.compiled != nil {
		candidates = append(candidates, c.compiled)
	}
	for _, cand := range candidates {
		res, err := xds.Build(cand, func(service string) []*catalog.Stored { return view.Instances(service) })
		if err == nil {
			err = xds.Validate(res)
		}
		newest := cand == c.next || c.next == nil
		if err != nil {
			if newest {
				if prev := c.buildErr; err.Error() != prev {
					p.s.logger.Error("xDS resources not published", "chain", c.name, "error", err)
				}
				c.buildErr = err.Error()
			}
			continue
		}
		if newest {
			if c.buildErr != "" {
				p.s.logger.Info("xDS resources valid again", "chain", c.name)
			}
			c.buildErr = ""
		}
		p.s.noteNeeds(c.name, cand, res)
		changed := p.add(res, updates)
		if cand == c.next {
			if c.compiled == nil {
				p.s.logger.Info("publishing chain", "chain", c.name, "hash", c.nextHash)
			}
			p.index(c, cand)
			c.compiled, c.pubHash, c.next, c.nextHash = cand, c.nextHash, nil, ""
		}
		c.warnings = c.warnings[:0]
		for _, w := range res.Warnings {
			c.warnings = append(c.warnings, w.String())
		}
		if changed > 0 {
			c.updated = time.Now()
		}
		return
	}
	p.s.stats.failures.Add(1)
}

// takeVersion notes v, a version with new content: decoded into c.next if
// it differs from the published one, or its error recorded.
func (p *publisher) takeVersion(c *chainState, v *chainwatch.Version) {
	c.next, c.nextHash, c.chainErr, c.buildErr = nil, "", "", ""
	switch {
	case v.Hash == c.pubHash:
	case v.Err != "":
		c.chainErr = "compile: " + v.Err
	default:
		var cc chain.CompiledChain
		if err := json.Unmarshal(v.Chain, &cc); err != nil {
			c.chainErr = "decode compiled chain: " + err.Error()
		} else {
			c.next, c.nextHash = &cc, v.Hash
		}
	}
	if c.chainErr != "" {
		msg := "chain cannot be published"
		if c.compiled != nil {
			msg = "newest chain version cannot be published; keeping the previous one"
		}
		p.s.logger.Warn(msg, "chain", c.name, "index", v.Index, "error", c.chainErr)
	}
}

// index records which services c's targets use.
func (p *publisher) index(c *chainState, cc *chain.CompiledChain) {
	for _, svc := range c.services {
		delete(p.bySvc[svc], c)
		if len(p.bySvc[svc]) == 0 {
			delete(p.bySvc, svc)
		}
	}
	c.services = c.services[:0]
	for _, t := range cc.Targets {
		if t != nil && !slices.Contains(c.services, t.Service) {
			c.services = append(c.services, t.Service)
		}
	}
	slices.Sort(c.services)
	for _, svc := range c.services {
		if p.bySvc[svc] == nil {
			p.bySvc[svc] = make(map[*chainState]struct{})
		}
		p.bySvc[svc][c] = struct{}{}
	}
}

// add puts the resources of res whose encoding differs from the
// published one into updates and returns how many.
func (p *publisher) add(res *xds.Resources, updates map[string]map[string]types.Resource) int {
	n := 0
	for _, typed := range res.ByType() {
		hashes := p.hashes[typed.TypeURL]
		for name, msg := range typed.Resources {
			h, err := hashResource(msg)
			if err != nil {
				p.s.logger.Error("cannot encode resource", "type", typed.TypeURL, "name", name, "error", err)
				continue
			}
			if old, ok := hashes[name]; ok && old == h {
				continue
			}
			hashes[name] = h
			if updates[typed.TypeURL] == nil {
				updates[typed.TypeURL] = make(map[string]types.Resource)
			}
			updates[typed.TypeURL][name] = msg
			n++
		}
	}
	return n
}

// publish applies updates type by type in the order clusters, endpoints,
// listeners, routes (§6.4): a client asks for a cluster only once a route
// uses it, and the cluster is there by then. Nothing is ever removed (see
// the package documentation, Retention).
func (p *publisher) publish(updates map[string]map[string]types.Resource) {
	for i, t := range typeURLs {
		if len(updates[t]) == 0 {
			continue
		}
		p.s.stats.updates[i].Add(uint64(len(updates[t])))
		if err := p.s.caches[t].UpdateResources(updates[t], nil); err != nil {
			p.s.logger.Error("cache update failed", "type", t, "error", err)
		}
		p.s.mu.Lock()
		for name := range updates[t] {
			p.s.published[t][name] = struct{}{}
		}
		p.s.mu.Unlock()
	}
}

// hashResource digests the deterministic encoding of m.
func hashResource(m proto.Message) ([sha256.Size]byte, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("encode: %w", err)
	}
	return sha256.Sum256(b), nil
}

// setStatus copies c's state into the status map read by Chains.
func (s *Server) setStatus(c *chainState) {
	st := ChainStatus{
		Name:          c.name,
		PublishedHash: c.pubHash,
		Error:         c.chainErr,
		Warnings:      slices.Clone(c.warnings),
		Services:      slices.Clone(c.services),
		Updated:       c.updated,
	}
	if c.buildErr != "" {
		st.Error = errors.Join(errorsOf(c.chainErr, c.buildErr)...).Error()
	}
	if c.seen != nil {
		st.Index, st.Hash = c.seen.Index, c.seen.Hash
	}
	s.mu.Lock()
	s.chains[c.name] = st
	s.mu.Unlock()
}

func errorsOf(texts ...string) []error {
	var errs []error
	for _, t := range texts {
		if t != "" {
			errs = append(errs, errors.New(t))
		}
	}
	return errs
}
