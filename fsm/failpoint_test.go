package fsm

import (
	"errors"
	"testing"

	"github.com/chainstore/chainstore/internal/failpoint"
)

// The failpoints in the snapshot path (internal/failpoint), with the error
// action. These tests enable process-wide failpoints, so they do not call
// t.Parallel: the testing package runs them before any parallel test of
// the package resumes, so no other snapshot sees the point.

func enableFailpoint(t *testing.T, name string) {
	t.Helper()
	if err := failpoint.Enable(name, "1*error"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { failpoint.Disable(name) })
}

func TestPersistFailpointCancelsTheSnapshot(t *testing.T) {
	h := populated(t)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	enableFailpoint(t, failpoint.FSMSnapshotPersist)
	sink := &memSink{}
	if err := snap.Persist(sink); !errors.Is(err, failpoint.ErrInjected) {
		t.Fatalf("Persist with %s=error = %v, want ErrInjected", failpoint.FSMSnapshotPersist, err)
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
	// 1*error: the next snapshot works again.
	if b := snapshotBytes(t, h.f); len(b) == 0 {
		t.Fatalf("snapshot after the failpoint is empty")
	}
}

func TestRestoreFailpointKeepsTheState(t *testing.T) {
	good := snapshotBytes(t, populated(t).f)
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("keep", "http"))
	enableFailpoint(t, failpoint.FSMSnapshotRestore)
	checkRestoreRejected(t, h.f, good, failpoint.ErrInjected)
	if err := restore(h.f, good); err != nil {
		t.Fatalf("Restore after the failpoint = %v", err)
	}
}
