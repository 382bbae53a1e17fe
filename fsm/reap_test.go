package fsm

import (
	"bytes"
	"errors"
	"testing"
)

// TestReapTombstones: reaping removes the tombstones at or below the
// index, never the newer ones; a reaped key's index never goes down (the
// reap floor); a blocked reader of a reaped key is not woken by a result
// with a lower index; the floor survives a snapshot round trip.
func TestReapTombstones(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("a", "http"))
	h.mustUpsert(serviceDefaults("b", "http"))
	h.mustUpsert(serviceDefaults("c", "http"))
	delA := h.del(sdKey("a")).Index
	delB := h.del(sdKey("b")).Index
	_, _, watchA := h.f.Store().Get(sdKey("a"))
	if n, oldest := h.f.Store().View().Tombstones(); n != 2 || oldest != delA {
		t.Fatalf("Tombstones() = %d, %d; want 2, %d", n, oldest, delA)
	}
	_, listBefore, _ := h.f.Store().List("service-defaults")

	if r := h.apply(Command{Op: OpReapTombstones, ReapIndex: delA}); !r.Applied || r.Err != nil {
		t.Fatalf("reap = %+v", r)
	}
	if n, oldest := h.f.Store().View().Tombstones(); n != 1 || oldest != delB {
		t.Errorf("after reaping up to %d: Tombstones() = %d, %d; want 1, %d", delA, n, oldest, delB)
	}
	if _, idx := h.get(sdKey("a")); idx != delA {
		t.Errorf("index of reaped key a = %d, want the reap floor %d", idx, delA)
	}
	if _, idx := h.get(sdKey("b")); idx != delB {
		t.Errorf("index of key b (tombstone kept) = %d, want %d", idx, delB)
	}
	if _, idx := h.get(sdKey("never")); idx != delA {
		t.Errorf("index of a key that never existed = %d, want the reap floor %d", idx, delA)
	}
	if _, listAfter, _ := h.f.Store().List("service-defaults"); listAfter != listBefore {
		t.Errorf("list index %d after reap, want %d (never goes down)", listAfter, listBefore)
	}
	// The leaf channel of a's tombstone fired, but a blocked reader
	// re-checks and finds index delA: not above its min index, so it keeps
	// waiting (rpc.blockingQuery); no ChangeSet was published.
	if !isClosed(watchA) {
		t.Error("the reaped tombstone's watch channel is still open")
	}

	// A reap index above the log's own index is capped at the log's index.
	h.mustUpsert(serviceDefaults("d", "http"))
	delD := h.del(sdKey("d")).Index
	h.apply(Command{Op: OpReapTombstones, ReapIndex: 1 << 40})
	if n, _ := h.f.Store().View().Tombstones(); n != 0 {
		t.Errorf("%d tombstones left after a full reap", n)
	}
	if got := h.f.Store().View().ReapFloor(); got != delD {
		t.Errorf("ReapFloor = %d, want %d", got, delD)
	}
	// Re-creating a reaped key moves its index above the floor.
	if idx := h.mustUpsert(serviceDefaults("a", "grpc")); idx <= delD {
		t.Errorf("re-created a at %d, not above the floor %d", idx, delD)
	}

	snap := snapshotBytes(t, h.f)
	h2 := newHarness(t)
	if err := restore(h2.f, snap); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := h2.f.Store().View().ReapFloor(); got != delD {
		t.Errorf("restored ReapFloor = %d, want %d", got, delD)
	}
	if h2.f.Store().Hash() != h.f.Store().Hash() {
		t.Error("restored store differs")
	}
	if again := snapshotBytes(t, h2.f); !bytes.Equal(again, snap) {
		t.Error("snapshot of the restored store differs from the original")
	}
}

func TestReapCommandEncoding(t *testing.T) {
	t.Parallel()
	b, err := EncodeCommand(Command{Op: OpReapTombstones, ReapIndex: 77})
	if err != nil {
		t.Fatal(err)
	}
	if Op(b[0])&IgnoreUnknownFlag == 0 {
		t.Error("reap command not flagged ignorable")
	}
	c, err := DecodeCommand(b)
	if err != nil || c.Op != OpReapTombstones || c.ReapIndex != 77 {
		t.Errorf("DecodeCommand = %+v, %v", c, err)
	}
	for _, bad := range []Command{{Op: OpReapTombstones}, {Op: OpReapTombstones, ReapIndex: 1, CASIndex: 2}, {Op: OpNoop, ReapIndex: 3}} {
		if _, err := EncodeCommand(bad); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("EncodeCommand(%+v) = %v, want ErrMalformedCommand", bad, err)
		}
	}
	for _, bad := range [][]byte{{byte(OpReapTombstones)}, {byte(OpReapTombstones), 0}, {byte(OpReapTombstones), 5, 5}} {
		if _, err := DecodeCommand(bad); !errors.Is(err, ErrMalformedCommand) {
			t.Errorf("DecodeCommand(%x) = %v, want ErrMalformedCommand", bad, err)
		}
	}
}
