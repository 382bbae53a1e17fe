package fsm

import (
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/internal/testutil"
)

func TestFeedPublishesExactlyTheChangedKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	head := h.f.Feed().Head()
	if head.Change().Index != 0 || isClosed(head.Ready()) || head.Next() != nil {
		t.Fatalf("fresh feed head = %+v, want an open sentinel", head.Change())
	}

	h.mustUpsert(serviceDefaults("Web", "http")) // 1
	batch := []*raft.Log{
		h.cmdLog(upsertCmd(serviceDefaults("b", "http"))),                     // 2
		h.cmdLog(upsertCmd(serviceDefaults("a", "http"))),                     // 3
		h.cmdLog(upsertCmd(serviceDefaults("B", "grpc"))),                     // 4: same key as 2
		h.cmdLog(upsertCmd(selfSplitter("nope"))),                             // 5: rejected
		h.cmdLog(deleteCmd(chain.KindServiceRouter, "missing")),               // 6: no-op
		h.cmdLog(Command{Op: OpUpsertCAS, Entry: serviceDefaults("web", "")}), // 7: CAS fails
		h.cmdLog(deleteCmd(chain.KindServiceDefaults, "WEB")),                 // 8
		h.cmdLog(upsertCmd(selfSplitter("a"))),                                // 9
	}
	h.f.ApplyBatch(batch)
	// A batch that changes nothing publishes nothing.
	h.f.ApplyBatch([]*raft.Log{
		h.cmdLog(deleteCmd(chain.KindServiceDefaults, "web")), // 10: already gone
		h.configLog(), // 11
	})

	want := []ChangeSet{
		{Index: 1, Keys: []chain.Key{sdKey("web")}},
		{Index: 9, Keys: []chain.Key{sdKey("a"), sdKey("b"), sdKey("web"), chain.KeyOf(chain.KindServiceSplitter, "a")}},
	}
	if diff := cmp.Diff(want, feedAfter(head)); diff != "" {
		t.Fatalf("feed mismatch (-want +got):\n%s", diff)
	}
	if h.f.AppliedIndex() != 11 {
		t.Fatalf("AppliedIndex = %d, want 11", h.f.AppliedIndex())
	}
}

func TestFeedWakesAllReaders(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const readers = 8
	got := make(chan ChangeSet, readers)
	head := h.f.Feed().Head()
	for range readers {
		go func() {
			<-head.Ready()
			got <- head.Next().Change()
		}()
	}
	h.mustUpsert(serviceDefaults("x", ""))
	for range readers {
		select {
		case cs := <-got:
			if diff := cmp.Diff(ChangeSet{Index: 1, Keys: []chain.Key{sdKey("x")}}, cs); diff != "" {
				t.Fatalf("reader got (-want +got):\n%s", diff)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("a reader was not woken")
		}
	}
}

// TestFeedDoesNotRetainOldItems checks that items no reader references are
// garbage-collected: the feed itself only holds the newest item.
func TestFeedDoesNotRetainOldItems(t *testing.T) {
	t.Parallel()
	f := newFeed()
	collected := make(chan struct{})
	first := f.Head()
	runtime.AddCleanup(first, func(ch chan struct{}) { close(ch) }, collected)
	first = nil //nolint:ineffassign,wastedassign // drop the only reference
	for i := range 3 {
		f.publish(ChangeSet{Index: uint64(i + 1)})
	}
	testutil.Poll(t, 5*time.Second, "the unreferenced feed item to be garbage-collected", func() bool {
		runtime.GC()
		runtime.Gosched()
		return isClosed(collected)
	})
	if f.Head().Change().Index != 3 {
		t.Fatalf("Head().Change().Index = %d, want 3", f.Head().Change().Index)
	}
}
