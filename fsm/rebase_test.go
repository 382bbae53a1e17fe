package fsm

import (
	"bytes"
	"errors"
	"testing"
)

// TestRebaseSnapshot: every index of the rebased state is the new index;
// a key the current state holds but the snapshot does not reads as
// deleted at that index; the result restores cleanly; bad input is
// refused.
func TestRebaseSnapshot(t *testing.T) {
	t.Parallel()
	old := newHarness(t)
	old.mustUpsert(serviceDefaults("a", "http"))
	old.mustUpsert(serviceDefaults("gone", "http"))
	old.del(sdKey("gone"))
	snap := snapshotBytes(t, old.f)

	cur := newHarness(t)
	for range 5 {
		cur.mustUpsert(serviceDefaults("a", "grpc"))
	}
	cur.mustUpsert(serviceDefaults("late", "http"))
	const index = 5000
	var out bytes.Buffer
	sum, err := RebaseSnapshot(bytes.NewReader(snap), &out, index, cur.f.Store().View())
	if err != nil {
		t.Fatalf("RebaseSnapshot: %v", err)
	}
	if sum.Index != index || sum.Entries["service-defaults"] != 1 || sum.Tombstones != 2 {
		t.Errorf("summary = %+v, want index %d, 1 entry, 2 tombstones (gone, late)", sum, index)
	}
	if err := restore(cur.f, out.Bytes()); err != nil {
		t.Fatalf("restore rebased: %v", err)
	}
	if got := cur.f.AppliedIndex(); got != index {
		t.Errorf("applied index %d, want %d", got, index)
	}
	se, idx := cur.get(sdKey("a"))
	if se == nil || idx != index || se.CreateIndex != 1 {
		t.Errorf("a = %+v at %d, want the snapshot's entry at %d (CreateIndex 1)", se, idx, index)
	}
	for _, k := range []string{"gone", "late", "never"} {
		if se, idx := cur.get(sdKey(k)); se != nil || idx != index {
			t.Errorf("%s = %+v at %d, want absent at %d", k, se, idx, index)
		}
	}
	if _, li, _ := cur.f.Store().List("service-defaults"); li != index {
		t.Errorf("list index %d, want %d", li, index)
	}

	if _, err := RebaseSnapshot(bytes.NewReader(snap[:len(snap)-3]), new(bytes.Buffer), index, nil); !errors.Is(err, ErrBadSnapshot) {
		t.Errorf("truncated snapshot: %v, want ErrBadSnapshot", err)
	}
	if _, err := RebaseSnapshot(bytes.NewReader(snap), new(bytes.Buffer), 0, nil); err == nil {
		t.Error("index 0 accepted")
	}
	if s, err := InspectSnapshot(bytes.NewReader(snap)); err != nil || s.Entries["service-defaults"] != 1 || s.Tombstones != 1 {
		t.Errorf("InspectSnapshot = %+v, %v", s, err)
	}
}
