package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
)

// ---- entry builders ----

func serviceDefaults(name, protocol string) *chain.ServiceConfigEntry {
	return &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: name, Protocol: protocol}
}

func proxyDefaults(protocol string) *chain.ProxyConfigEntry {
	return &chain.ProxyConfigEntry{
		Kind:   chain.KindProxyDefaults,
		Name:   chain.ProxyDefaultsName,
		Config: map[string]any{"protocol": protocol},
	}
}

func splitter(name string, splits ...chain.ServiceSplit) *chain.ServiceSplitterConfigEntry {
	return &chain.ServiceSplitterConfigEntry{Kind: chain.KindServiceSplitter, Name: name, Splits: splits}
}

// selfSplitter splits main 90/10 between two of its own namespaces, so only
// main's protocol matters.
func selfSplitter(name string) *chain.ServiceSplitterConfigEntry {
	return splitter(name, chain.ServiceSplit{Weight: 90, Namespace: "v1"}, chain.ServiceSplit{Weight: 10, Namespace: "v2"})
}

func resolver(name string, mod func(r *chain.ServiceResolverConfigEntry)) *chain.ServiceResolverConfigEntry {
	r := &chain.ServiceResolverConfigEntry{Kind: chain.KindServiceResolver, Name: name}
	if mod != nil {
		mod(r)
	}
	return r
}

func redirectTo(service, subset string) func(r *chain.ServiceResolverConfigEntry) {
	return func(r *chain.ServiceResolverConfigEntry) {
		r.Redirect = &chain.ServiceResolverRedirect{Service: service, ServiceSubset: subset}
	}
}

func withSubsets(names ...string) func(r *chain.ServiceResolverConfigEntry) {
	return func(r *chain.ServiceResolverConfigEntry) {
		r.Subsets = map[string]chain.ServiceResolverSubset{}
		for _, n := range names {
			r.Subsets[n] = chain.ServiceResolverSubset{Filter: `Service.Meta.version == "` + n + `"`}
		}
	}
}

func sdKey(name string) chain.Key { return chain.KeyOf(chain.KindServiceDefaults, name) }

// ---- FSM harness ----

// harness drives an FSM with consecutive Raft indexes, without Raft.
type harness struct {
	t    *testing.T
	f    *FSM
	next uint64 // index of the next log
}

func newHarness(t *testing.T, opts ...Option) *harness {
	t.Helper()
	return &harness{t: t, f: New(testLogger(t), opts...), next: 1}
}

func testLogger(t *testing.T) hclog.Logger {
	t.Helper()
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: io.Discard})
}

func encode(t *testing.T, c Command) []byte {
	t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatalf("EncodeCommand(%+v) = %v", c, err)
	}
	return b
}

// log returns a command log with the next index.
func (h *harness) log(data []byte) *raft.Log {
	l := &raft.Log{Index: h.next, Term: 1, Type: raft.LogCommand, Data: data}
	h.next++
	return l
}

// configLog returns a configuration log with the next index.
func (h *harness) configLog() *raft.Log {
	l := &raft.Log{Index: h.next, Term: 1, Type: raft.LogConfiguration}
	h.next++
	return l
}

func (h *harness) cmdLog(c Command) *raft.Log {
	h.t.Helper()
	return h.log(encode(h.t, c))
}

// apply applies one command and returns its result.
func (h *harness) apply(c Command) ApplyResult {
	h.t.Helper()
	return asResult(h.t, h.f.Apply(h.cmdLog(c)))
}

func asResult(t *testing.T, v any) ApplyResult {
	t.Helper()
	r, ok := v.(ApplyResult)
	if !ok {
		t.Fatalf("Apply returned %T (%v), want ApplyResult", v, v)
	}
	return r
}

func (h *harness) upsert(e chain.Entry) ApplyResult {
	h.t.Helper()
	return h.apply(Command{Op: OpUpsert, Entry: e})
}

// mustUpsert upserts e and fails the test unless it was applied.
func (h *harness) mustUpsert(e chain.Entry) uint64 {
	h.t.Helper()
	r := h.upsert(e)
	if !r.Applied || r.Err != nil {
		h.t.Fatalf("upsert %s/%s = %+v, want applied", e.GetKind(), e.GetName(), r)
	}
	return r.Index
}

func (h *harness) del(k chain.Key) ApplyResult {
	h.t.Helper()
	return h.apply(Command{Op: OpDelete, Key: k})
}

// get returns the stored entry at k (nil if absent) and its index.
func (h *harness) get(k chain.Key) (*StoredEntry, uint64) {
	se, idx, _ := h.f.Store().Get(k)
	return se, idx
}

// ---- misc ----

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

// snapshotBytes persists a snapshot of f and returns its bytes.
func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot() = %v", err)
	}
	defer snap.Release()
	return persist(t, snap)
}

func persist(t *testing.T, snap raft.FSMSnapshot) []byte {
	t.Helper()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist() = %v", err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("Persist left sink closed=%v cancelled=%v, want closed", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

func restore(f *FSM, b []byte) error {
	return f.Restore(io.NopCloser(bytes.NewReader(b)))
}

// isClosed reports whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// waitClosed fails the test unless ch closes within a deadline.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: channel not closed within 5s", what)
	}
}

// feedAfter returns the change-sets published after it, without blocking.
func feedAfter(it *FeedItem) []ChangeSet {
	var out []ChangeSet
	for isClosed(it.Ready()) {
		it = it.Next()
		out = append(out, it.Change())
	}
	return out
}

func wantGraphError(t *testing.T, err error, substr string) {
	t.Helper()
	var ge *chain.GraphError
	if !errors.As(err, &ge) {
		t.Fatalf("error = %v (%T), want *chain.GraphError", err, err)
	}
	if substr != "" && !strings.Contains(ge.Msg, substr) {
		t.Fatalf("graph error %q, want it to contain %q", ge.Msg, substr)
	}
}
