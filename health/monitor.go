// Package health runs the TTL check monitor: on the Raft leader only, it
// decides when an instance's TTL check has expired and proposes the change
// through Raft, so every replica applies the same expiry at the same log
// index and no replica's clock decides anything on its own.
//
// # Deadlines
//
// The leader notes, in its own memory, when it saw each TTL check's last
// update (the FSM applied a write that changed the instance's
// ModifyIndex); the check expires TTL after that. A server that has just
// become leader does not know when the checks were last updated under the
// previous leader, so every deadline it notes during its first
// Config.Grace (10 s by default) is TTL after the end of that grace, also
// for an update it applies only after taking over (the old term's tail):
// a leader change never flaps healthy instances whose agents keep
// refreshing them. The expiry command names the ModifyIndex the leader
// saw (fsm.OpCheckExpire), so an update that commits first wins and the
// expiry is dropped.
//
// # Goroutines
//
// Run is the monitor's only goroutine, owned by package server (started in
// Start, joined in Stop). It wakes every Config.Interval, reads the
// current store, and proposes expiries one at a time.
package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/fsm"
)

// Config configures a Monitor.
type Config struct {
	// Interval is how often the leader compares deadlines with its clock;
	// an expiry is proposed at most Interval after its deadline.
	Interval time.Duration
	// Grace is added to every TTL when a server becomes leader.
	Grace time.Duration
	// ProposeTimeout bounds one expiry proposal.
	ProposeTimeout time.Duration
}

// DefaultConfig returns the production settings.
func DefaultConfig() Config {
	return Config{Interval: 200 * time.Millisecond, Grace: 10 * time.Second, ProposeTimeout: 5 * time.Second}
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("health Interval must be positive, got %s", c.Interval)
	case c.Grace < 0:
		return fmt.Errorf("health Grace must not be negative, got %s", c.Grace)
	case c.ProposeTimeout <= 0:
		return fmt.Errorf("health ProposeTimeout must be positive, got %s", c.ProposeTimeout)
	}
	return nil
}

// Leadership is what the monitor needs from the Raft node.
type Leadership interface {
	IsLeader() bool
}

// Store is what the monitor needs from the FSM.
type Store interface {
	Store() *fsm.Store
}

// Proposer submits the expiry commands (fsm.Proposer).
type Proposer interface {
	Apply(ctx context.Context, cmd fsm.Command) (fsm.ApplyResult, error)
}

// Monitor is the TTL check monitor of one server. Create it with New and
// run it with Run.
type Monitor struct {
	cfg      Config
	raft     Leadership
	fsm      Store
	proposer Proposer
	now      func() time.Time
	logger   hclog.Logger

	// Owned by Run's goroutine.
	leader bool
	// graceEnd is when the grace of this leadership ends: Grace after
	// the first tick that found this server leading.
	graceEnd  time.Time
	deadlines map[string]deadline
}

// deadline is when the check of an instance expires, for the update at
// ModifyIndex seen by this leader.
type deadline struct {
	modifyIndex uint64
	at          time.Time
}

// Option adjusts a Monitor.
type Option func(*Monitor)

// WithClock replaces time.Now (tests).
func WithClock(now func() time.Time) Option { return func(m *Monitor) { m.now = now } }

// New returns a monitor. logger may be nil.
func New(cfg Config, r Leadership, f Store, p Proposer, logger hclog.Logger, opts ...Option) (*Monitor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if r == nil || f == nil || p == nil {
		return nil, errors.New("health monitor needs a Raft node, an FSM and a proposer")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	m := &Monitor{cfg: cfg, raft: r, fsm: f, proposer: p, now: time.Now, logger: logger.Named("health")}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Run monitors until ctx is done, then returns nil.
func (m *Monitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.Tick(ctx)
		}
	}
}

// Tick runs one pass: on a follower it forgets every deadline; on the
// leader it updates deadlines from the store and proposes the expiries
// that are due. Run calls it; tests call it with a fake clock.
func (m *Monitor) Tick(ctx context.Context) {
	if !m.raft.IsLeader() {
		if m.leader {
			m.logger.Debug("lost leadership; TTL deadlines dropped")
		}
		m.leader, m.deadlines = false, nil
		return
	}
	now := m.now()
	if !m.leader {
		m.leader, m.deadlines, m.graceEnd = true, map[string]deadline{}, now.Add(m.cfg.Grace)
		m.logger.Info("leader: tracking TTL checks", "grace", m.cfg.Grace)
	}
	// A deadline noted during the grace starts at its end, also for an
	// update first seen after the first tick: a new leader's FSM may
	// apply the old term's last updates only after it took over, and
	// the agents' next updates wait for the election.
	start := now
	if now.Before(m.graceEnd) {
		start = m.graceEnd
	}
	var due []fsm.Command
	seen := make(map[string]struct{}, len(m.deadlines))
	for _, in := range m.fsm.Store().View().AllInstances() {
		if in.TTL == 0 || in.Status == catalog.Critical {
			continue
		}
		seen[in.ID] = struct{}{}
		d, ok := m.deadlines[in.ID]
		if !ok || d.modifyIndex != in.ModifyIndex {
			m.deadlines[in.ID] = deadline{modifyIndex: in.ModifyIndex, at: start.Add(in.TTL)}
			continue
		}
		if !now.Before(d.at) {
			due = append(due, fsm.Command{Op: fsm.OpCheckExpire, InstanceID: in.ID, CASIndex: in.ModifyIndex})
		}
	}
	for id := range m.deadlines {
		if _, ok := seen[id]; !ok {
			delete(m.deadlines, id)
		}
	}
	for _, cmd := range due {
		if ctx.Err() != nil {
			return
		}
		m.expire(ctx, cmd)
	}
}

// expire proposes one expiry. A failure is logged; the next tick retries
// while the deadline stays passed and this server leads.
func (m *Monitor) expire(ctx context.Context, cmd fsm.Command) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.ProposeTimeout)
	defer cancel()
	res, err := m.proposer.Apply(ctx, cmd)
	switch {
	case err != nil:
		m.logger.Warn("proposing TTL expiry failed; will retry", "instance", cmd.InstanceID, "error", err)
	case res.Applied:
		m.logger.Info("TTL check expired", "instance", cmd.InstanceID, "index", res.Index)
	default:
		m.logger.Debug("TTL expiry dropped: the check changed first", "instance", cmd.InstanceID)
	}
}
