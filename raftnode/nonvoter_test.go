package raftnode

import "testing"

// TestAddNonvoter: a non-voter is added without a vote, a repeat is a
// no-op, AddVoter promotes it, and AddNonvoter never demotes a voter.
func TestAddNonvoter(t *testing.T) {
	c := newTestCluster(t, 3, nil, testHooks{})
	l := c.waitReadyLeader()
	suffrage := func(id string) (present, voter bool) {
		t.Helper()
		servers, err := l.node.Servers()
		if err != nil {
			t.Fatalf("Servers: %v", err)
		}
		for _, s := range servers {
			if s.ID == id {
				return true, s.Voter
			}
		}
		return false, false
	}
	if err := l.node.AddNonvoter("ghost", "127.0.0.1:1"); err != nil {
		t.Fatalf("AddNonvoter(ghost): %v", err)
	}
	if present, voter := suffrage("ghost"); !present || voter {
		t.Fatalf("ghost present=%v voter=%v, want a non-voter", present, voter)
	}
	_, idx, _ := l.node.configuration()
	if err := l.node.AddNonvoter("ghost", "127.0.0.1:1"); err != nil {
		t.Fatalf("repeat AddNonvoter: %v", err)
	}
	if _, again, _ := l.node.configuration(); again != idx {
		t.Errorf("repeat AddNonvoter changed the configuration index %d -> %d", idx, again)
	}
	if err := l.node.AddVoter("ghost", "127.0.0.1:1"); err != nil {
		t.Fatalf("AddVoter(ghost): %v", err)
	}
	if err := l.node.AddNonvoter("ghost", "127.0.0.1:1"); err != nil {
		t.Fatalf("AddNonvoter of a voter: %v", err)
	}
	if _, voter := suffrage("ghost"); !voter {
		t.Error("AddNonvoter demoted a voter")
	}
	// Another ID at the ghost's address replaces the stale entry.
	if err := l.node.AddNonvoter("ghost2", "127.0.0.1:1"); err != nil {
		t.Fatalf("AddNonvoter(ghost2): %v", err)
	}
	if present, _ := suffrage("ghost"); present {
		t.Error("the stale ghost entry at the same address is still there")
	}
	if err := l.node.AddNonvoter("", "x:1"); err == nil {
		t.Error("AddNonvoter with an empty ID succeeded")
	}
}
