package fsm

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/chain"
)

// casCase is one row of the CAS table (docs/discovery-chain.md, Operations
// and CAS). If exists, the entry is
// created at index 1 and modified at index 2 (so its ModifyIndex is 2)
// before the CAS command runs at index 3.
type casCase struct {
	exists  bool
	cas     uint64
	applied bool
}

func casTableHarness(t *testing.T, exists bool) *harness {
	t.Helper()
	h := newHarness(t)
	if exists {
		h.mustUpsert(serviceDefaults("web", "tcp"))
		h.mustUpsert(serviceDefaults("web", "http"))
	} else {
		h.next = 3
	}
	return h
}

func TestUpsertCAS(t *testing.T) {
	t.Parallel()
	cases := map[string]casCase{
		"ZeroAbsentCreates":        {exists: false, cas: 0, applied: true},
		"ZeroPresentRefuses":       {exists: true, cas: 0, applied: false},
		"NonZeroAbsentRefuses":     {exists: false, cas: 2, applied: false},
		"NonZeroMatchingWrites":    {exists: true, cas: 2, applied: true},
		"NonZeroStaleRefuses":      {exists: true, cas: 1, applied: false},
		"NonZeroFromFutureRefuses": {exists: true, cas: 3, applied: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := casTableHarness(t, tc.exists)
			before := h.f.Store().Hash()
			feed := h.f.Feed().Head()
			res := h.apply(Command{Op: OpUpsertCAS, Entry: serviceDefaults("web", "grpc"), CASIndex: tc.cas})
			want := ApplyResult{Index: 3, Applied: tc.applied}
			if diff := cmp.Diff(want, res, cmp.Comparer(errorsEqual)); diff != "" {
				t.Fatalf("upsert-cas %d mismatch (-want +got):\n%s", tc.cas, diff)
			}
			se, idx := h.get(sdKey("web"))
			switch {
			case tc.applied:
				wantCreate := uint64(3)
				if tc.exists {
					wantCreate = 1
				}
				if se == nil || se.ModifyIndex != 3 || se.CreateIndex != wantCreate || idx != 3 ||
					se.Entry.(*chain.ServiceConfigEntry).Protocol != "grpc" {
					t.Fatalf("after applied upsert-cas: %+v index %d, want grpc entry create %d modify 3", se, idx, wantCreate)
				}
			default:
				if got := h.f.Store().Hash(); got != before {
					t.Fatalf("refused upsert-cas changed the store hash")
				}
				if got := feedAfter(feed); len(got) != 0 {
					t.Fatalf("refused upsert-cas published %v", got)
				}
			}
		})
	}
}

func TestDeleteCAS(t *testing.T) {
	t.Parallel()
	cases := map[string]casCase{
		"ZeroAbsentRefuses":     {exists: false, cas: 0, applied: false},
		"ZeroPresentNeverDel":   {exists: true, cas: 0, applied: false},
		"NonZeroAbsentRefuses":  {exists: false, cas: 2, applied: false},
		"NonZeroMatchingDel":    {exists: true, cas: 2, applied: true},
		"NonZeroStaleRefuses":   {exists: true, cas: 1, applied: false},
		"NonZeroFutureRefuses":  {exists: true, cas: 9, applied: false},
		"NonZeroAbsentIndexOne": {exists: false, cas: 1, applied: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := casTableHarness(t, tc.exists)
			before := h.f.Store().Hash()
			res := h.apply(Command{Op: OpDeleteCAS, Key: sdKey("WEB"), CASIndex: tc.cas})
			want := ApplyResult{Index: 3, Applied: tc.applied}
			if diff := cmp.Diff(want, res, cmp.Comparer(errorsEqual)); diff != "" {
				t.Fatalf("delete-cas %d mismatch (-want +got):\n%s", tc.cas, diff)
			}
			se, idx := h.get(sdKey("web"))
			switch {
			case tc.applied:
				if se != nil || idx != 3 {
					t.Fatalf("after applied delete-cas: entry %+v index %d, want absent with tombstone 3", se, idx)
				}
			default:
				if got := h.f.Store().Hash(); got != before {
					t.Fatalf("refused delete-cas changed the store hash")
				}
			}
		})
	}
}

func errorsEqual(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error()
}

func TestCASStillGraphValidated(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("main", "http"))
	idx := h.mustUpsert(selfSplitter("main"))
	// Index check passes (0 on absent), graph check fails: no protocol for "x".
	res := h.apply(Command{Op: OpUpsertCAS, Entry: selfSplitter("x")})
	wantGraphError(t, res.Err, "does not permit advanced routing")
	if res.Applied {
		t.Fatalf("upsert-cas = %+v, want not applied", res)
	}
	// delete-cas with the right index, but the splitter depends on it.
	res = h.apply(Command{Op: OpDeleteCAS, Key: sdKey("main"), CASIndex: 1})
	wantGraphError(t, res.Err, "does not permit advanced routing")
	if se, _ := h.get(sdKey("main")); se == nil {
		t.Fatalf("service-defaults main was deleted despite graph error")
	}
	// Matching CAS on the splitter itself is fine.
	res = h.apply(Command{Op: OpDeleteCAS, Key: chain.KeyOf(chain.KindServiceSplitter, "main"), CASIndex: idx})
	if !res.Applied || res.Err != nil {
		t.Fatalf("delete-cas splitter = %+v, want applied", res)
	}
}

func TestUpsertReplacesWholeEntryAndKeepsCreateIndex(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	e := serviceDefaults("web", "http")
	e.Meta = map[string]string{"owner": "a"}
	h.mustUpsert(e)
	h.mustUpsert(serviceDefaults("other", "tcp"))
	h.mustUpsert(serviceDefaults("web", "grpc")) // index 3, no Meta
	se, idx := h.get(sdKey("web"))
	got := stored{se.Entry, se.CreateIndex, se.ModifyIndex}
	want := stored{serviceDefaults("web", "grpc"), 1, 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("Get(web) mismatch (-want +got):\n%s", diff)
	}
	if idx != 3 {
		t.Fatalf("Get(web) index = %d, want 3", idx)
	}
}

// stored is StoredEntry without its unexported fields, for cmp.
type stored struct {
	Entry               chain.Entry
	CreateIndex, Modify uint64
}

func TestCaseInsensitiveKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("Web", "http"))
	h.mustUpsert(serviceDefaults("WEB", "tcp"))
	es, _, _ := h.f.Store().List("Service-Defaults")
	if len(es) != 1 {
		t.Fatalf("List = %d entries, want 1 (Web and WEB are one key)", len(es))
	}
	se, _ := h.get(chain.Key{Kind: "SERVICE-DEFAULTS", Name: "wEb"})
	if se == nil || se.CreateIndex != 1 || se.ModifyIndex != 2 || se.Entry.GetName() != "WEB" {
		t.Fatalf("Get(wEb) = %+v, want the WEB entry created at 1, modified at 2", se)
	}
	if se.Key() != sdKey("web") {
		t.Fatalf("Key() = %v, want %v", se.Key(), sdKey("web"))
	}
	if r := h.del(chain.Key{Kind: chain.KindServiceDefaults, Name: "weB"}); !r.Applied {
		t.Fatalf("delete weB = %+v, want applied", r)
	}
	if se, idx := h.get(sdKey("web")); se != nil || idx != 3 {
		t.Fatalf("after delete: %+v index %d, want absent at tombstone 3", se, idx)
	}
}

func TestDeleteAbsentIsNoop(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustUpsert(serviceDefaults("a", "http"))
	before := h.f.Store().Hash()
	feed := h.f.Feed().Head()
	res := h.del(sdKey("missing"))
	if diff := cmp.Diff(ApplyResult{Index: 2, Applied: true}, res, cmp.Comparer(errorsEqual)); diff != "" {
		t.Fatalf("delete absent mismatch (-want +got):\n%s", diff)
	}
	if h.f.Store().Hash() != before {
		t.Fatalf("delete of absent entry changed the store")
	}
	if _, idx := h.get(sdKey("missing")); idx != 0 {
		t.Fatalf("Get(missing) index = %d, want 0 (no tombstone)", idx)
	}
	if got := feedAfter(feed); len(got) != 0 {
		t.Fatalf("delete of absent entry published %v", got)
	}
	if h.f.AppliedIndex() != 2 {
		t.Fatalf("AppliedIndex = %d, want 2", h.f.AppliedIndex())
	}
}

// graphCase: setup entries are applied (must succeed), then op; err is a
// substring of the expected *chain.GraphError, "" for accepted.
type graphCase struct {
	setup []chain.Entry
	op    Command
	err   string
}

func upsertCmd(e chain.Entry) Command { return Command{Op: OpUpsert, Entry: e} }
func deleteCmd(k chain.Kind, name string) Command {
	return Command{Op: OpDelete, Key: chain.KeyOf(k, name)}
}

const errNotHTTP = "does not permit advanced routing or splitting behavior"

// The numbered write-time validation cases of docs/discovery-chain.md,
// Write-time validation (same numbers), through Apply.
func TestGraphValidation(t *testing.T) {
	t.Parallel()
	cases := map[string]graphCase{
		"01_SplitterNoProtocol":       {op: upsertCmd(selfSplitter("main")), err: errNotHTTP},
		"02_SplitterTCP":              {setup: []chain.Entry{serviceDefaults("main", "tcp")}, op: upsertCmd(selfSplitter("main")), err: errNotHTTP},
		"03_ServiceDefaultsBeatProxy": {setup: []chain.Entry{proxyDefaults("tcp"), serviceDefaults("main", "http")}, op: upsertCmd(selfSplitter("main"))},
		"04_ProxyDefaultsHTTP":        {setup: []chain.Entry{proxyDefaults("http")}, op: upsertCmd(selfSplitter("main"))},
		"07_DeleteSDUnderSplitter": {
			setup: []chain.Entry{serviceDefaults("main", "http"), selfSplitter("main")},
			op:    deleteCmd(chain.KindServiceDefaults, "main"), err: errNotHTTP,
		},
		"08_DeleteProxyUnderSplitter": {
			setup: []chain.Entry{proxyDefaults("http"), selfSplitter("main")},
			op:    deleteCmd(chain.KindProxyDefaults, "global"), err: errNotHTTP,
		},
		"09_DeleteProxyWhenSDHTTP": {
			setup: []chain.Entry{proxyDefaults("http"), serviceDefaults("main", "http"), selfSplitter("main")},
			op:    deleteCmd(chain.KindProxyDefaults, "global"),
		},
		"10_SDToTCPUnderSplitter": {
			setup: []chain.Entry{serviceDefaults("main", "http"), selfSplitter("main")},
			op:    upsertCmd(serviceDefaults("main", "tcp")), err: errNotHTTP,
		},
		"13_SplitterInconsistent": {
			setup: []chain.Entry{serviceDefaults("main", "http"), serviceDefaults("other", "tcp")},
			op:    upsertCmd(splitter("main", chain.ServiceSplit{Weight: 90}, chain.ServiceSplit{Weight: 10, Service: "other"})),
			err:   "inconsistent protocols",
		},
		"17_RedirectToSubset": {
			setup: []chain.Entry{resolver("other", withSubsets("v1"))},
			op:    upsertCmd(resolver("main", redirectTo("other", "v1"))),
		},
		"18_RedirectToMissingSubset": {
			setup: []chain.Entry{resolver("other", nil)},
			op:    upsertCmd(resolver("main", redirectTo("other", "v1"))),
			err:   `does not have a subset named "v1"`,
		},
		"19_CircularRedirect": {
			setup: []chain.Entry{resolver("other", redirectTo("main", ""))},
			op:    upsertCmd(resolver("main", redirectTo("other", ""))),
			err:   "detected circular resolver redirect",
		},
		"20_CircularSplitters": {
			setup: []chain.Entry{proxyDefaults("http"), splitter("other", chain.ServiceSplit{Weight: 100, Service: "main"})},
			op:    upsertCmd(splitter("main", chain.ServiceSplit{Weight: 100, Service: "other"})),
			err:   "detected circular reference",
		},
		"TransitiveReferrerViaLinkIndex": {
			setup: []chain.Entry{
				proxyDefaults("http"),
				splitter("top", chain.ServiceSplit{Weight: 100, Service: "Mid"}),
				splitter("mid", chain.ServiceSplit{Weight: 50}, chain.ServiceSplit{Weight: 50, Service: "LEAF"}),
			},
			op:  upsertCmd(serviceDefaults("leaf", "grpc")),
			err: "inconsistent protocols",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			for _, e := range tc.setup {
				h.mustUpsert(e)
			}
			before := h.f.Store().Hash()
			listBefore := listIndexes(h.f.Store())
			feed := h.f.Feed().Head()
			res := h.apply(tc.op)
			if tc.err == "" {
				if res.Err != nil || !res.Applied {
					t.Fatalf("Apply(%v) = %+v, want applied", tc.op.Op, res)
				}
				return
			}
			wantGraphError(t, res.Err, tc.err)
			if res.Applied || res.Index != h.next-1 {
				t.Fatalf("Apply(%v) = %+v, want not applied at index %d", tc.op.Op, res, h.next-1)
			}
			if h.f.Store().Hash() != before {
				t.Fatalf("rejected write changed the store")
			}
			if diff := cmp.Diff(listBefore, listIndexes(h.f.Store())); diff != "" {
				t.Fatalf("rejected write moved list indexes (-before +after):\n%s", diff)
			}
			if got := feedAfter(feed); len(got) != 0 {
				t.Fatalf("rejected write published %v", got)
			}
			if h.f.AppliedIndex() != res.Index {
				t.Fatalf("AppliedIndex = %d, want %d (rejected commands still occupy their index)", h.f.AppliedIndex(), res.Index)
			}
		})
	}
}

func listIndexes(s *Store) map[chain.Kind]uint64 {
	out := map[chain.Kind]uint64{}
	for _, k := range chain.Kinds {
		_, idx, _ := s.List(k)
		out[k] = idx
	}
	return out
}

func TestSplitterRejectedThenAcceptedAfterServiceDefaults(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	res := h.upsert(selfSplitter("main"))
	wantGraphError(t, res.Err, errNotHTTP)
	if se, idx := h.get(chain.KeyOf(chain.KindServiceSplitter, "main")); se != nil || idx != 0 {
		t.Fatalf("rejected splitter stored: %+v %d", se, idx)
	}
	h.mustUpsert(serviceDefaults("main", "http"))
	h.mustUpsert(selfSplitter("main"))
}

func TestInvalidEntryRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// Weights summing to 50: passes decoding, fails chain.Prepare.
	bad := splitter("main", chain.ServiceSplit{Weight: 50})
	res := h.upsert(bad)
	var ve *chain.ValidationError
	if !errors.As(res.Err, &ve) || res.Applied {
		t.Fatalf("upsert invalid splitter = %+v, want *chain.ValidationError", res)
	}
	if h.f.Store().Hash() != New(nil).Store().Hash() {
		t.Fatalf("invalid entry changed the store")
	}
}

func TestBatchWithBadCommands(t *testing.T) {
	t.Parallel()
	var journal []journalRecord
	h := newHarness(t, WithApplyJournal(func(index, term uint64, cmd Command, res ApplyResult) {
		journal = append(journal, journalRecord{index, term, cmd, res})
	}))
	h.mustUpsert(serviceDefaults("seed", "http")) // index 1
	feed := h.f.Feed().Head()

	logs := []*raft.Log{
		h.cmdLog(upsertCmd(serviceDefaults("main", "http"))),   // 2: ok
		h.cmdLog(upsertCmd(selfSplitter("other"))),             // 3: graph error
		h.cmdLog(upsertCmd(selfSplitter("main"))),              // 4: ok, sees 2 in the same txn
		h.log([]byte{0x42, 1, 2, 3}),                           // 5: unknown type
		h.log([]byte{0xc2, 9, 9}),                              // 6: unknown, ignorable
		h.log([]byte{byte(OpUpsert), '{'}),                     // 7: undecodable
		h.configLog(),                                          // 8: not a command
		h.cmdLog(deleteCmd(chain.KindServiceDefaults, "seed")), // 9
	}
	logs[7].Term = 2

	out := h.f.ApplyBatch(logs)
	if len(out) != len(logs) {
		t.Fatalf("ApplyBatch returned %d results for %d logs", len(out), len(logs))
	}
	type summary struct {
		Index   uint64
		Applied bool
		Err     string
	}
	var got []summary
	for i, o := range out {
		if o == nil {
			got = append(got, summary{Index: logs[i].Index, Err: "<nil result>"})
			continue
		}
		r := o.(ApplyResult)
		s := summary{Index: r.Index, Applied: r.Applied}
		switch {
		case r.Err == nil:
		case errors.Is(r.Err, ErrUnknownOp):
			s.Err = "unknown"
		case errors.Is(r.Err, ErrMalformedCommand):
			s.Err = "malformed"
		default:
			var ge *chain.GraphError
			if errors.As(r.Err, &ge) {
				s.Err = "graph"
			} else {
				s.Err = r.Err.Error()
			}
		}
		got = append(got, s)
	}
	want := []summary{
		{Index: 2, Applied: true},
		{Index: 3, Err: "graph"},
		{Index: 4, Applied: true},
		{Index: 5, Err: "unknown"},
		{Index: 6},
		{Index: 7, Err: "malformed"},
		{Index: 8, Err: "<nil result>"},
		{Index: 9, Applied: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("ApplyBatch results mismatch (-want +got):\n%s", diff)
	}
	if h.f.AppliedIndex() != 9 {
		t.Fatalf("AppliedIndex = %d, want 9", h.f.AppliedIndex())
	}
	if v := h.f.Store().View().Index(); v != 9 {
		t.Fatalf("View().Index() = %d, want 9", v)
	}

	// Exactly one change-set for the batch, with exactly the changed keys.
	wantFeed := []ChangeSet{{
		Index: 9,
		Keys: []chain.Key{
			sdKey("main"),
			sdKey("seed"),
			chain.KeyOf(chain.KindServiceSplitter, "main"),
		},
	}}
	if diff := cmp.Diff(wantFeed, feedAfter(feed)); diff != "" {
		t.Fatalf("feed mismatch (-want +got):\n%s", diff)
	}

	// The journal saw every command log (not the configuration log), in order.
	var jIdx []uint64
	for _, j := range journal {
		jIdx = append(jIdx, j.index)
	}
	if diff := cmp.Diff([]uint64{1, 2, 3, 4, 5, 6, 7, 9}, jIdx); diff != "" {
		t.Fatalf("journal indexes mismatch (-want +got):\n%s", diff)
	}
	if j := journal[len(journal)-1]; j.term != 2 || j.cmd.Op != OpDelete || j.cmd.Key != sdKey("seed") || !j.res.Applied {
		t.Fatalf("last journal record = %+v, want applied delete of seed in term 2", j)
	}
	if j := journal[4]; j.cmd.Op != 0x42 || !errors.Is(j.res.Err, ErrUnknownOp) {
		t.Fatalf("journal record for unknown op = %+v", j)
	}
}

func TestNonCommandLogsAdvanceAppliedIndex(t *testing.T) {
	t.Parallel()
	f := New(nil)
	feed := f.Feed().Head()
	out := f.ApplyBatch([]*raft.Log{{Index: 5, Type: raft.LogConfiguration}})
	if out[0] != nil {
		t.Fatalf("configuration log result = %v, want nil", out[0])
	}
	if f.AppliedIndex() != 5 {
		t.Fatalf("AppliedIndex = %d, want 5", f.AppliedIndex())
	}
	if r := asResult(t, f.Apply(&raft.Log{Index: 6, Type: raft.LogCommand, Data: encode(t, Command{Op: OpNoop})})); !r.Applied || r.Index != 6 {
		t.Fatalf("noop result = %+v", r)
	}
	if f.AppliedIndex() != 6 || f.Store().View().Index() != 6 {
		t.Fatalf("AppliedIndex = %d, View.Index = %d, want 6", f.AppliedIndex(), f.Store().View().Index())
	}
	if got := feedAfter(feed); len(got) != 0 {
		t.Fatalf("batches without changes published %v", got)
	}
	if out := f.ApplyBatch(nil); len(out) != 0 {
		t.Fatalf("ApplyBatch(nil) = %v", out)
	}
}
