// Package tombgc is tombstone garbage collection, run by the Raft leader:
// entries deleted more than Config.TTL ago stop costing memory and
// snapshot space. The leader proposes fsm.OpReapTombstones through Raft,
// so every replica removes the same tombstones at the same log index;
// no replica's clock decides anything on its own.
//
// Tombstones carry a Raft index, not a time. The leader maps indexes to
// its own clock: every Config.Interval it samples its applied index. Once
// a sample is TTL old, every tombstone at or below that sample's index was
// deleted at least TTL ago, and the leader reaps up to it. A new leader
// starts with no samples, so it reaps nothing during its first TTL (as
// Consul's leader-local tombstone GC does). Reaping never breaks a
// blocking query: the store's reap floor keeps every key's index from
// going down (fsm/reap.go).
//
// # Goroutines
//
// Run is the collector's only goroutine, owned by package server (started
// in Start, joined in Stop).
package tombgc

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/fsm"
)

// Config configures a Collector.
type Config struct {
	// TTL is how long a tombstone is kept at least (wall time on the
	// leader since the delete was applied there).
	TTL time.Duration
	// Interval is how often the leader samples its applied index and
	// checks for tombstones to reap (at most TTL: a shorter TTL samples
	// every TTL).
	Interval time.Duration
	// ProposeTimeout bounds one reap proposal.
	ProposeTimeout time.Duration
}

// DefaultConfig returns the production settings: tombstones live at least
// an hour (a blocking query on a reaped key still behaves, so the TTL
// only trades memory for how long a Get of a deleted key reports its own
// deletion index).
func DefaultConfig() Config {
	return Config{TTL: time.Hour, Interval: time.Minute, ProposeTimeout: 10 * time.Second}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.TTL <= 0:
		return fmt.Errorf("tombstone TTL must be positive, got %s", c.TTL)
	case c.Interval <= 0:
		return fmt.Errorf("tombstone GC Interval must be positive, got %s", c.Interval)
	case c.ProposeTimeout <= 0:
		return fmt.Errorf("tombstone GC ProposeTimeout must be positive, got %s", c.ProposeTimeout)
	}
	return nil
}

// Leadership is what the collector needs from the Raft node.
type Leadership interface {
	IsLeader() bool
}

// Store is what the collector needs from the FSM.
type Store interface {
	Store() *fsm.Store
	AppliedIndex() uint64
}

// Proposer submits the reap commands (fsm.Proposer).
type Proposer interface {
	Apply(ctx context.Context, cmd fsm.Command) (fsm.ApplyResult, error)
}

// sample is the leader's applied index at a time.
type sample struct {
	at    time.Time
	index uint64
}

// Collector is the leader's tombstone GC. Its state is owned by Run's
// goroutine.
type Collector struct {
	cfg    Config
	raft   Leadership
	store  Store
	prop   Proposer
	logger hclog.Logger
	now    func() time.Time

	samples []sample // oldest first; only while leader
}

// New returns a collector; cfg must be valid.
func New(cfg Config, r Leadership, s Store, p Proposer, logger hclog.Logger) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &Collector{cfg: cfg, raft: r, store: s, prop: p, logger: logger.Named("tombgc"), now: time.Now}, nil
}

// Run ticks every Interval until ctx is done; it always returns nil then.
func (c *Collector) Run(ctx context.Context) error {
	t := time.NewTicker(min(c.cfg.Interval, c.cfg.TTL))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			c.tick(ctx)
		}
	}
}

// tick samples the applied index and reaps what is older than TTL.
func (c *Collector) tick(ctx context.Context) {
	if !c.raft.IsLeader() {
		c.samples = c.samples[:0]
		return
	}
	now := c.now()
	c.samples = append(c.samples, sample{at: now, index: c.store.AppliedIndex()})
	// The newest sample at least TTL old bounds what may be reaped; older
	// samples are no longer needed.
	cut := -1
	for i, s := range c.samples {
		if now.Sub(s.at) >= c.cfg.TTL {
			cut = i
		}
	}
	if cut < 0 {
		return
	}
	limit := c.samples[cut].index
	c.samples = append(c.samples[:0], c.samples[cut:]...)
	n, oldest := c.store.Store().View().Tombstones()
	if n == 0 || oldest > limit {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ProposeTimeout)
	defer cancel()
	res, err := c.prop.Apply(ctx, fsm.Command{Op: fsm.OpReapTombstones, ReapIndex: limit})
	if err != nil {
		c.logger.Warn("reap tombstones failed; retrying next interval", "up_to_index", limit, "error", err)
		return
	}
	after, _ := c.store.Store().View().Tombstones()
	c.logger.Info("reaped tombstones", "up_to_index", limit, "reaped", n-after, "left", after, "index", res.Index)
}
