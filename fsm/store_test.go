package fsm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

func TestGetWatchFiresOnlyForItsKey(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("web", "http"))
	h.mustUpsert(serviceDefaults("api", "http"))

	_, _, watchWeb := h.f.Store().Get(sdKey("web"))
	_, _, watchAPI := h.f.Store().Get(sdKey("api"))

	// Writes to other keys (same kind, other kinds, neighbours in the
	// radix tree) must not fire web's channel.
	h.mustUpsert(serviceDefaults("api", "grpc"))
	h.mustUpsert(serviceDefaults("webx", "http"))
	h.mustUpsert(serviceDefaults("we", "http"))
	h.mustUpsert(proxyDefaults("http"))
	h.mustUpsert(selfSplitter("web"))
	if isClosed(watchWeb) {
		t.Fatalf("web watch fired on writes to other keys")
	}
	if !isClosed(watchAPI) {
		t.Fatalf("api watch did not fire on a write to api")
	}

	h.mustUpsert(serviceDefaults("web", "http2"))
	if !isClosed(watchWeb) {
		t.Fatalf("web watch did not fire on a write to web")
	}

	// Delete fires too.
	_, _, watchAPI = h.f.Store().Get(sdKey("api"))
	if r := h.del(sdKey("api")); !r.Applied {
		t.Fatalf("delete api = %+v", r)
	}
	if !isClosed(watchAPI) {
		t.Fatalf("api watch did not fire on delete")
	}

	// A deleted key's watch is its tombstone: precise, fires on re-create.
	_, idx, watchTomb := h.f.Store().Get(sdKey("api"))
	if idx == 0 {
		t.Fatalf("Get(deleted api) index = 0, want tombstone index")
	}
	h.mustUpsert(serviceDefaults("apix", "http"))
	if isClosed(watchTomb) {
		t.Fatalf("tombstone watch fired on a write to another key")
	}
	h.mustUpsert(serviceDefaults("api", "http"))
	if !isClosed(watchTomb) {
		t.Fatalf("tombstone watch did not fire on re-create")
	}
}

func TestGetWatchForMissingKeyFiresOnCreate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("a", "http"))
	se, idx, watch := h.f.Store().Get(sdKey("new"))
	if se != nil || idx != 0 {
		t.Fatalf("Get(new) = %+v, %d, want nil, 0", se, idx)
	}
	h.mustUpsert(serviceDefaults("new", "http"))
	if !isClosed(watch) {
		t.Fatalf("watch on a missing key did not fire when it was created")
	}
}

func TestTombstones(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("web", "http")) // 1
	h.mustUpsert(serviceDefaults("other", ""))   // 2
	if r := h.del(sdKey("web")); !r.Applied {    // 3
		t.Fatalf("delete = %+v", r)
	}
	se, idx, _ := h.f.Store().Get(sdKey("web"))
	if se != nil || idx != 3 {
		t.Fatalf("Get(deleted) = %+v, %d, want nil, 3", se, idx)
	}
	v := h.f.Store().View()
	if got := v.KeyIndex(sdKey("WEB")); got != 3 {
		t.Fatalf("KeyIndex(deleted) = %d, want 3", got)
	}
	if got := v.KeyIndex(sdKey("never")); got != 0 {
		t.Fatalf("KeyIndex(never) = %d, want 0", got)
	}
	if got := v.KeyIndex(sdKey("other")); got != 2 {
		t.Fatalf("KeyIndex(other) = %d, want 2", got)
	}
	if v.GetEntry(sdKey("web")) != nil {
		t.Fatalf("GetEntry(deleted) != nil")
	}

	// Re-create: new CreateIndex, tombstone gone.
	h.mustUpsert(serviceDefaults("web", "tcp")) // 4
	se, idx, _ = h.f.Store().Get(sdKey("web"))
	if se == nil || se.CreateIndex != 4 || se.ModifyIndex != 4 || idx != 4 {
		t.Fatalf("Get(re-created) = %+v, %d, want create=modify=4", se, idx)
	}
	n := 0
	it, err := h.f.Store().View().txn.Get(tableTombstones, indexID)
	if err != nil {
		t.Fatal(err)
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	if n != 0 {
		t.Fatalf("%d tombstones after re-create, want 0", n)
	}
}

func TestListIndexAndWatch(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	s := h.f.Store()
	es, idx, _ := s.List(chain.KindServiceDefaults)
	if len(es) != 0 || idx != 0 {
		t.Fatalf("List on empty store = %d entries, index %d", len(es), idx)
	}
	h.mustUpsert(serviceDefaults("b", "http")) // 1
	h.mustUpsert(serviceDefaults("a", "http")) // 2
	h.mustUpsert(proxyDefaults("http"))        // 3
	es, idx, watchSD := s.List(chain.KindServiceDefaults)
	var names []string
	for _, e := range es {
		names = append(names, e.Entry.GetName())
	}
	if diff := cmp.Diff([]string{"a", "b"}, names); diff != "" || idx != 2 {
		t.Fatalf("List(service-defaults) = %v index %d, want [a b] index 2 (diff %s)", names, idx, diff)
	}
	_, pidx, watchPD := s.List(chain.KindProxyDefaults)
	if pidx != 3 {
		t.Fatalf("List(proxy-defaults) index = %d, want 3", pidx)
	}

	// A write to another kind neither moves the index nor fires the watch.
	h.mustUpsert(selfSplitter("a")) // 4
	if _, idx, _ := s.List(chain.KindServiceDefaults); idx != 2 {
		t.Fatalf("List(service-defaults) index = %d after splitter write, want 2", idx)
	}
	if isClosed(watchSD) || isClosed(watchPD) {
		t.Fatalf("list watch fired on a write to another kind")
	}

	// Rejected and no-op writes do not move it either.
	h.del(sdKey("missing"))                                                    // 5
	h.apply(Command{Op: OpUpsertCAS, Entry: serviceDefaults("a", "tcp")})      // 6: CAS fails
	if r := h.upsert(serviceDefaults("a", "tcp")); r.Err == nil || r.Applied { // 7: graph error
		t.Fatalf("downgrade under splitter = %+v, want graph error", r)
	}
	if _, idx, _ := s.List(chain.KindServiceDefaults); idx != 2 || isClosed(watchSD) {
		t.Fatalf("no-op writes moved the list index to %d or fired the watch", idx)
	}

	// Delete moves it (and stays monotonic although the max entry is gone).
	h.del(chain.KeyOf(chain.KindServiceSplitter, "a")) // 8
	h.del(sdKey("a"))                                  // 9
	es, idx, _ = s.List("SERVICE-DEFAULTS")
	if len(es) != 1 || idx != 9 {
		t.Fatalf("List after delete = %d entries index %d, want 1 entry index 9", len(es), idx)
	}
	if !isClosed(watchSD) {
		t.Fatalf("list watch did not fire on delete")
	}

	// kind "" lists everything with the max index.
	es, idx, _ = s.List("")
	if len(es) != 2 || idx != 9 {
		t.Fatalf("List(\"\") = %d entries index %d, want 2 index 9", len(es), idx)
	}
}

func TestViewGraphStore(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(proxyDefaults("http"))
	h.mustUpsert(splitter("Top", chain.ServiceSplit{Weight: 50, Service: "Shared"}, chain.ServiceSplit{Weight: 50, Service: "b"}))
	h.mustUpsert(resolver("b", redirectTo("shared", "")))
	h.mustUpsert(resolver("shared", nil))
	h.mustUpsert(serviceDefaults("plain", "http"))
	v := h.f.Store().View()

	if diff := cmp.Diff([]string{"b", "top"}, v.Referrers("SHARED")); diff != "" {
		t.Errorf("Referrers(SHARED) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"top"}, v.Referrers("b")); diff != "" {
		t.Errorf("Referrers(b) mismatch (-want +got):\n%s", diff)
	}
	if got := v.Referrers("plain"); len(got) != 0 {
		t.Errorf("Referrers(plain) = %v, want none", got)
	}
	if diff := cmp.Diff([]string{"b", "shared", "top"}, v.ChainNames()); diff != "" {
		t.Errorf("ChainNames mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"b", "shared", "top"}, chain.AffectedChains(v, sdKey("shared"))); diff != "" {
		t.Errorf("AffectedChains(shared) mismatch (-want +got):\n%s", diff)
	}

	// The link index follows replacements.
	h.mustUpsert(splitter("top", chain.ServiceSplit{Weight: 100, Service: "b"}))
	v = h.f.Store().View()
	if diff := cmp.Diff([]string{"b"}, v.Referrers("shared")); diff != "" {
		t.Errorf("Referrers(shared) after replace mismatch (-want +got):\n%s", diff)
	}
	// And the old view is frozen.
	if v.Index() != 6 {
		t.Errorf("View.Index = %d, want 6", v.Index())
	}
}

func TestWaitForIndex(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("a", "")) // 1

	if err := h.f.WaitForIndex(context.Background(), 1); err != nil {
		t.Fatalf("WaitForIndex(applied) = %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := h.f.WaitForIndex(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForIndex(future) with timeout = %v, want DeadlineExceeded", err)
	}

	done := make(chan error, 1)
	go func() { done <- h.f.WaitForIndex(context.Background(), 3) }()
	h.mustUpsert(serviceDefaults("b", "")) // 2: not enough
	select {
	case err := <-done:
		t.Fatalf("WaitForIndex(3) returned %v at applied index 2", err)
	default:
	}
	h.mustUpsert(serviceDefaults("c", "")) // 3
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitForIndex(3) = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("WaitForIndex(3) still blocked after index 3 was applied")
	}
}

// TestConcurrentReadersAndPersist exercises every read path, Persist and
// the feed concurrently with Apply, for the race detector.
func TestConcurrentReadersAndPersist(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(proxyDefaults("http"))
	const writes = 200
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	reader := func(fn func()) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				fn()
			}
		}()
	}
	reader(func() {
		s := h.f.Store()
		s.Get(sdKey("s1"))
		s.List(chain.KindServiceSplitter)
		v := s.View()
		v.ChainNames()
		v.Referrers("s1")
		_ = v.Index()
	})
	reader(func() { _ = h.f.Store().Hash() })
	shared := h.f.Store().View() // one frozen view read by two goroutines
	for range 2 {
		reader(func() {
			if shared.GetEntry(chain.KeyOf(chain.KindProxyDefaults, "global")) == nil || len(shared.ChainNames()) != 0 {
				t.Errorf("shared frozen view changed")
			}
		})
	}
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	wantHash := h.f.Store().Hash()
	feedDone := make(chan int)
	head := h.f.Feed().Head()
	go func() {
		it, n := head, 0
		for n < writes {
			<-it.Ready()
			it = it.Next()
			n += len(it.Change().Keys)
		}
		feedDone <- n
	}()
	persisted := make(chan []byte, 1)
	go func() {
		var sink memSink
		if err := snap.Persist(&sink); err != nil {
			t.Errorf("Persist = %v", err)
		}
		persisted <- sink.Bytes()
	}()
	for i := range writes {
		h.mustUpsert(splitter("s"+string(rune('a'+i%26))+string(rune('a'+i/26)), chain.ServiceSplit{Weight: 100, Service: "x"}))
	}
	if err := h.f.WaitForIndex(ctx, h.next-1); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-feedDone:
		if n != writes {
			t.Errorf("feed reader saw %d keys, want %d", n, writes)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("feed reader did not see all writes")
	}
	b := <-persisted
	cancel()
	wg.Wait()

	// The snapshot taken before the writes restores to the state at that time.
	f2 := New(nil)
	if err := restore(f2, b); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if f2.Store().Hash() != wantHash {
		t.Fatalf("snapshot persisted during writes does not restore the state at snapshot time")
	}
}
