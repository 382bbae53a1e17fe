package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
)

// populated returns a harness with entries of every kind, a tombstone and
// a few rejected commands.
func populated(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.mustUpsert(proxyDefaults("http"))
	h.mustUpsert(serviceDefaults("web", "http"))
	h.mustUpsert(serviceDefaults("gone", "tcp"))
	h.mustUpsert(resolver("web", withSubsets("v1", "v2")))
	h.mustUpsert(splitter("web", chain.ServiceSplit{Weight: 50, ServiceSubset: "v1"}, chain.ServiceSplit{Weight: 50, ServiceSubset: "v2"}))
	h.mustUpsert(&chain.ServiceRouterConfigEntry{
		Kind: chain.KindServiceRouter, Name: "API",
		Routes: []chain.ServiceRoute{{
			Match:       &chain.ServiceRouteMatch{HTTP: &chain.ServiceRouteHTTPMatch{PathPrefix: "/web"}},
			Destination: &chain.ServiceRouteDestination{Service: "web", RequestTimeout: chain.Duration(1500e6)},
		}},
	})
	h.del(sdKey("gone"))
	h.upsert(selfSplitter("nohttp-but-proxy-is-http")) // accepted: proxy-defaults http
	h.upsert(serviceDefaults("web", "tcp"))            // rejected
	return h
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	h := populated(t)
	b := snapshotBytes(t, h.f)

	f2 := New(nil)
	if err := restore(f2, b); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	if got, want := f2.Store().Hash(), h.f.Store().Hash(); got != want {
		t.Fatalf("restored Hash = %s, want %s", got, want)
	}
	if got, want := f2.AppliedIndex(), h.f.AppliedIndex(); got != want {
		t.Fatalf("restored AppliedIndex = %d, want %d", got, want)
	}
	if got, want := f2.Store().View().Index(), h.f.AppliedIndex(); got != want {
		t.Fatalf("restored View.Index = %d, want %d", got, want)
	}
	for _, k := range []chain.Key{sdKey("web"), sdKey("gone"), chain.KeyOf(chain.KindServiceRouter, "api"), sdKey("never")} {
		se1, i1, _ := h.f.Store().Get(k)
		se2, i2, _ := f2.Store().Get(k)
		if i1 != i2 || (se1 == nil) != (se2 == nil) {
			t.Fatalf("Get(%s): original (%v, %d), restored (%v, %d)", k, se1, i1, se2, i2)
		}
		if se1 != nil {
			if diff := cmp.Diff(stored{se1.Entry, se1.CreateIndex, se1.ModifyIndex}, stored{se2.Entry, se2.CreateIndex, se2.ModifyIndex}); diff != "" {
				t.Fatalf("Get(%s) mismatch (-original +restored):\n%s", k, diff)
			}
		}
	}
	if diff := cmp.Diff(listIndexes(h.f.Store()), listIndexes(f2.Store())); diff != "" {
		t.Fatalf("list indexes mismatch (-original +restored):\n%s", diff)
	}
	if diff := cmp.Diff(h.f.Store().View().Referrers("web"), f2.Store().View().Referrers("web")); diff != "" {
		t.Fatalf("link index mismatch (-original +restored):\n%s", diff)
	}
	// Snapshots are deterministic: the restored FSM snapshots to the same bytes.
	if !bytes.Equal(b, snapshotBytes(t, f2)) {
		t.Fatalf("snapshot of restored FSM differs from the original snapshot")
	}
	// Writes keep working on the restored store, with graph validation.
	h2 := &harness{t: t, f: f2, next: f2.AppliedIndex() + 1}
	if r := h2.upsert(serviceDefaults("web", "tcp")); r.Err == nil {
		t.Fatalf("restored store accepted a write that breaks a chain")
	}
	if r := h2.upsert(serviceDefaults("gone", "http")); !r.Applied {
		t.Fatalf("re-create after restore = %+v", r)
	}
}

func TestHashEqualAcrossReplicas(t *testing.T) {
	t.Parallel()
	a, b := populated(t), populated(t)
	if a.f.Store().Hash() != b.f.Store().Hash() {
		t.Fatalf("two replicas applying the same log hash differently")
	}
	// Non-changing logs do not change the hash; a real change does.
	before := b.f.Store().Hash()
	b.apply(Command{Op: OpNoop})
	b.del(sdKey("never"))
	if b.f.Store().Hash() != before {
		t.Fatalf("no-op logs changed the hash")
	}
	b.mustUpsert(serviceDefaults("x", ""))
	if b.f.Store().Hash() == before {
		t.Fatalf("a write did not change the hash")
	}
}

func TestRestoreAbandonsOldStoreAndPublishesReset(t *testing.T) {
	t.Parallel()
	src := populated(t)
	b := snapshotBytes(t, src.f)

	h := newHarness(t)
	h.mustUpsert(serviceDefaults("web", "grpc"))
	old := h.f.Store()
	_, _, watch := old.Get(sdKey("web"))
	feed := h.f.Feed().Head()

	// A blocked reader in the style of a blocking query.
	woke := make(chan string, 1)
	go func() {
		select {
		case <-watch:
			woke <- "watch"
		case <-old.AbandonCh():
			woke <- "abandon"
		}
	}()

	if err := restore(h.f, b); err != nil {
		t.Fatalf("Restore = %v", err)
	}
	waitClosed(t, old.AbandonCh(), "old AbandonCh")
	if got := <-woke; got != "abandon" {
		t.Fatalf("blocked reader woke on %s, want abandon", got)
	}
	if h.f.Store() == old {
		t.Fatalf("Store() still returns the old store")
	}
	if isClosed(h.f.Store().AbandonCh()) {
		t.Fatalf("new store is already abandoned")
	}
	want := []ChangeSet{{Index: src.f.AppliedIndex(), Reset: true}}
	if diff := cmp.Diff(want, feedAfter(feed)); diff != "" {
		t.Fatalf("feed after restore mismatch (-want +got):\n%s", diff)
	}
	if h.f.AppliedIndex() != src.f.AppliedIndex() {
		t.Fatalf("AppliedIndex = %d, want %d", h.f.AppliedIndex(), src.f.AppliedIndex())
	}
	if h.f.Store().Hash() != src.f.Store().Hash() {
		t.Fatalf("restored hash differs from source")
	}
}

// corrupt returns b with the byte at i xor-ed.
func corrupt(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x5a
	return c
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	t.Parallel()
	good := snapshotBytes(t, populated(t).f)
	badVersion := bytes.Clone(good)
	binary.BigEndian.PutUint16(badVersion[8:10], 99)

	cases := map[string]struct {
		in   []byte
		want error
	}{
		"Empty":           {in: nil, want: ErrBadSnapshot},
		"Garbage":         {in: []byte("definitely not a snapshot, but long enough"), want: ErrBadSnapshot},
		"HeaderOnly":      {in: good[:18], want: ErrBadSnapshot},
		"Truncated":       {in: good[:len(good)/2], want: ErrBadSnapshot},
		"NoEndRecord":     {in: good[:len(good)-8], want: ErrBadSnapshot},
		"LastByteMissing": {in: good[:len(good)-1], want: ErrBadSnapshot},
		"Trailing":        {in: append(bytes.Clone(good), 0), want: ErrBadSnapshot},
		"FlippedIndex":    {in: corrupt(good, 12), want: ErrBadSnapshot},
		"FlippedMiddle":   {in: corrupt(good, len(good)/2), want: ErrBadSnapshot},
		"FlippedCRC":      {in: corrupt(good, len(good)-1), want: ErrBadSnapshot},
		"BadVersion":      {in: badVersion, want: ErrUnsupportedSnapshotVersion},
		"UnknownRecord":   {in: append(append(bytes.Clone(good[:18]), 7, 0), good[18:]...), want: ErrBadSnapshot},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mustUpsert(serviceDefaults("keep", "http"))
			checkRestoreRejected(t, h.f, tc.in, tc.want)
		})
	}
}

// checkRestoreRejected restores b into f and checks that it fails with want
// (nil: any error) and leaves f exactly as it was.
func checkRestoreRejected(t *testing.T, f *FSM, b []byte, want error) {
	t.Helper()
	s, hash, applied, feed := f.Store(), f.Store().Hash(), f.AppliedIndex(), f.Feed().Head()
	err := restore(f, b)
	if err == nil {
		t.Fatalf("Restore(%d bytes) succeeded, want error", len(b))
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("Restore = %v, want %v", err, want)
	}
	if f.Store() != s || f.Store().Hash() != hash || f.AppliedIndex() != applied {
		t.Fatalf("failed Restore changed the FSM")
	}
	if isClosed(s.AbandonCh()) {
		t.Fatalf("failed Restore abandoned the current store")
	}
	if got := feedAfter(feed); len(got) != 0 {
		t.Fatalf("failed Restore published %v", got)
	}
}

func TestRestoreRejectsEveryTruncation(t *testing.T) {
	t.Parallel()
	good := snapshotBytes(t, populated(t).f)
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("keep", "http"))
	for n := range len(good) {
		checkRestoreRejected(t, h.f, good[:n], ErrBadSnapshot)
	}
}

func TestPersistCancelsSinkOnError(t *testing.T) {
	t.Parallel()
	h := populated(t)
	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &failingSink{}
	if err := snap.Persist(sink); err == nil {
		t.Fatalf("Persist to a failing sink succeeded")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("sink cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
}

type failingSink struct{ memSink }

var errSinkFull = errors.New("sink full")

func (s *failingSink) Write([]byte) (int, error) { return 0, errSinkFull }
