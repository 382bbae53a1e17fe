package raftnode

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
)

// TestClosableStableDropsWritesAfterClose: after shutdown closed it, a late
// heartbeat's term write must not fail (hashicorp/raft panics on that), and
// must not reach the closed store.
func TestClosableStableDropsWritesAfterClose(t *testing.T) {
	t.Parallel()
	inner := raft.NewInmemStore()
	s := &closableStable{StableStore: inner}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatalf("SetUint64 before close: %v", err)
	}
	if got, err := s.GetUint64([]byte("CurrentTerm")); err != nil || got != 3 {
		t.Fatalf("GetUint64 before close = %d, %v; want 3, nil", got, err)
	}
	s.close()
	if err := s.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("SetUint64 after close = %v, want nil (dropped)", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("x")); err != nil {
		t.Fatalf("Set after close = %v, want nil (dropped)", err)
	}
	if got, _ := inner.GetUint64([]byte("CurrentTerm")); got != 3 {
		t.Fatalf("the closed store got a write: CurrentTerm = %d, want 3", got)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); !errors.Is(err, errStableClosed) {
		t.Fatalf("GetUint64 after close = %v, want errStableClosed", err)
	}
	if _, err := s.Get([]byte("LastVoteCand")); !errors.Is(err, errStableClosed) {
		t.Fatalf("Get after close = %v, want errStableClosed", err)
	}
}
