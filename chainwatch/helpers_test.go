package chainwatch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
)

// testStore drives a real fsm.FSM with ApplyBatch, as raft would.
type testStore struct {
	t     testing.TB
	f     *fsm.FSM
	index uint64 // last Raft index handed to the FSM
	mu    sync.Mutex
}

func newTestStore(tb testing.TB) *testStore {
	tb.Helper()
	return &testStore{t: tb, f: fsm.New(nil)}
}

// upsert builds an upsert command from a JSON or HCL document.
func upsert(tb testing.TB, doc string) fsm.Command {
	tb.Helper()
	e, err := chain.DecodeEntry([]byte(doc))
	if err != nil {
		tb.Fatalf("DecodeEntry(%s): %v", doc, err)
	}
	if err := chain.Prepare(e); err != nil {
		tb.Fatalf("Prepare(%s): %v", doc, err)
	}
	return fsm.Command{Op: fsm.OpUpsert, Entry: e, Key: chain.KeyOf(e.GetKind(), e.GetName())}
}

func del(kind chain.Kind, name string) fsm.Command {
	return fsm.Command{Op: fsm.OpDelete, Key: chain.KeyOf(kind, name)}
}

// applyBatch hands cmds to the FSM as one Raft batch and returns the
// results and the batch's last index.
func (s *testStore) applyBatch(cmds ...fsm.Command) ([]fsm.ApplyResult, uint64) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	logs := make([]*raft.Log, len(cmds))
	for i, c := range cmds {
		data, err := fsm.EncodeCommand(c)
		if err != nil {
			s.t.Fatalf("EncodeCommand: %v", err)
		}
		s.index++
		logs[i] = &raft.Log{Index: s.index, Term: 1, Type: raft.LogCommand, Data: data}
	}
	out := s.f.ApplyBatch(logs)
	res := make([]fsm.ApplyResult, len(out))
	for i, r := range out {
		switch v := r.(type) {
		case fsm.ApplyResult:
			res[i] = v
		case *fsm.ApplyResult:
			res[i] = *v
		default:
			s.t.Fatalf("unexpected apply response %T", r)
		}
	}
	return res, s.index
}

// apply applies cmds as one batch, fails the test on a rejected command,
// and returns the batch index.
func (s *testStore) apply(cmds ...fsm.Command) uint64 {
	s.t.Helper()
	res, idx := s.applyBatch(cmds...)
	for i, r := range res {
		if r.Err != nil {
			s.t.Fatalf("command %d rejected: %v", i, r.Err)
		}
	}
	return idx
}

// put applies one document per batch-of-one and returns its index.
func (s *testStore) put(doc string) uint64 {
	s.t.Helper()
	return s.apply(upsert(s.t, doc))
}

// snapshot persists the FSM's current state.
func (s *testStore) snapshot() []byte {
	s.t.Helper()
	snap, err := s.f.Snapshot()
	if err != nil {
		s.t.Fatalf("Snapshot: %v", err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		s.t.Fatalf("Persist: %v", err)
	}
	snap.Release()
	return sink.Bytes()
}

func (s *testStore) restore(data []byte) {
	s.t.Helper()
	if err := s.f.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		s.t.Fatalf("Restore: %v", err)
	}
}

type memSink struct{ bytes.Buffer }

func (*memSink) ID() string    { return "mem" }
func (*memSink) Cancel() error { return nil }
func (*memSink) Close() error  { return nil }

// compileCounter counts compiles per chain service.
type compileCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *compileCounter) hook(k ChainKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[k.Service]++
}

func (c *compileCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// startHub runs a hub over s until the test ends.
func startHub(tb testing.TB, s *testStore, mod func(*Config), opts ...Option) *Hub {
	tb.Helper()
	cfg := DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg, FSMSource(s.f), nil, opts...)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			tb.Errorf("Run: %v", err)
		}
	})
	return h
}

func testWatcherConfig() WatcherConfig {
	c := DefaultWatcherConfig()
	c.ProgressInterval = time.Hour
	c.ResumeWait = 2 * time.Second
	return c
}

func newTestWatcher(tb testing.TB, h *Hub) *Watcher {
	tb.Helper()
	w, err := NewWatcher(h, testWatcherConfig())
	if err != nil {
		tb.Fatalf("NewWatcher: %v", err)
	}
	tb.Cleanup(w.Close)
	return w
}

// next returns w's next event, failing the test after 5 s.
func next(tb testing.TB, w *Watcher) Event {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := w.Next(ctx)
	if err != nil {
		tb.Fatalf("Watcher.Next: %v", err)
	}
	return ev
}

// nextUpdate returns the next event and fails unless it is an update of id.
func nextUpdate(tb testing.TB, w *Watcher, id uint64) *Version {
	tb.Helper()
	ev := next(tb, w)
	if ev.Kind != EventUpdate || ev.ID != id {
		tb.Fatalf("next event = %s", describe(ev))
	}
	return ev.Version
}

func describe(ev Event) string {
	s := fmt.Sprintf("%s id=%d", ev.Kind, ev.ID)
	if ev.Version != nil {
		s += fmt.Sprintf(" index=%d hash=%s err=%q", ev.Version.Index, ev.Version.Hash, ev.Version.Err)
	}
	if ev.Kind == EventProgress {
		s += fmt.Sprintf(" index=%d", ev.Index)
	}
	if ev.Err != nil {
		s += " err=" + ev.Err.Error()
	}
	return s
}

func mustSubscribe(tb testing.TB, w *Watcher, id uint64, service string) {
	tb.Helper()
	if err := w.Add(context.Background(), id, ChainKey{Service: service}, 0, ""); err != nil {
		tb.Fatalf("Add(%d, %s): %v", id, service, err)
	}
	if ev := next(tb, w); ev.Kind != EventSubscribed || ev.ID != id {
		tb.Fatalf("after Add(%d): event %s, want subscribed", id, describe(ev))
	}
}

// chainOf decodes a version's chain JSON.
func chainOf(tb testing.TB, v *Version) *chain.CompiledChain {
	tb.Helper()
	if v.Err != "" {
		tb.Fatalf("version %d has compile error %q", v.Index, v.Err)
	}
	var c chain.CompiledChain
	if err := json.Unmarshal(v.Chain, &c); err != nil {
		tb.Fatalf("decode chain: %v", err)
	}
	return &c
}

func waitHub(tb testing.TB, h *Hub, idx uint64) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.WaitIndex(ctx, idx); err != nil {
		tb.Fatalf("WaitIndex(%d): %v", idx, err)
	}
}

// Entry documents used by the tests.
func resolverDoc(name string, timeout string) string {
	return fmt.Sprintf(`{"Kind":"service-resolver","Name":%q,"ConnectTimeout":%q}`, name, timeout)
}

func defaultsDoc(name, protocol string) string {
	return fmt.Sprintf(`{"Kind":"service-defaults","Name":%q,"Protocol":%q}`, name, protocol)
}

func proxyDefaultsDoc(protocol string) string {
	return fmt.Sprintf(`{"Kind":"proxy-defaults","Name":"global","Config":{"protocol":%q}}`, protocol)
}
