package tombgc

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
)

func applyLog(t *testing.T, f *fsm.FSM, index uint64, cmd fsm.Command) {
	t.Helper()
	b, err := fsm.EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := f.Apply(&raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}).(fsm.ApplyResult); !ok || res.Err != nil {
		t.Fatalf("apply %s: %+v", cmd.Op, res)
	}
}

type fakeLeader struct{ leader bool }

func (l *fakeLeader) IsLeader() bool { return l.leader }

// fakeStore holds a real (empty) FSM for Store and a settable applied
// index; tombstone counts come from the real store.
type fakeStore struct {
	f       *fsm.FSM
	applied uint64
}

func (s *fakeStore) Store() *fsm.Store    { return s.f.Store() }
func (s *fakeStore) AppliedIndex() uint64 { return s.applied }

type recProposer struct{ reaps []uint64 }

func (p *recProposer) Apply(_ context.Context, cmd fsm.Command) (fsm.ApplyResult, error) {
	if cmd.Op != fsm.OpReapTombstones {
		return fsm.ApplyResult{}, errors.New("unexpected command")
	}
	p.reaps = append(p.reaps, cmd.ReapIndex)
	return fsm.ApplyResult{Applied: true}, nil
}

// TestCollectorReapsOnlyAfterTTL drives tick with a fake clock: nothing is
// reaped before a sample is TTL old, then exactly up to the index sampled
// TTL ago; a follower reaps nothing and forgets its samples; nothing is
// proposed while the store has no tombstone old enough.
func TestCollectorReapsOnlyAfterTTL(t *testing.T) {
	t.Parallel()
	f := fsm.New(nil)
	store := &fakeStore{f: f}
	lead := &fakeLeader{leader: true}
	prop := &recProposer{}
	c, err := New(Config{TTL: 10 * time.Second, Interval: time.Second, ProposeTimeout: time.Second}, lead, store, prop, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	step := func(applied uint64) {
		store.applied = applied
		c.tick(context.Background())
		now = now.Add(time.Second)
	}
	// An empty store: samples are taken but nothing is proposed.
	for i := range 12 {
		step(uint64(10 + i))
	}
	if len(prop.reaps) != 0 {
		t.Fatalf("reaped %v with no tombstones", prop.reaps)
	}
	// Losing leadership drops the samples.
	lead.leader = false
	step(30)
	if len(c.samples) != 0 {
		t.Fatalf("follower kept %d samples", len(c.samples))
	}
	// A delete at index 2 (applied index 40 when sampled first): nothing is
	// reaped for TTL, then exactly up to the index sampled TTL ago.
	lead.leader = true
	applyLog(t, f, 1, fsm.Command{Op: fsm.OpUpsert, Entry: &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: "a", Protocol: "http"}})
	applyLog(t, f, 2, fsm.Command{Op: fsm.OpDelete, Key: chain.KeyOf(chain.KindServiceDefaults, "a")})
	for i := range 10 {
		step(uint64(40 + i))
	}
	if len(prop.reaps) != 0 {
		t.Fatalf("reaped %v before a sample was TTL old", prop.reaps)
	}
	step(50)
	if len(prop.reaps) != 1 || prop.reaps[0] != 40 {
		t.Fatalf("reaps = %v, want [40] (the index sampled TTL ago)", prop.reaps)
	}
	if err := (Config{TTL: 0, Interval: 1, ProposeTimeout: 1}).Validate(); err == nil {
		t.Error("Validate accepted a zero TTL")
	}
}
