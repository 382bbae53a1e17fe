package chainwatch

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	"github.com/chainstore/chainstore/internal/testutil"
)

func TestOneCompilePerAffectedChainPerBatch(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var counter compileCounter
	h := startHub(t, s, nil, WithCompileHook(counter.hook))

	const watchers = 25
	ws := make([]*Watcher, watchers)
	for i := range ws {
		ws[i] = newTestWatcher(t, h)
		mustSubscribe(t, ws[i], 1, "web")
		if v := nextUpdate(t, ws[i], 1); v.Index != 0 || v.Err != "" {
			t.Fatalf("watcher %d: first version index %d err %q, want index 0 and no error", i, v.Index, v.Err)
		}
	}
	if diff := cmp.Diff(map[string]int{"web": 1}, counter.snapshot()); diff != "" {
		t.Fatalf("compiles after %d subscribes (-want +got):\n%s", watchers, diff)
	}

	// One batch touching two keys web's chain reads: one compile.
	idx := s.apply(upsert(t, resolverDoc("web", "7s")), upsert(t, defaultsDoc("web", "tcp")))
	for i, w := range ws {
		v := nextUpdate(t, w, 1)
		if v.Index != idx {
			t.Errorf("watcher %d: index %d, want %d", i, v.Index, idx)
		}
		got := chainOf(t, v).Nodes["resolver:web.default.dc1"].Resolver.ConnectTimeout
		if got != chain.Duration(7*time.Second) {
			t.Errorf("watcher %d: connect timeout %v, want 7s", i, got)
		}
	}
	if diff := cmp.Diff(map[string]int{"web": 2}, counter.snapshot()); diff != "" {
		t.Errorf("compiles after one batch (-want +got):\n%s", diff)
	}
	if st := h.Stats(); st.Publishes != 2 || st.Compiles != 2 {
		t.Errorf("Stats = %+v, want 2 compiles and 2 publishes", st)
	}
}

func TestUnrelatedWriteSendsNothing(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var counter compileCounter
	h := startHub(t, s, nil, WithCompileHook(counter.hook))
	w := newTestWatcher(t, h)
	mustSubscribe(t, w, 1, "web")
	nextUpdate(t, w, 1)

	s.put(defaultsDoc("api", "http"))
	unrelated := s.apply(upsert(t, resolverDoc("db", "2s")), upsert(t, resolverDoc("api", "3s")))
	waitHub(t, h, unrelated)
	if diff := cmp.Diff(map[string]int{"web": 1}, counter.snapshot()); diff != "" {
		t.Errorf("compiles after unrelated writes (-want +got):\n%s", diff)
	}
	// The next message the watcher gets is the one for web's own write:
	// nothing was sent for the unrelated ones.
	related := s.put(resolverDoc("web", "4s"))
	if v := nextUpdate(t, w, 1); v.Index != related {
		t.Errorf("first message after unrelated writes has index %d, want %d (web's write)", v.Index, related)
	}
}

func TestDependentChainsRecompile(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	// web redirects to api, so web's chain reads api's resolver; db is
	// independent.
	s.put(`{"Kind":"service-resolver","Name":"web","Redirect":{"Service":"api"}}`)
	var counter compileCounter
	h := startHub(t, s, func(c *Config) { c.WarmTTL = time.Hour }, WithCompileHook(counter.hook))

	w := newTestWatcher(t, h)
	for i, svc := range []string{"web", "api", "db"} {
		id := uint64(i + 1)
		mustSubscribe(t, w, id, svc)
		nextUpdate(t, w, id)
	}
	mustSubscribe(t, w, 9, "marker")
	nextUpdate(t, w, 9)
	mkTimeout := 1
	// "idle" was watched once and is now only warm.
	idle, err := h.Subscribe(context.Background(), ChainKey{Service: "idle"}, 0)
	if err != nil {
		t.Fatalf("Subscribe(idle): %v", err)
	}
	idle.Close()
	want := map[string]int{"web": 1, "api": 1, "db": 1, "idle": 1, "marker": 1}
	if diff := cmp.Diff(want, counter.snapshot()); diff != "" {
		t.Fatalf("initial compiles (-want +got):\n%s", diff)
	}

	tests := []struct {
		name    string
		doc     string
		updated []uint64 // subscription ids that get a new version
		compile []string // chains compiled once more
	}{
		{"resolver of api", resolverDoc("api", "9s"), []uint64{1, 2}, []string{"web", "api"}},
		{"defaults of db", defaultsDoc("db", "grpc"), []uint64{3}, []string{"db"}},
		// db's own protocol wins over proxy-defaults: compiled, unchanged,
		// not sent.
		{"proxy-defaults", proxyDefaultsDoc("http"), []uint64{1, 2, 9}, []string{"web", "api", "db", "marker"}},
	}
	for _, tc := range tests {
		idx := s.put(tc.doc)
		waitHub(t, h, idx)
		for _, svc := range tc.compile {
			want[svc]++
		}
		if diff := cmp.Diff(want, counter.snapshot()); diff != "" {
			t.Errorf("%s: compiles (-want +got):\n%s", tc.name, diff)
		}
		got := map[uint64]uint64{}
		for range tc.updated {
			ev := next(t, w)
			if ev.Kind != EventUpdate {
				t.Fatalf("%s: event %s, want update", tc.name, describe(ev))
			}
			got[ev.ID] = ev.Version.Index
		}
		wantIdx := map[uint64]uint64{}
		for _, id := range tc.updated {
			wantIdx[id] = idx
		}
		if diff := cmp.Diff(wantIdx, got); diff != "" {
			t.Errorf("%s: updates (-want +got):\n%s", tc.name, diff)
		}
		// A write to the marker chain makes "nothing else was sent"
		// observable: its update must come next.
		mk := s.put(resolverDoc("marker", fmt.Sprintf("%ds", mkTimeout)))
		mkTimeout++
		if v := nextUpdate(t, w, 9); v.Index != mk {
			t.Errorf("%s: marker update index %d, want %d", tc.name, v.Index, mk)
		}
		want["marker"]++
	}

	// The warm chain was not compiled for proxy-defaults, only marked
	// stale; its next subscriber compiles it and sees the change.
	sub, err := h.Subscribe(context.Background(), ChainKey{Service: "idle"}, 0)
	if err != nil {
		t.Fatalf("Subscribe(idle): %v", err)
	}
	defer sub.Close()
	want["idle"]++
	if diff := cmp.Diff(want, counter.snapshot()); diff != "" {
		t.Errorf("after resubscribing idle: compiles (-want +got):\n%s", diff)
	}
	if p := chainOf(t, sub.Current()).Protocol; p != "http" {
		t.Errorf("idle chain protocol %q, want http", p)
	}
}

func TestUnchangedChainPublishesNothing(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var counter compileCounter
	h := startHub(t, s, nil, WithCompileHook(counter.hook))
	w := newTestWatcher(t, h)
	mustSubscribe(t, w, 1, "web")
	first := nextUpdate(t, w, 1)

	// A read key changes but the compiled chain does not.
	idx := s.put(`{"Kind":"service-defaults","Name":"web","Protocol":"tcp","Meta":{"owner":"x"}}`)
	waitHub(t, h, idx)
	if got := counter.snapshot()["web"]; got != 2 {
		t.Errorf("web compiled %d times, want 2", got)
	}
	if st := h.Stats(); st.Publishes != 1 {
		t.Errorf("Publishes = %d, want 1 (nothing new to publish)", st.Publishes)
	}
	related := s.put(resolverDoc("web", "4s"))
	v := nextUpdate(t, w, 1)
	if v.Index != related || v.Hash == first.Hash {
		t.Errorf("next update index %d hash %s, want index %d and a new hash", v.Index, v.Hash, related)
	}
}

func TestSlowWatcherSkipsVersions(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h := startHub(t, s, nil)
	fast, slow := newTestWatcher(t, h), newTestWatcher(t, h)
	for _, w := range []*Watcher{fast, slow} {
		mustSubscribe(t, w, 1, "web")
		nextUpdate(t, w, 1)
	}
	var last uint64
	for i := 1; i <= 5; i++ {
		last = s.put(resolverDoc("web", (time.Duration(i) * time.Second).String()))
		// The fast watcher gets every version while the slow one reads
		// nothing.
		if v := nextUpdate(t, fast, 1); v.Index != last {
			t.Fatalf("fast watcher: index %d, want %d", v.Index, last)
		}
	}
	v := nextUpdate(t, slow, 1)
	if v.Index != last {
		t.Errorf("slow watcher: index %d, want only the newest %d", v.Index, last)
	}
	if got := chainOf(t, v).Nodes["resolver:web.default.dc1"].Resolver.ConnectTimeout; got != chain.Duration(5*time.Second) {
		t.Errorf("slow watcher: connect timeout %v, want 5s", got)
	}
	marker := s.put(resolverDoc("web", "6s"))
	if v := nextUpdate(t, slow, 1); v.Index != marker {
		t.Errorf("slow watcher after catching up: index %d, want %d (no intermediate version)", v.Index, marker)
	}
	// The metrics counters: fast got 1+5 versions, slow 1+1+1 and skipped
	// the 4 in between.
	st := h.Stats()
	if st.Deliveries != 9 || st.Skipped != 4 || st.Watchers != 2 || st.Subscriptions != 2 || st.CompileTime <= 0 {
		t.Errorf("Stats() = %+v, want 9 deliveries, 4 skipped, 2 watchers, 2 subscriptions, some compile time", st)
	}
	slow.Close()
	if st := h.Stats(); st.Watchers != 1 || st.Subscriptions != 1 {
		t.Errorf("after closing a watcher: Stats() = %+v, want 1 watcher and 1 subscription", st)
	}
}

func TestInvalidWriteSendsNothing(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var counter compileCounter
	h := startHub(t, s, nil, WithCompileHook(counter.hook))
	w := newTestWatcher(t, h)
	mustSubscribe(t, w, 1, "web")
	nextUpdate(t, w, 1)

	// A router on a tcp service breaks web's chain: the FSM rejects it.
	res, idx := s.applyBatch(upsert(t, `{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathPrefix":"/a"}},"Destination":{"Service":"a"}}]}`))
	var graphErr *chain.GraphError
	if !errors.As(res[0].Err, &graphErr) {
		t.Fatalf("router on a tcp service: err = %v, want a *chain.GraphError", res[0].Err)
	}
	if got := counter.snapshot()["web"]; got != 1 {
		t.Errorf("web compiled %d times after a rejected write, want 1", got)
	}
	related := s.put(resolverDoc("web", "4s"))
	if v := nextUpdate(t, w, 1); v.Index != related {
		t.Errorf("first message after the rejected write (index %d) has index %d, want %d", idx, v.Index, related)
	}
}

func TestResetOnRestore(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	snapIdx := s.put(resolverDoc("web", "5s"))
	snap := s.snapshot()
	h := startHub(t, s, nil)
	w := newTestWatcher(t, h)
	mustSubscribe(t, w, 1, "web")
	mustSubscribe(t, w, 2, "api")
	if v := nextUpdate(t, w, 1); v.Index != snapIdx {
		t.Fatalf("first version index %d, want %d", v.Index, snapIdx)
	}
	nextUpdate(t, w, 2)
	later := s.put(resolverDoc("web", "9s"))
	if v := nextUpdate(t, w, 1); v.Index != later {
		t.Fatalf("update index %d, want %d", v.Index, later)
	}

	s.restore(snap)
	// Every subscription is reset, then gets its current version, even
	// api whose chain did not change.
	got := map[uint64][]EventKind{}
	for range 4 {
		ev := next(t, w)
		got[ev.ID] = append(got[ev.ID], ev.Kind)
		if ev.Kind == EventUpdate && ev.ID == 1 {
			if ct := chainOf(t, ev.Version).Nodes["resolver:web.default.dc1"].Resolver.ConnectTimeout; ct != chain.Duration(5*time.Second) {
				t.Errorf("web after restore: connect timeout %v, want 5s", ct)
			}
			if ev.Version.Epoch != 1 {
				t.Errorf("web after restore: epoch %d, want 1", ev.Version.Epoch)
			}
		}
	}
	want := map[uint64][]EventKind{1: {EventReset, EventUpdate}, 2: {EventReset, EventUpdate}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events after restore (-want +got):\n%s", diff)
	}
}

func TestWarmTTL(t *testing.T) {
	t.Parallel()
	t.Run("reuse within TTL", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		var counter compileCounter
		h := startHub(t, s, func(c *Config) { c.WarmTTL = time.Hour }, WithCompileHook(counter.hook))
		for range 3 {
			sub, err := h.Subscribe(context.Background(), ChainKey{Service: "web"}, 0)
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			sub.Close()
		}
		if got := counter.snapshot()["web"]; got != 1 {
			t.Errorf("3 subscribe/close cycles within the TTL compiled %d times, want 1", got)
		}
		// The applied index moves past the feed (a log that changes no
		// entry): a subscriber asking for that index finds nothing web
		// read has changed and gets the cached version, uncompiled.
		noop := s.apply(fsm.Command{Op: fsm.OpNoop})
		sub, err := h.Subscribe(context.Background(), ChainKey{Service: "web"}, noop)
		if err != nil {
			t.Fatalf("Subscribe(min index %d): %v", noop, err)
		}
		sub.Close()
		if got := counter.snapshot()["web"]; got != 1 {
			t.Errorf("subscribing at an index that changed nothing compiled web (%d compiles, want 1)", got)
		}
		// A change while nobody watches is not compiled...
		idx := s.put(resolverDoc("web", "3s"))
		waitHub(t, h, idx)
		if got := counter.snapshot()["web"]; got != 1 {
			t.Errorf("a change to an unwatched chain compiled it (%d compiles, want 1)", got)
		}
		// ...until the next subscriber comes.
		sub, err = h.Subscribe(context.Background(), ChainKey{Service: "web"}, 0)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		defer sub.Close()
		if got := counter.snapshot()["web"]; got != 2 {
			t.Errorf("resubscribing to a stale chain: %d compiles, want 2", got)
		}
		if v := sub.Current(); v.Index != idx {
			t.Errorf("resubscribed version index %d, want %d", v.Index, idx)
		}
		if got := h.Stats().Chains; got != 1 {
			t.Errorf("Chains = %d, want 1", got)
		}
	})
	t.Run("evicted after TTL", func(t *testing.T) {
		t.Parallel()
		s := newTestStore(t)
		h := startHub(t, s, func(c *Config) { c.WarmTTL = 20 * time.Millisecond })
		sub, err := h.Subscribe(context.Background(), ChainKey{Service: "web"}, 0)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		if got := h.Stats().Chains; got != 1 {
			t.Fatalf("Chains = %d, want 1", got)
		}
		sub.Close()
		testutil.Poll(t, 5*time.Second, "the idle chain to be evicted", func() bool { return h.Stats().Chains == 0 })
	})
}

func TestWatcherSubscriptions(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h := startHub(t, s, nil)
	cfg := testWatcherConfig()
	cfg.MaxSubscriptions = 2
	w, err := NewWatcher(h, cfg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	t.Cleanup(w.Close)
	ctx := context.Background()

	mustSubscribe(t, w, 1, "web")
	nextUpdate(t, w, 1)
	mustSubscribe(t, w, 2, "api")
	nextUpdate(t, w, 2)

	refusals := []struct {
		name string
		id   uint64
		key  ChainKey
		want error
	}{
		{"duplicate id", 2, ChainKey{Service: "db"}, ErrDuplicateSubscription},
		{"zero id", 0, ChainKey{Service: "db"}, ErrDuplicateSubscription},
		{"over the cap", 3, ChainKey{Service: "db"}, ErrTooManySubscriptions},
	}
	for _, tc := range refusals {
		err := w.Add(ctx, tc.id, tc.key, 0, "")
		if !errors.Is(err, tc.want) || !Refused(err) {
			t.Errorf("%s: Add = %v, want %v", tc.name, err, tc.want)
		}
		if ev := next(t, w); ev.Kind != EventUnsubscribed || ev.ID != tc.id || !errors.Is(ev.Err, tc.want) {
			t.Errorf("%s: event %s, want unsubscribed with %v", tc.name, describe(ev), tc.want)
		}
	}

	// Remove web: its changes are not sent any more; api's still are.
	w.Remove(1)
	if ev := next(t, w); ev.Kind != EventUnsubscribed || ev.ID != 1 || ev.Err != nil {
		t.Fatalf("after Remove(1): event %s, want unsubscribed", describe(ev))
	}
	if n := w.Len(); n != 1 {
		t.Errorf("Len = %d, want 1", n)
	}
	s.put(resolverDoc("web", "2s"))
	apiIdx := s.put(resolverDoc("api", "2s"))
	if v := nextUpdate(t, w, 2); v.Index != apiIdx {
		t.Errorf("api update index %d, want %d", v.Index, apiIdx)
	}
	// Room again: an invalid chain is refused, a valid one added.
	if err := w.Add(ctx, 3, ChainKey{Service: "db", OverrideMeshGatewayMode: "sideways"}, 0, ""); !errors.Is(err, ErrInvalidChain) {
		t.Errorf("invalid mesh gateway mode: Add = %v, want ErrInvalidChain", err)
	}
	if ev := next(t, w); ev.Kind != EventUnsubscribed || !errors.Is(ev.Err, ErrInvalidChain) {
		t.Errorf("event %s, want unsubscribed with ErrInvalidChain", describe(ev))
	}
	mustSubscribe(t, w, 3, "db")
	nextUpdate(t, w, 3)
}

func TestWatcherResume(t *testing.T) { //nolint:tparallel // the subtests share the store and the first watcher, and run in order
	t.Parallel()
	s := newTestStore(t)
	cur := s.put(resolverDoc("web", "5s"))
	h := startHub(t, s, nil)
	first := newTestWatcher(t, h)
	mustSubscribe(t, first, 1, "web")
	have := nextUpdate(t, first, 1)

	t.Run("unchanged", func(t *testing.T) {
		w := newTestWatcher(t, h)
		if err := w.Add(t.Context(), 7, ChainKey{Service: "web"}, have.Index, have.Hash); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if ev := next(t, w); ev.Kind != EventSubscribed {
			t.Fatalf("event %s, want subscribed", describe(ev))
		}
		marker := s.put(resolverDoc("web", "6s"))
		if v := nextUpdate(t, w, 7); v.Index != marker {
			t.Errorf("first update index %d, want %d: the unchanged version was sent", v.Index, marker)
		}
		have = nextUpdate(t, first, 1)
		cur = marker
	})
	t.Run("newer", func(t *testing.T) {
		w := newTestWatcher(t, h)
		if err := w.Add(t.Context(), 7, ChainKey{Service: "web"}, 1, "an-older-hash"); err != nil {
			t.Fatalf("Add: %v", err)
		}
		next(t, w) // subscribed
		if v := nextUpdate(t, w, 7); v.Index != cur || v.Hash != have.Hash {
			t.Errorf("update index %d hash %s, want the current %d %s", v.Index, v.Hash, cur, have.Hash)
		}
	})
	t.Run("behind, then caught up", func(t *testing.T) {
		w := newTestWatcher(t, h)
		want := s.index + 1
		errc := make(chan error, 1)
		go func() { errc <- w.Add(t.Context(), 7, ChainKey{Service: "web"}, want, "a-hash-from-another-server") }()
		got := s.put(resolverDoc("web", "8s"))
		if err := <-errc; err != nil {
			t.Fatalf("Add: %v", err)
		}
		next(t, w) // subscribed
		if v := nextUpdate(t, w, 7); v.Index != got || v.Index < want {
			t.Errorf("update index %d, want %d (never older than the client's %d)", v.Index, got, want)
		}
		nextUpdate(t, first, 1)
	})
	t.Run("behind for too long", func(t *testing.T) {
		cfg := testWatcherConfig()
		cfg.ResumeWait = 30 * time.Millisecond
		w, err := NewWatcher(h, cfg)
		if err != nil {
			t.Fatalf("NewWatcher: %v", err)
		}
		defer w.Close()
		err = w.Add(t.Context(), 7, ChainKey{Service: "web"}, s.index+100, "x")
		if !errors.Is(err, ErrBehind) || Refused(err) {
			t.Errorf("Add = %v, want ErrBehind", err)
		}
	})
}

func TestWatcherProgress(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	idx := s.put(resolverDoc("web", "5s"))
	h := startHub(t, s, nil)
	cfg := testWatcherConfig()
	cfg.ProgressInterval = 10 * time.Millisecond
	w, err := NewWatcher(h, cfg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	t.Cleanup(w.Close)
	mustSubscribe(t, w, 1, "web")
	nextUpdate(t, w, 1)
	ev := next(t, w)
	if ev.Kind != EventProgress || ev.Index < idx {
		t.Errorf("idle stream: event %s, want progress with index >= %d", describe(ev), idx)
	}
}

func TestWatcherCloseAndHubStop(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h, err := New(DefaultConfig(), FSMSource(s.f), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	w := newTestWatcher(t, h)
	mustSubscribe(t, w, 1, "web")
	nextUpdate(t, w, 1)

	errc := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		errc <- err
	}()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if err := <-errc; !errors.Is(err, ErrStopped) {
		t.Errorf("Next after the hub stopped = %v, want ErrStopped", err)
	}
	if _, err := h.Subscribe(context.Background(), ChainKey{Service: "web"}, 0); !errors.Is(err, ErrStopped) {
		t.Errorf("Subscribe after the hub stopped = %v, want ErrStopped", err)
	}
	w.Close()
	w.Close()
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrWatcherClosed) {
		t.Errorf("Next after Close = %v, want ErrWatcherClosed", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := map[string]func(*Config){
		"no datacenter":   func(c *Config) { c.Datacenter = "" },
		"no trust domain": func(c *Config) { c.TrustDomain = "" },
		"zero TTL":        func(c *Config) { c.WarmTTL = 0 },
		"zero max chains": func(c *Config) { c.MaxChains = 0 },
	}
	for name, mod := range tests {
		c := DefaultConfig()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil, want an error", name)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
	if err := DefaultWatcherConfig().Validate(); err != nil {
		t.Errorf("DefaultWatcherConfig().Validate() = %v", err)
	}
}

// TestWatcherManySubscriptions covers both ways Next waits: a plain select
// up to maxStaticSubs subscriptions, reflect.Select beyond.
func TestWatcherManySubscriptions(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h := startHub(t, s, nil)
	w := newTestWatcher(t, h)
	const n = maxStaticSubs + 3
	timeout := 1
	for i := 1; i <= n; i++ {
		mustSubscribe(t, w, uint64(i), fmt.Sprintf("svc%d", i))
		nextUpdate(t, w, uint64(i))
		// Every chain so far, including the newest, gets its updates.
		for _, j := range []int{1, i} {
			timeout++
			idx := s.put(resolverDoc(fmt.Sprintf("svc%d", j), fmt.Sprintf("%ds", timeout)))
			if v := nextUpdate(t, w, uint64(j)); v.Index != idx {
				t.Fatalf("%d subscriptions: svc%d update index %d, want %d", i, j, v.Index, idx)
			}
		}
	}
	// Removing subscriptions goes back to the plain select.
	for i := n; i > 1; i-- {
		w.Remove(uint64(i))
		if ev := next(t, w); ev.Kind != EventUnsubscribed || ev.ID != uint64(i) {
			t.Fatalf("event %s, want unsubscribed %d", describe(ev), i)
		}
	}
	idx := s.put(resolverDoc("svc1", "99s"))
	if v := nextUpdate(t, w, 1); v.Index != idx {
		t.Errorf("svc1 update index %d, want %d", v.Index, idx)
	}
}

// TestManyDirtyChainsCompileInParallel: a proxy-defaults change dirties
// every chain; a round that large is compiled by parallel workers, still
// once per chain, and every chain publishes the change.
func TestManyDirtyChainsCompileInParallel(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var counter compileCounter
	h := startHub(t, s, nil, WithCompileHook(counter.hook))
	const n = 3 * parallelMin
	subs := make([]*Subscription, n)
	for i := range subs {
		sub, err := h.Subscribe(context.Background(), ChainKey{Service: fmt.Sprintf("svc%d", i)}, 0)
		if err != nil {
			t.Fatalf("Subscribe: %v", err)
		}
		defer sub.Close()
		subs[i] = sub
	}
	idx := s.put(proxyDefaultsDoc("http"))
	waitHub(t, h, idx)
	for i, sub := range subs {
		name := fmt.Sprintf("svc%d", i)
		if got := counter.snapshot()[name]; got != 2 {
			t.Errorf("%s compiled %d times, want 2", name, got)
		}
		if v := sub.Current(); v.Index != idx || chainOf(t, v).Protocol != "http" {
			t.Errorf("%s: version index %d protocol %q, want %d http", name, v.Index, chainOf(t, v).Protocol, idx)
		}
	}
}

// TestSubscribeGivesUp: a caller whose ctx ends before the hub serves it
// gets ctx's error, and the hub later skips its request (no chain, no
// reference left behind).
func TestSubscribeGivesUp(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h, err := New(DefaultConfig(), FSMSource(s.f), nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	// Run is not started: the request waits in the queue.
	if _, err := h.Subscribe(ctx, ChainKey{Service: "web"}, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Subscribe with no hub running = %v, want DeadlineExceeded", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	sub, err := h.Subscribe(context.Background(), ChainKey{Service: "api"}, 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	if got := h.Stats().Chains; got != 1 {
		t.Errorf("Chains = %d, want 1: the abandoned request was served", got)
	}
}

// TestWatcherRequestBacklog: a client that keeps sending requests without
// reading the answers gets its stream ended instead of growing memory.
func TestWatcherRequestBacklog(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h := startHub(t, s, nil)
	cfg := testWatcherConfig()
	cfg.MaxSubscriptions = 2
	w, err := NewWatcher(h, cfg)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	t.Cleanup(w.Close)
	var last error
	for i := 0; i < 100 && !errors.Is(last, ErrRequestBacklog); i++ {
		w.Remove(uint64(i + 1))
		last = w.Refuse(uint64(i+1), fmt.Errorf("%w: test", ErrInvalidChain))
	}
	if !errors.Is(last, ErrRequestBacklog) || Refused(last) {
		t.Fatalf("after 100 unanswered requests: %v, want ErrRequestBacklog", last)
	}
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrRequestBacklog) {
		t.Errorf("Next = %v, want ErrRequestBacklog", err)
	}
}

// A chain that returns to content it had before (a resolver written and
// deleted while nobody watched) must carry the index of the change, not
// the older index of the identical version it had cached: an agent that
// saw the change elsewhere resumes here with that index and must never be
// handed a lower one. Found by the fault suite.
func TestSameContentCarriesNewerIndex(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	h := startHub(t, s, func(c *Config) { c.WarmTTL = time.Hour })
	sub, err := h.Subscribe(context.Background(), ChainKey{Service: "web"}, 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	before := sub.Current()
	sub.Close()

	s.put(resolverDoc("web", "3s"))
	deleted := s.apply(del(chain.KindServiceResolver, "web"))
	waitHub(t, h, deleted)

	sub, err = h.Subscribe(context.Background(), ChainKey{Service: "web"}, 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	v := sub.Current()
	if v.Hash != before.Hash {
		t.Fatalf("hash after delete %s, want the original %s", v.Hash, before.Hash)
	}
	if v.Index != deleted {
		t.Errorf("version index %d, want %d (the delete's index)", v.Index, deleted)
	}
	if st := h.Stats(); st.Publishes != 1 {
		t.Errorf("Publishes = %d, want 1: relabelling an unchanged chain must wake nobody", st.Publishes)
	}
}
