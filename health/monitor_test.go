package health

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/fsm"
)

// The tests drive Monitor.Tick directly with a fake clock and a fake
// leadership, over a real FSM that a tiny in-process "Raft" applies
// commands to at consecutive indexes.

const (
	testTTL   = time.Second
	testGrace = 10 * time.Second
)

// fakeClock is a manually advanced clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// fakeLeadership is a leadership toggle.
type fakeLeadership struct{ leader atomic.Bool }

func (l *fakeLeadership) IsLeader() bool { return l.leader.Load() }

// logRaft applies each command to a real FSM as the next Raft log, like
// raftnode.Node does on a single voter. err, if set, is returned (once)
// instead of applying.
type logRaft struct {
	fsm *fsm.FSM

	mu    sync.Mutex
	index uint64
	err   error
}

func (r *logRaft) Apply(_ context.Context, cmd []byte) (any, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.err; err != nil {
		r.err = nil
		return nil, 0, err
	}
	r.index++
	return r.fsm.ApplyBatch([]*raft.Log{{Index: r.index, Term: 1, Type: raft.LogCommand, Data: cmd}})[0], r.index, nil
}

// proposal is one command the monitor proposed and what became of it.
type proposal struct {
	Cmd     fsm.Command
	Applied bool
	Err     string
}

// recordingProposer records the monitor's proposals. beforeExpire, if
// set, runs (once) before an expiry reaches Raft: a write that commits
// first.
type recordingProposer struct {
	inner *fsm.Proposer

	mu           sync.Mutex
	proposals    []proposal
	beforeExpire func()
}

func (p *recordingProposer) Apply(ctx context.Context, cmd fsm.Command) (fsm.ApplyResult, error) {
	p.mu.Lock()
	before := p.beforeExpire
	p.beforeExpire = nil
	p.mu.Unlock()
	if before != nil && cmd.Op == fsm.OpCheckExpire {
		before()
	}
	res, err := p.inner.Apply(ctx, cmd)
	pr := proposal{Cmd: cmd, Applied: res.Applied}
	if err != nil {
		pr.Err = err.Error()
	}
	p.mu.Lock()
	p.proposals = append(p.proposals, pr)
	p.mu.Unlock()
	return res, err
}

// take returns the proposals recorded since the last call.
func (p *recordingProposer) take() []proposal {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.proposals
	p.proposals = nil
	return out
}

type harness struct {
	t      *testing.T
	clock  *fakeClock
	lead   *fakeLeadership
	fsm    *fsm.FSM
	raft   *logRaft
	writes *fsm.Proposer // the test's own writes, not recorded
	prop   *recordingProposer
	m      *Monitor
}

// newHarness returns a monitor that is not (yet) the leader, with a
// clock at an arbitrary instant.
func newHarness(t *testing.T) *harness {
	t.Helper()
	f := fsm.New(nil)
	r := &logRaft{fsm: f}
	h := &harness{
		t:      t,
		clock:  &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		lead:   &fakeLeadership{},
		fsm:    f,
		raft:   r,
		writes: fsm.NewProposer(r),
		prop:   &recordingProposer{inner: fsm.NewProposer(r)},
	}
	cfg := DefaultConfig()
	cfg.Grace = testGrace
	m, err := New(cfg, h.lead, f, h.prop, nil, WithClock(h.clock.Now))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.m = m
	return h
}

// apply writes cmd through the harness's Raft and fails the test if the
// FSM rejects it.
func (h *harness) apply(cmd fsm.Command) fsm.ApplyResult {
	h.t.Helper()
	res, err := h.writes.Apply(h.t.Context(), cmd)
	if err != nil || !res.Applied {
		h.t.Fatalf("apply %s %s: %+v, %v", cmd.Op, cmd.InstanceID, res, err)
	}
	return res
}

// register registers id (service web) with a TTL check of ttl (0: none).
func (h *harness) register(id string, ttl time.Duration) {
	h.t.Helper()
	h.apply(fsm.Command{Op: fsm.OpRegister, Instance: &catalog.Instance{
		ID: id, Service: "web", Address: "10.0.0.1", Port: 8080, Datacenter: "dc1", TTL: ttl,
	}})
}

// check sets id's check status and returns its new ModifyIndex.
func (h *harness) check(id string, s catalog.Health) uint64 {
	h.t.Helper()
	return h.apply(fsm.Command{Op: fsm.OpCheck, InstanceID: id, Status: s, Output: "agent says " + s.String()}).Index
}

func (h *harness) instance(id string) *catalog.Stored {
	h.t.Helper()
	st := h.fsm.Store().Instance(id)
	if st == nil {
		h.t.Fatalf("instance %s not found", id)
	}
	return st
}

// tick runs one Tick and returns what it proposed.
func (h *harness) tick() []proposal {
	h.t.Helper()
	h.m.Tick(h.t.Context())
	return h.prop.take()
}

// wantNoProposal ticks and fails if anything was proposed.
func (h *harness) wantNoProposal(when string) {
	h.t.Helper()
	if got := h.tick(); len(got) != 0 {
		h.t.Fatalf("%s (clock %s): proposed %+v, want nothing", when, h.clock.Now().Format(time.RFC3339Nano), got)
	}
}

// wantExpiry ticks and checks that exactly the expiry of id at
// modifyIndex was proposed and applied, and that the FSM marked the
// instance critical with the TTL message.
func (h *harness) wantExpiry(when, id string, modifyIndex uint64) {
	h.t.Helper()
	want := []proposal{{Cmd: fsm.Command{Op: fsm.OpCheckExpire, InstanceID: id, CASIndex: modifyIndex}, Applied: true}}
	if diff := cmp.Diff(want, h.tick()); diff != "" {
		h.t.Fatalf("%s: proposals (-want +got):\n%s", when, diff)
	}
	st := h.instance(id)
	wantOut := fmt.Sprintf("TTL expired: no check update within %s", st.TTL)
	if st.Status != catalog.Critical || st.Output != wantOut || st.ModifyIndex <= modifyIndex {
		h.t.Fatalf("%s after expiry: status %s, output %q, modify index %d; want critical, %q, > %d",
			id, st.Status, st.Output, st.ModifyIndex, wantOut, modifyIndex)
	}
}

// settledLeader makes the monitor the leader and lets its grace pass:
// from then on, deadlines are TTL after the update seen.
func (h *harness) settledLeader() {
	h.t.Helper()
	h.becomeLeader()
	h.clock.advance(testGrace)
}

// becomeLeader makes the monitor the leader and runs the tick that notices it
// (deadlines then start with the grace).
func (h *harness) becomeLeader() {
	h.t.Helper()
	h.lead.leader.Store(true)
	h.wantNoProposal("first tick as leader")
}

func TestExpiresExactlyTTLAfterTheUpdateSeen(t *testing.T) {
	t.Parallel()
	for _, status := range []catalog.Health{catalog.Passing, catalog.Warning} {
		t.Run(status.String(), func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.settledLeader()
			h.register("web-1", testTTL)
			h.register("web-2", 3*testTTL) // a longer TTL, updated at the same time
			idx := h.check("web-1", status)
			idx2 := h.check("web-2", status)
			h.wantNoProposal("update seen")
			h.clock.advance(testTTL - time.Nanosecond)
			h.wantNoProposal("1ns before the deadline")
			h.clock.advance(time.Nanosecond)
			h.wantExpiry("at the deadline", "web-1", idx)
			if st := h.instance("web-2"); st.Status != status || st.ModifyIndex != idx2 {
				t.Errorf("web-2 = %s at %d, want %s at %d (its TTL has not run out)", st.Status, st.ModifyIndex, status, idx2)
			}
			// web-2 expires at its own deadline; web-1, critical, is not
			// proposed again.
			h.clock.advance(time.Hour)
			h.wantExpiry("web-2 long after its deadline", "web-2", idx2)
			h.wantNoProposal("both critical")
		})
	}
}

func TestLateTickExpiresAtOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.settledLeader()
	h.register("web-1", testTTL)
	idx := h.check("web-1", catalog.Passing)
	h.wantNoProposal("update seen")
	// The next tick comes long after the deadline (a busy server).
	h.clock.advance(10 * testTTL)
	h.wantExpiry("late tick", "web-1", idx)
}

func TestUpdateMovesTheDeadline(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.settledLeader()
	h.register("web-1", testTTL)
	h.check("web-1", catalog.Passing)
	h.wantNoProposal("first update seen")
	h.clock.advance(testTTL / 2)
	idx := h.check("web-1", catalog.Passing)
	h.wantNoProposal("second update seen")
	// The first deadline passes without an expiry.
	h.clock.advance(testTTL / 2)
	h.wantNoProposal("at the first update's deadline")
	h.clock.advance(testTTL/2 - time.Nanosecond)
	h.wantNoProposal("1ns before the second update's deadline")
	h.clock.advance(time.Nanosecond)
	h.wantExpiry("at the second update's deadline", "web-1", idx)
}

func TestNewLeaderAddsGrace(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		// before runs before the monitor becomes the leader (again).
		before func(h *harness)
	}{
		"first leadership": {before: func(*harness) {}},
		"leadership regained": {before: func(h *harness) {
			h.becomeLeader()
			h.wantNoProposal("old term: update seen")
			h.lead.leader.Store(false)
			h.wantNoProposal("follower")
			// The old term's deadline passes while following.
			h.clock.advance(testGrace + 2*testTTL)
			h.wantNoProposal("follower after the old deadline")
		}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.register("web-1", testTTL)
			idx := h.check("web-1", catalog.Passing)
			tc.before(h)
			h.becomeLeader()
			h.clock.advance(testTTL)
			h.wantNoProposal("TTL after taking over")
			h.clock.advance(testGrace - time.Nanosecond)
			h.wantNoProposal("1ns before TTL + grace")
			h.clock.advance(time.Nanosecond)
			h.wantExpiry("TTL + grace after taking over", "web-1", idx)
		})
	}
}

// TestUpdateSeenDuringTheGraceKeepsTheGrace: the new leader's first tick
// can run before its FSM has applied the tail of the old term (the
// updates whose commit the old leader had not yet told it about when it
// crashed), and the agents' next updates are delayed by the election.
// An update seen during the grace must not end it: every deadline noted
// in the grace is at least TTL + Grace after taking over.
func TestUpdateSeenDuringTheGraceKeepsTheGrace(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register("web-1", testTTL)
	h.check("web-1", catalog.Passing)
	h.becomeLeader()
	// The old term's last update is applied after the first tick.
	h.clock.advance(testTTL / 2)
	idx := h.check("web-1", catalog.Passing)
	h.wantNoProposal("update seen in the grace")
	h.clock.advance(testTTL / 2)
	h.wantNoProposal("TTL after the update")
	h.clock.advance(testGrace - time.Nanosecond)
	h.wantNoProposal("1ns before TTL + grace after taking over")
	h.clock.advance(time.Nanosecond)
	h.wantExpiry("TTL + grace after taking over", "web-1", idx)

	// After the grace, the TTL runs from the update seen.
	idx = h.check("web-1", catalog.Passing)
	h.wantNoProposal("update seen after the grace")
	h.clock.advance(testTTL - time.Nanosecond)
	h.wantNoProposal("1ns before the deadline")
	h.clock.advance(time.Nanosecond)
	h.wantExpiry("TTL after the update", "web-1", idx)
}

func TestFollowerProposesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.register("web-1", testTTL)
	h.check("web-1", catalog.Passing)
	for range 5 {
		h.clock.advance(testTTL + testGrace)
		h.wantNoProposal("follower")
	}
	// A leader that loses leadership after noting a deadline drops it.
	h.becomeLeader()
	if len(h.m.deadlines) != 1 {
		t.Fatalf("leader tracks %d deadlines, want 1", len(h.m.deadlines))
	}
	h.lead.leader.Store(false)
	h.clock.advance(time.Hour)
	h.wantNoProposal("deposed leader past the deadline")
	if h.m.deadlines != nil {
		t.Errorf("deposed leader still tracks %v", h.m.deadlines)
	}
	if st := h.instance("web-1"); st.Status != catalog.Passing {
		t.Errorf("web-1 = %s, want passing", st.Status)
	}
}

func TestInstancesNeverExpired(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		ttl    time.Duration
		status catalog.Health // 0: no check update
	}{
		"no TTL check":              {},
		"TTL check never updated":   {ttl: testTTL},
		"TTL check failed by agent": {ttl: testTTL, status: catalog.Critical},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.becomeLeader()
			h.register("web-1", tc.ttl)
			if tc.status != 0 {
				h.check("web-1", tc.status)
			}
			before := *h.instance("web-1")
			for range 5 {
				h.clock.advance(testTTL + testGrace)
				h.wantNoProposal(name)
			}
			if len(h.m.deadlines) != 0 {
				t.Errorf("deadlines = %v, want none tracked", h.m.deadlines)
			}
			if after := h.instance("web-1"); !cmp.Equal(*after, before) {
				t.Errorf("instance changed (-before +after):\n%s", cmp.Diff(before, *after))
			}
		})
	}
}

func TestExpiryRacingAnUpdateIsDropped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.settledLeader()
	h.register("web-1", testTTL)
	idx := h.check("web-1", catalog.Passing)
	h.wantNoProposal("update seen")
	h.clock.advance(testTTL)
	// The agent's update commits between the tick's read and the expiry.
	var raced uint64
	h.prop.beforeExpire = func() { raced = h.check("web-1", catalog.Passing) }
	want := []proposal{{Cmd: fsm.Command{Op: fsm.OpCheckExpire, InstanceID: "web-1", CASIndex: idx}, Applied: false}}
	if diff := cmp.Diff(want, h.tick()); diff != "" {
		t.Fatalf("proposals (-want +got):\n%s", diff)
	}
	if st := h.instance("web-1"); st.Status != catalog.Passing || st.ModifyIndex != raced {
		t.Fatalf("web-1 = %s at %d, want passing at %d (the update won)", st.Status, st.ModifyIndex, raced)
	}
	// The update restarts the TTL from when the monitor sees it.
	h.wantNoProposal("update seen")
	h.clock.advance(testTTL - time.Nanosecond)
	h.wantNoProposal("1ns before the new deadline")
	h.clock.advance(time.Nanosecond)
	h.wantExpiry("at the new deadline", "web-1", raced)
}

func TestFailedProposalIsRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.settledLeader()
	h.register("web-1", testTTL)
	idx := h.check("web-1", catalog.Passing)
	h.wantNoProposal("update seen")
	h.clock.advance(testTTL)
	errBusy := errors.New("raft busy")
	h.raft.mu.Lock()
	h.raft.err = errBusy
	h.raft.mu.Unlock()
	got := h.tick()
	if len(got) != 1 || !strings.Contains(got[0].Err, errBusy.Error()) {
		t.Fatalf("proposals = %+v, want one that failed with %q", got, errBusy)
	}
	h.wantExpiry("next tick", "web-1", idx)
}

func TestDeregisteredDeadlineIsForgotten(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.settledLeader()
	h.register("web-1", testTTL)
	h.register("web-2", testTTL)
	h.check("web-1", catalog.Passing)
	idx2 := h.check("web-2", catalog.Passing)
	h.wantNoProposal("updates seen")
	if got := deadlineIDs(h.m); !cmp.Equal(got, []string{"web-1", "web-2"}) {
		t.Fatalf("deadlines = %v, want web-1 and web-2", got)
	}
	h.apply(fsm.Command{Op: fsm.OpDeregister, InstanceID: "web-1"})
	h.wantNoProposal("after deregistration")
	if got := deadlineIDs(h.m); !cmp.Equal(got, []string{"web-2"}) {
		t.Fatalf("deadlines = %v, want only web-2", got)
	}
	// Registered again under the same ID: a new check, a new deadline.
	h.clock.advance(testTTL / 2)
	h.register("web-1", testTTL)
	idx1 := h.check("web-1", catalog.Passing)
	h.wantNoProposal("re-registration seen")
	h.clock.advance(testTTL / 2)
	h.wantExpiry("web-2's deadline", "web-2", idx2)
	h.clock.advance(testTTL/2 - time.Nanosecond)
	h.wantNoProposal("1ns before the new web-1 deadline")
	// The tick after the expiry forgets the critical web-2.
	if got := deadlineIDs(h.m); !cmp.Equal(got, []string{"web-1"}) {
		t.Errorf("deadlines = %v, want only web-1 (web-2 is critical)", got)
	}
	h.clock.advance(time.Nanosecond)
	h.wantExpiry("the new web-1 deadline", "web-1", idx1)
}

func deadlineIDs(m *Monitor) []string {
	var out []string
	for id := range m.deadlines {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

func TestCanceledTickProposesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.settledLeader()
	h.register("web-1", testTTL)
	h.check("web-1", catalog.Passing)
	h.wantNoProposal("update seen")
	h.clock.advance(testTTL)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	h.m.Tick(ctx)
	if got := h.prop.take(); len(got) != 0 {
		t.Errorf("canceled tick proposed %+v", got)
	}
}

func TestRunStopsWithContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.m.Run(ctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := DefaultConfig()
	cases := map[string]struct {
		mutate  func(*Config)
		wantErr string
	}{
		"default":                {mutate: func(*Config) {}},
		"no grace":               {mutate: func(c *Config) { c.Grace = 0 }},
		"zero interval":          {mutate: func(c *Config) { c.Interval = 0 }, wantErr: "health Interval must be positive, got 0s"},
		"negative interval":      {mutate: func(c *Config) { c.Interval = -time.Second }, wantErr: "health Interval must be positive, got -1s"},
		"negative grace":         {mutate: func(c *Config) { c.Grace = -time.Millisecond }, wantErr: "health Grace must not be negative, got -1ms"},
		"zero propose timeout":   {mutate: func(c *Config) { c.ProposeTimeout = 0 }, wantErr: "health ProposeTimeout must be positive, got 0s"},
		"zero config (no field)": {mutate: func(c *Config) { *c = Config{} }, wantErr: "health Interval must be positive, got 0s"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tc.mutate(&cfg)
			err := cfg.Validate()
			if got := errText(err); got != tc.wantErr {
				t.Errorf("Validate() = %q, want %q", got, tc.wantErr)
			}
			// New refuses what Validate refuses.
			f := fsm.New(nil)
			_, nerr := New(cfg, &fakeLeadership{}, f, fsm.NewProposer(&logRaft{fsm: f}), nil)
			if errText(nerr) != tc.wantErr {
				t.Errorf("New() = %v, want %q", nerr, tc.wantErr)
			}
		})
	}
}

func TestNewNeedsItsDependencies(t *testing.T) {
	t.Parallel()
	f := fsm.New(nil)
	p := fsm.NewProposer(&logRaft{fsm: f})
	cases := map[string]func() (*Monitor, error){
		"no raft":     func() (*Monitor, error) { return New(DefaultConfig(), nil, f, p, nil) },
		"no fsm":      func() (*Monitor, error) { return New(DefaultConfig(), &fakeLeadership{}, nil, p, nil) },
		"no proposer": func() (*Monitor, error) { return New(DefaultConfig(), &fakeLeadership{}, f, nil, nil) },
	}
	for name, fn := range cases {
		if m, err := fn(); err == nil || m != nil {
			t.Errorf("New with %s = %v, %v; want an error", name, m, err)
		}
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
