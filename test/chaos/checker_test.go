package chaos

import (
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/chain"
)

func testCheckConfig() CheckConfig {
	cfg := DefaultCheckConfig()
	cfg.Timeout = 20 * time.Second
	return cfg
}

func logReport(t *testing.T, rep *Report) {
	t.Helper()
	t.Log(rep.Summary())
	for _, v := range rep.Violations {
		t.Log("  ", v)
	}
}

func TestWorkloadEntriesAreValid(t *testing.T) {
	t.Parallel()
	for _, k := range append(HotKeys(2), chain.KeyOf(chain.KindServiceDefaults, "web")) {
		e, err := EntryFor(k, "c1-1")
		if err != nil {
			t.Fatalf("EntryFor(%s): %v", k, err)
		}
		if err := chain.Prepare(e); err != nil {
			t.Fatalf("Prepare(EntryFor(%s)): %v", k, err)
		}
		raw, err := chain.EncodeEntry(e)
		if err != nil {
			t.Fatalf("EncodeEntry: %v", err)
		}
		if got, err := ValueOfJSON(raw); err != nil || got != "c1-1" {
			t.Errorf("ValueOfJSON(%s) = %q, %v; want c1-1", raw, got, err)
		}
	}
	if _, err := EntryFor(chain.KeyOf(chain.KindServiceRouter, "x"), "v"); err == nil {
		t.Error("EntryFor(service-router) succeeded, want ErrUnsupportedKind")
	}
}

// op builds a finished operation for hand-written histories (times in ms).
func op(id, client int, kind OpKind, key string, call, ret int64) Operation {
	o := Operation{ID: id, Client: client, Kind: kind, Key: chain.KeyOf(chain.KindServiceResolver, key),
		Call: call * 1e6, Return: ret * 1e6, Outcome: OutcomeOK}
	if ret < 0 {
		o.Return = Infinity
		o.Outcome = OutcomeUnknown
	}
	return o
}

func put(id, client int, key, value string, call, ret int64, index uint64) Operation {
	o := op(id, client, OpPut, key, call, ret)
	o.Value, o.Applied, o.Index = value, true, index
	return o
}

func cas(id, client int, key, value string, expect uint64, call, ret int64, applied bool, index uint64) Operation {
	o := op(id, client, OpCAS, key, call, ret)
	o.Value, o.Expect, o.Applied, o.Index = value, expect, applied, index
	return o
}

func get(id, client int, key, value string, call, ret int64, index uint64) Operation {
	o := op(id, client, OpGet, key, call, ret)
	o.Found, o.Got, o.Index = value != "", value, index
	return o
}

func del(id, client int, key string, call, ret int64, index uint64) Operation {
	o := op(id, client, OpDelete, key, call, ret)
	o.Applied, o.Index = true, index
	return o
}

func unknown(o Operation) Operation {
	o.Outcome, o.Return, o.Applied, o.Index = OutcomeUnknown, Infinity, false, 0
	return o
}

func failed(o Operation) Operation {
	o.Outcome, o.Applied, o.Index, o.Err = OutcomeFail, false, 0, "not leader"
	return o
}

// journalOf writes apply records for the given (index, value) upserts of
// one key, as every node would.
func journalOf(key string, recs ...JournalRecord) map[string][]JournalRecord {
	for i := range recs {
		if recs[i].Key == (chain.Key{}) {
			recs[i].Key = chain.KeyOf(chain.KindServiceResolver, key)
		}
		if recs[i].Type == "" {
			recs[i].Type = RecordApply
		}
	}
	return map[string][]JournalRecord{"n1": recs, "n2": recs}
}

func upsertRec(index uint64, value string) JournalRecord {
	return JournalRecord{Index: index, Op: "upsert", Value: value, Applied: true}
}

func TestCheckHandWrittenHistories(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		ops      []Operation
		journals map[string][]JournalRecord
		want     []string // violated checks; nil = OK
	}{
		"read your write": {
			ops: []Operation{put(0, 0, "a", "v1", 0, 10, 5), get(1, 1, "a", "v1", 11, 20, 5)},
		},
		"concurrent read may see old or new": {
			ops: []Operation{put(0, 0, "a", "v1", 0, 10, 5), put(1, 0, "a", "v2", 11, 30, 6), get(2, 1, "a", "v1", 12, 20, 5)},
		},
		"stale read after write finished": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), put(1, 0, "a", "v2", 11, 20, 6), get(2, 1, "a", "v1", 21, 30, 5)},
			want: []string{CheckLinearizable, CheckKeyIndexOrder},
		},
		"read of a value never written": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), get(1, 1, "a", "zzz", 11, 20, 5)},
			want: []string{CheckLinearizable},
		},
		"read reports wrong ModifyIndex": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), get(1, 0, "a", "v1", 11, 20, 4)},
			want: []string{CheckLinearizable, CheckKeyIndexOrder, CheckClientMonotonic},
		},
		"cas with right index": {
			ops: []Operation{put(0, 0, "a", "v1", 0, 10, 5), cas(1, 0, "a", "v2", 5, 11, 20, true, 6), get(2, 0, "a", "v2", 21, 30, 6)},
		},
		"cas applied without the version check": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), put(1, 0, "a", "v2", 11, 20, 6), cas(2, 1, "a", "v3", 5, 21, 30, true, 7)},
			want: []string{CheckLinearizable},
		},
		"cas create-only on existing entry": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), cas(1, 1, "a", "v2", 0, 11, 20, true, 6)},
			want: []string{CheckLinearizable},
		},
		"cas conflict reports current index": {
			ops: []Operation{put(0, 0, "a", "v1", 0, 10, 5), cas(1, 1, "a", "v2", 3, 11, 20, false, 5)},
		},
		"cas conflict reports a wrong index": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), cas(1, 1, "a", "v2", 3, 11, 20, false, 4)},
			want: []string{CheckLinearizable, CheckKeyIndexOrder},
		},
		"cas rejected although it should pass": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), cas(1, 1, "a", "v2", 5, 11, 20, false, 5)},
			want: []string{CheckLinearizable},
		},
		"delete then read absent": {
			ops: []Operation{put(0, 0, "a", "v1", 0, 10, 5), del(1, 0, "a", 11, 20, 6), get(2, 1, "a", "", 21, 30, 6)},
		},
		"read after delete still sees value": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), del(1, 0, "a", 11, 20, 6), get(2, 1, "a", "v1", 21, 30, 5)},
			want: []string{CheckLinearizable},
		},
		"write index below an earlier write": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 5), put(1, 1, "a", "v2", 11, 20, 4)},
			want: []string{CheckLinearizable, CheckKeyIndexOrder, CheckWriteOrder},
		},
		"global write order across keys": {
			ops:  []Operation{put(0, 0, "a", "v1", 0, 10, 9), put(1, 1, "b", "v2", 11, 20, 4)},
			want: []string{CheckWriteOrder},
		},
		"unknown put that committed is visible": {
			ops:      []Operation{unknown(put(0, 0, "a", "v1", 0, 10, 0)), get(1, 1, "a", "v1", 50, 60, 5)},
			journals: journalOf("a", upsertRec(5, "v1")),
		},
		"unknown put that never committed must not be seen": {
			ops:      []Operation{unknown(put(0, 0, "a", "v1", 0, 10, 0)), get(1, 1, "a", "v1", 50, 60, 5)},
			journals: journalOf("a"),
			want:     []string{CheckLinearizable},
		},
		"unknown put without journals stays unknown": {
			ops: []Operation{unknown(put(0, 0, "a", "v1", 0, 10, 0)), get(1, 1, "a", "v1", 50, 60, 5), get(2, 1, "a", "v1", 61, 70, 5)},
		},
		"unknown delete may or may not happen": {
			ops: []Operation{put(0, 0, "a", "v1", 0, 10, 5), unknown(del(1, 0, "a", 11, 20, 0)), get(2, 1, "a", "v1", 21, 30, 5), get(3, 1, "a", "", 31, 40, 5)},
		},
		"acknowledged write missing from journals": {
			ops:      []Operation{put(0, 0, "a", "v1", 0, 10, 5)},
			journals: journalOf("a"),
			want:     []string{CheckLostWrite},
		},
		"acknowledged at another index": {
			ops:      []Operation{put(0, 0, "a", "v1", 0, 10, 5)},
			journals: journalOf("a", upsertRec(6, "v1")),
			want:     []string{CheckLostWrite},
		},
		"definite failure that was applied": {
			ops:      []Operation{failed(put(0, 0, "a", "v1", 0, 10, 5))},
			journals: journalOf("a", upsertRec(5, "v1")),
			want:     []string{CheckFailedApplied},
		},
		"one value applied twice": {
			ops:      []Operation{put(0, 0, "a", "v1", 0, 10, 5)},
			journals: journalOf("a", upsertRec(5, "v1"), upsertRec(6, "v1")),
			want:     []string{CheckDuplicateApply},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := testCheckConfig()
			cfg.Compile = nil
			rep := Check(&History{Name: name, Ops: tc.ops, Journals: tc.journals}, cfg)
			var got []string
			seen := map[string]bool{}
			for _, v := range rep.Violations {
				if !seen[v.Check] {
					seen[v.Check] = true
					got = append(got, v.Check)
				}
			}
			for _, w := range tc.want {
				if !seen[w] {
					logReport(t, rep)
					t.Errorf("Check(%s): no %s violation; got %v", name, w, got)
				}
			}
			if len(tc.want) == 0 && !rep.OK() {
				logReport(t, rep)
				t.Errorf("Check(%s): got violations %v, want none", name, got)
			}
		})
	}
}

func TestCheckReplicaAgreement(t *testing.T) {
	t.Parallel()
	base := func() []JournalRecord {
		return []JournalRecord{
			{Type: RecordApply, Index: 3, Op: "upsert", Key: chain.KeyOf(chain.KindServiceResolver, "a"), Value: "v1", Applied: true, Hash: "h3"},
			{Type: RecordApply, Index: 4, Op: "delete", Key: chain.KeyOf(chain.KindServiceResolver, "a"), Applied: true, Hash: "h4"},
		}
	}
	tests := map[string]struct {
		mutate func(n2 []JournalRecord) []JournalRecord
		finals []NodeFinal
		want   string
	}{
		"agree": {mutate: func(j []JournalRecord) []JournalRecord { return j }},
		"agree with a gap (snapshot install)": {mutate: func(_ []JournalRecord) []JournalRecord {
			return []JournalRecord{{Type: RecordRestore, Index: 4, Hash: "h4"}}
		}},
		"different value at one index": {mutate: func(j []JournalRecord) []JournalRecord {
			j[0].Value = "v9"
			return j
		}, want: CheckReplicaAgree},
		"different result at one index": {mutate: func(j []JournalRecord) []JournalRecord {
			j[1].Applied = false
			return j
		}, want: CheckReplicaAgree},
		"restore with another hash": {mutate: func(_ []JournalRecord) []JournalRecord {
			return []JournalRecord{{Type: RecordRestore, Index: 4, Hash: "other"}}
		}, want: CheckReplicaAgree},
		"re-applied after restart, differently": {mutate: func(j []JournalRecord) []JournalRecord {
			again := j[1]
			again.Op = "upsert"
			return append(j, again)
		}, want: CheckReplicaAgree},
		"final applied index differs": {
			mutate: func(j []JournalRecord) []JournalRecord { return j },
			finals: []NodeFinal{{Node: "n1", AppliedIndex: 4, Hash: "h4"}, {Node: "n2", AppliedIndex: 3, Hash: "h3"}},
			want:   CheckReplicaFinal,
		},
		"final hash differs": {
			mutate: func(j []JournalRecord) []JournalRecord { return j },
			finals: []NodeFinal{{Node: "n1", AppliedIndex: 4, Hash: "h4"}, {Node: "n2", AppliedIndex: 4, Hash: "x"}},
			want:   CheckReplicaFinal,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := &History{Name: name, Journals: map[string][]JournalRecord{"n1": base(), "n2": tc.mutate(base())}, Finals: tc.finals}
			cfg := testCheckConfig()
			cfg.Compile = nil
			rep := Check(h, cfg)
			if tc.want == "" && !rep.OK() {
				logReport(t, rep)
				t.Fatalf("Check: violations, want none")
			}
			if tc.want != "" && !rep.Has(tc.want) {
				logReport(t, rep)
				t.Fatalf("Check: no %s violation", tc.want)
			}
		})
	}
}

// TestCheckSimulatedGoodHistories: histories of a correct (simulated)
// store pass every check, with unknown outcomes in them.
func TestCheckSimulatedGoodHistories(t *testing.T) {
	t.Parallel()
	tests := map[string]simConfig{
		"kv only, 1280 ops":   {clients: 8, opsPerClient: 160, keys: 10, unknownPct: 30, seed: 1},
		"kv only, 16 clients": {clients: 16, opsPerClient: 70, keys: 10, unknownPct: 30, seed: 2},
		"kv and watch":        {clients: 6, opsPerClient: 60, keys: 4, agents: 3, unknownPct: 30, seed: 3},
		"kv and watch, 2 hot": {clients: 6, opsPerClient: 60, keys: 2, agents: 2, unknownPct: 30, seed: 4},
	}
	for name, cfg := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := simulate(t, cfg)
			rep := Check(h, testCheckConfig())
			if !rep.OK() {
				logReport(t, rep)
				t.Fatalf("correct store reported violations")
			}
			if rep.Checked < cfg.clients*cfg.opsPerClient*9/10 || (cfg.agents > 0 && rep.WatchEvents == 0) {
				t.Fatalf("history too small: %s", rep.Summary())
			}
			if rep.Unknown == 0 || rep.Resolved+rep.Dropped == 0 {
				t.Errorf("want unknown outcomes, resolved or dropped: %s", rep.Summary())
			}
			t.Log(rep.Summary())
		})
	}
}

// TestCheckCatchesSeededBugs is docs/reliability.md, G10: each seeded bug is
// detected in at least 9 of 10 runs (we require all of them).
func TestCheckCatchesSeededBugs(t *testing.T) {
	t.Parallel()
	kv := simConfig{clients: 6, opsPerClient: 60, keys: 5, unknownPct: 10}
	watch := simConfig{clients: 4, opsPerClient: 25, keys: 3, agents: 2, unknownPct: 10}
	tests := map[string]struct {
		cfg  simConfig
		bugs simBugs
		want []string // any of these counts as detection
	}{
		"stale read (skipped leader verification)": {cfg: kv, bugs: simBugs{staleRead: true}, want: []string{CheckLinearizable, CheckKeyIndexOrder}},
		"cas without version check":                {cfg: kv, bugs: simBugs{casNoCheck: true}, want: []string{CheckLinearizable}},
		"ack before commit (lost write)":           {cfg: kv, bugs: simBugs{ackBeforeCommit: true}, want: []string{CheckLostWrite}},
		"dropped final watch version":              {cfg: watch, bugs: simBugs{dropFinalWatch: true}, want: []string{CheckWatchFinal}},
		"watch version going backwards":            {cfg: watch, bugs: simBugs{watchBackwards: true}, want: []string{CheckWatchOrder}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			runs := 10
			if testing.Short() {
				runs = 3
			}
			for seed := uint64(100); seed < 100+uint64(runs); seed++ {
				cfg := tc.cfg
				cfg.seed, cfg.bugs = seed, tc.bugs
				h := simulate(t, cfg)
				rep := Check(h, testCheckConfig())
				caught := false
				for _, w := range tc.want {
					caught = caught || rep.Has(w)
				}
				if !caught {
					logReport(t, rep)
					t.Fatalf("seed %d: bug %q not caught (want one of %v)", seed, name, tc.want)
				}
			}
		})
	}
}

func TestCheckWatchSessions(t *testing.T) {
	t.Parallel()
	key := chain.KeyOf(chain.KindServiceResolver, "svc-0")
	mk := func(v string) (JournalRecord, WatchEvent) {
		t.Helper()
		e, err := EntryFor(key, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := chain.Prepare(e); err != nil {
			t.Fatal(err)
		}
		raw, err := chain.EncodeEntry(e)
		if err != nil {
			t.Fatal(err)
		}
		return JournalRecord{Type: RecordApply, Op: "upsert", Key: key, Value: v, Entry: raw, Applied: true}, WatchEvent{}
	}
	r1, _ := mk("v1")
	r1.Index = 5
	r2, _ := mk("v2")
	r2.Index = 8
	journal := []JournalRecord{r1, r2}
	h := &History{Journals: map[string][]JournalRecord{"n1": journal}}
	rp := newReplay(&mergedJournal{recs: journal})
	rp.advance(5)
	c5 := rp.compile(DefaultCompile, "svc-0")
	rp.advance(8)
	c8 := rp.compile(DefaultCompile, "svc-0")
	if c5.json == c8.json || c5.index != 5 || c8.index != 8 {
		t.Fatalf("replay compile: index %d/%d, same chain %v", c5.index, c8.index, c5.json == c8.json)
	}
	ev := func(idx uint64, c compiled, hash string) WatchEvent {
		return WatchEvent{Index: idx, Hash: hash, Chain: []byte(c.json), Error: c.err}
	}
	tests := map[string]struct {
		events []WatchEvent
		want   string
	}{
		"good":                    {events: []WatchEvent{ev(5, c5, "h5"), ev(8, c8, "h8")}},
		"skips a version (slow)":  {events: []WatchEvent{ev(8, c8, "h8")}},
		"reset then same version": {events: []WatchEvent{ev(5, c5, "h5"), {Reset: true}, ev(5, c5, "h5"), ev(8, c8, "h8")}},
		"goes backwards":          {events: []WatchEvent{ev(8, c8, "h8"), ev(5, c5, "h5"), ev(8, c8, "h8")}, want: CheckWatchOrder},
		"duplicate":               {events: []WatchEvent{ev(5, c5, "h5"), ev(5, c5, "h5"), ev(8, c8, "h8")}, want: CheckWatchOrder},
		"stuck on old version":    {events: []WatchEvent{ev(5, c5, "h5")}, want: CheckWatchFinal},
		"nothing delivered":       {events: nil, want: CheckWatchFinal},
		"wrong content at index":  {events: []WatchEvent{ev(5, c8, "h8x"), ev(8, c8, "h8")}, want: CheckWatchContent},
		"wrong index label":       {events: []WatchEvent{ev(6, c5, "h5"), ev(8, c8, "h8")}, want: CheckWatchIndex},
		"one hash two chains":     {events: []WatchEvent{ev(5, c5, "same"), ev(8, c8, "same")}, want: CheckWatchHash},
		"index beyond the log":    {events: []WatchEvent{ev(5, c5, "h5"), ev(9, c8, "h8")}, want: CheckWatchContent},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hh := *h
			hh.Name = name
			hh.Watches = []WatchSession{{Agent: "a0", Service: "svc-0", Events: tc.events}}
			rep := Check(&hh, testCheckConfig())
			if tc.want == "" && !rep.OK() {
				logReport(t, rep)
				t.Fatal("violations, want none")
			}
			if tc.want != "" && !rep.Has(tc.want) {
				logReport(t, rep)
				t.Fatalf("no %s violation", tc.want)
			}
		})
	}
}

func TestOperationString(t *testing.T) {
	t.Parallel()
	s := cas(3, 1, "a", "v2", 5, 1, 2, false, 7).String()
	for _, want := range []string{"#3", "c1", "cas(service-resolver/a, v2, expect=5)", "applied=false @7"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, want it to contain %q", s, want)
		}
	}
	if s := unknown(put(1, 0, "a", "v", 1, 2, 0)).String(); !strings.Contains(s, "inf") {
		t.Errorf("String() of unknown = %q, want inf", s)
	}
}
