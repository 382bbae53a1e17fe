package cluster

import (
	"context"
	"errors"
	"time"

	"github.com/chainstore/chainstore/raftnode"
)

const (
	// memberReapTimeout: left or failed members are forgotten after this
	// long (Consul's reconnect timeout). A forgotten server still in the
	// Raft configuration is then "unknown" and removed like a failed one.
	memberReapTimeout = 72 * time.Hour
	// reconcileRetry: after a failed Raft change, the next pass comes this
	// soon (or at ReconcileInterval, whichever is first).
	reconcileRetry = 5 * time.Second
	// metaUpdateWait bounds how long the loop waits for a metadata
	// broadcast; the update is applied and queued regardless.
	metaUpdateWait = 100 * time.Millisecond
)

// loopEvent reports what one step of the loop (one select case) decided.
// Tests observe it.
type loopEvent struct {
	step       string // "membership", "tick", "leadership", "due"
	at         time.Time
	bootstrap  bootstrapDecision // 0: no bootstrap evaluation in this step
	reconciled bool              // a reconcile plan was computed and applied (leader only)
	plan       plan
}

// loop is the state owned by Run's goroutine. Nothing else touches it.
type loop struct {
	c             *Cluster
	leader        bool // from LeadershipChanges
	bootstrapDone bool
	unknownSince  map[string]time.Time
	// answered: when each server last answered a probe (probe.go).
	answered map[string]time.Time
	due      *time.Timer // next reconcile for a pending removal or a retry
	// refusalsLogged: identity refusals already logged; certRefused:
	// members that failed the certificate check, name -> reason (see
	// identity.go).
	refusalsLogged map[string]bool
	certRefused    map[string]string
}

// runLoop is the reconcile loop: the only goroutine that reads
// LeadershipChanges and changes the Raft configuration.
func (c *Cluster) runLoop(ctx context.Context) {
	l := &loop{c: c, unknownSince: make(map[string]time.Time), answered: make(map[string]time.Time), due: time.NewTimer(time.Hour), refusalsLogged: make(map[string]bool), certRefused: make(map[string]string)}
	l.due.Stop()
	defer l.due.Stop()
	ticker := time.NewTicker(c.cfg.ReconcileInterval)
	defer ticker.Stop()
	leaderCh := c.raft.LeadershipChanges()

	l.onMembershipChange(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.shutdownCh:
			return
		case isLeader := <-leaderCh:
			l.onLeadershipChange(ctx, isLeader)
		case <-c.table.notify:
			l.onMembershipChange(ctx)
		case <-ticker.C:
			l.onTick(ctx)
		case <-l.due.C:
			l.onDue(ctx)
		}
	}
}

// onMembershipChange runs for every batch of gossip events.
func (l *loop) onMembershipChange(ctx context.Context) {
	ev := loopEvent{step: "membership"}
	l.refreshLocalState()
	ev.bootstrap = l.maybeBootstrap(ctx)
	ev.plan, ev.reconciled = l.reconcile(ctx)
	l.emit(ev)
}

// onTick runs every ReconcileInterval: a full pass plus housekeeping.
func (l *loop) onTick(ctx context.Context) {
	ev := loopEvent{step: "tick"}
	l.c.table.reap(l.c.now().Add(-memberReapTimeout))
	l.refreshLocalState()
	ev.bootstrap = l.maybeBootstrap(ctx)
	ev.plan, ev.reconciled = l.reconcile(ctx)
	l.emit(ev)
}

// onLeadershipChange starts (full pass) or stops leader-only work.
func (l *loop) onLeadershipChange(ctx context.Context, isLeader bool) {
	ev := loopEvent{step: "leadership"}
	l.c.logger.Info("leadership changed", "leader", isLeader)
	l.leader = isLeader
	clear(l.unknownSince) // only meaningful while continuously leader
	clear(l.answered)
	if isLeader {
		ev.plan, ev.reconciled = l.reconcile(ctx)
	} else {
		l.due.Stop()
	}
	l.emit(ev)
}

// onDue runs when a pending removal falls due or a retry is scheduled.
func (l *loop) onDue(ctx context.Context) {
	ev := loopEvent{step: "due"}
	ev.plan, ev.reconciled = l.reconcile(ctx)
	l.emit(ev)
}

// emit reports a finished step to the test observer, if any.
func (l *loop) emit(ev loopEvent) {
	if l.c.observe != nil {
		ev.at = l.c.now()
		l.c.observe(ev)
	}
}

// refreshLocalState gossips whether this node has Raft state (it changes
// when a leader adds this server, or after bootstrap).
func (l *loop) refreshLocalState() {
	if l.c.setHasState(l.c.raft.HasExistingState()) {
		l.c.updateMeta(metaUpdateWait)
	}
}

// maybeBootstrap evaluates bootstrap until a final decision; see
// planBootstrap. BootstrapCluster is called at most once per Run. It
// returns the decision, 0 if there was nothing to evaluate.
func (l *loop) maybeBootstrap(ctx context.Context) bootstrapDecision {
	cfg := l.c.cfg
	if l.bootstrapDone || cfg.BootstrapExpect == 0 {
		return 0
	}
	proposal, decision, detail := []raftnode.Server(nil), bootstrapLocalState, "this server already has raft state"
	if !l.c.raft.HasExistingState() {
		proposal, decision, detail = planBootstrap(cfg.NodeID, cfg.Datacenter, cfg.BootstrapExpect, l.c.table.snapshot())
	}
	l.bootstrapDone = decision.final()
	switch decision {
	case bootstrapWaiting:
		l.c.logger.Debug("bootstrap: waiting for servers", "detail", detail)
	case bootstrapConflict:
		l.c.logger.Error("bootstrap: blocked by a configuration conflict", "detail", detail)
	case bootstrapPeerState, bootstrapLocalState:
		l.c.logger.Info("not bootstrapping; waiting to be added by the leader", "reason", detail)
	case bootstrapGo:
		if !l.verifyBootstrap(ctx, proposal) {
			l.bootstrapDone = false // evaluated again on the next change
			return bootstrapWaiting
		}
		l.bootstrap(proposal)
	}
	return decision
}

// bootstrap proposes servers as the initial configuration, once.
func (l *loop) bootstrap(servers []raftnode.Server) {
	l.c.logger.Info("bootstrapping raft", "servers", servers)
	if err := l.c.raft.BootstrapCluster(servers); err != nil {
		// Not retried: a failed bootstrap leaves the node to be added by a
		// leader, which is safe, while a retry could race a real cluster.
		l.c.logger.Error("bootstrap failed", "error", err)
		return
	}
	l.c.setBootstrapped(configHash(servers))
	l.c.updateMeta(metaUpdateWait)
}

// reconcile is one full leader pass: plan, apply, schedule the next. It
// returns the plan and true if it ran (this node is leader).
func (l *loop) reconcile(ctx context.Context) (plan, bool) {
	if !l.leader || !l.c.raft.IsLeader() {
		return plan{}, false
	}
	c := l.c
	servers, err := c.raft.Servers()
	if err != nil {
		c.logger.Warn("reconcile: cannot read raft configuration", "error", err)
		l.schedule(time.Time{}, true)
		return plan{}, false
	}
	// Identity first: impostors never reach the plan (identity.go).
	members, refused := admitMembers(c.cfg.NodeID, c.cfg.NodeName, servers, c.table.snapshot())
	l.logRefusals(refused)
	byID := indexMembers(members, c.cfg.Datacenter)
	pruneAnswered(l.answered, servers, byID)
	in := planInput{
		selfID:            c.cfg.NodeID,
		datacenter:        c.cfg.Datacenter,
		servers:           servers,
		members:           members,
		now:               c.now(),
		deadServerTimeout: c.cfg.DeadServerTimeout,
		stabilization:     c.cfg.ServerStabilizationTime,
		unknownSince:      l.unknownSince,
		answered:          l.answered,
	}
	p := planReconcile(in)
	// Gossip alone never removes a server: one that still answers over
	// the network is kept (probe.go), and the plan is made again with its
	// answer (the same input otherwise, so adds are unchanged).
	if l.probeDue(ctx, p, byID) {
		p = planReconcile(in)
	}
	l.unknownSince = p.unknown
	ok := l.apply(ctx, p, memberNames(members))
	l.schedule(p.nextDue, !ok)
	return p, true
}

// apply makes the planned changes in order. It returns false if a change
// failed (the pass is retried soon) or leadership was lost (stops at once).
func (l *loop) apply(ctx context.Context, p plan, names map[string]string) bool {
	c := l.c
	ok := true
	for _, r := range p.blocked {
		c.logger.Warn("not removing server: the remaining alive voters would not be a majority",
			"id", r.ID, "reason", r.Reason.String(), "since", r.Since)
	}
	run := func(op, id string, fn func() error) bool {
		err := fn()
		switch {
		case err == nil:
			c.logger.Info("raft configuration changed", "op", op, "id", id)
		case errors.Is(err, raftnode.ErrNotLeader):
			c.logger.Debug("reconcile: no longer leader", "op", op, "id", id, "error", err)
			return false
		default:
			c.logger.Warn("reconcile: raft change failed", "op", op, "id", id, "error", err)
			ok = false
		}
		return true
	}
	for _, s := range p.add {
		if !l.verifyVoter(ctx, s, names[s.ID]) {
			continue
		}
		op, add := "add voter", c.raft.AddVoter
		if !s.Voter {
			op, add = "add non-voter", c.raft.AddNonvoter
		}
		if !run(op, s.ID, func() error { return add(s.ID, s.Address) }) {
			return false
		}
	}
	for _, r := range p.removeDead {
		if !run("remove "+r.Reason.String()+" server", r.ID, func() error { return c.raft.RemoveServer(r.ID) }) {
			return false
		}
	}
	return ok
}

// schedule arms the due timer for the earliest of nextDue (zero: none)
// and, if retry, a short retry delay.
func (l *loop) schedule(nextDue time.Time, retry bool) {
	now := l.c.now()
	at := nextDue
	if retry {
		r := now.Add(min(reconcileRetry, l.c.cfg.ReconcileInterval))
		if at.IsZero() || r.Before(at) {
			at = r
		}
	}
	if at.IsZero() {
		l.due.Stop()
		return
	}
	l.due.Reset(max(at.Sub(now), time.Millisecond))
}
