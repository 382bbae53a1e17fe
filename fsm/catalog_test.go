package fsm

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/catalog"
	"github.com/chainstore/chainstore/chain"
)

// ---- catalog harness helpers ----

func (h *harness) register(in *catalog.Instance) ApplyResult {
	h.t.Helper()
	return h.apply(registerCmd(in))
}

// mustRegister registers in and fails the test unless it was applied.
func (h *harness) mustRegister(in *catalog.Instance) uint64 {
	h.t.Helper()
	r := h.register(in)
	if !r.Applied || r.Err != nil {
		h.t.Fatalf("register %s/%s = %+v, want applied", in.Service, in.ID, r)
	}
	return r.Index
}

// mustApplyAll applies each command and fails the test unless it was
// applied without error.
func (h *harness) mustApplyAll(cmds []Command) {
	h.t.Helper()
	for _, c := range cmds {
		if r := h.apply(c); !r.Applied || r.Err != nil {
			h.t.Fatalf("setup %v %+v = %+v, want applied", c.Op, c, r)
		}
	}
}

// storedInst returns the catalog form of in as first registered at create and
// last written at modify, with the given health.
func storedInst(in *catalog.Instance, st catalog.Health, out string, create, modify uint64) *catalog.Stored {
	return &catalog.Stored{Instance: *in, Status: st, Output: out, CreateIndex: create, ModifyIndex: modify}
}

// initialOutput is the output a new TTL check starts with.
func initialOutput(t *testing.T) string {
	t.Helper()
	st, out := inst("x", "x", time.Second).InitialStatus()
	if st != catalog.Critical || out == "" {
		t.Fatalf("InitialStatus with a TTL = (%v, %q), want critical with an output", st, out)
	}
	return out
}

// catalogState is what a command must not change when it is rejected or
// changes nothing: the store hash, the feed, and the catalog indexes and
// watch channels of some services.
type catalogState struct {
	h          *harness
	hash       string
	feed       *FeedItem
	services   []string
	indexes    []uint64
	watches    []<-chan struct{}
	listIndex  uint64
	listWatch  <-chan struct{}
	summaries  []ServiceSummary
	allEntries []*catalog.Stored
}

func captureCatalog(h *harness, services ...string) *catalogState {
	s := h.f.Store()
	c := &catalogState{h: h, hash: s.Hash(), feed: h.f.Feed().Head(), services: services}
	for _, svc := range services {
		_, idx, ch := s.Instances(svc)
		c.indexes = append(c.indexes, idx)
		c.watches = append(c.watches, ch)
	}
	c.summaries, c.listIndex, c.listWatch = s.Services()
	c.allEntries = s.View().AllInstances()
	return c
}

func (c *catalogState) checkUnchanged(t *testing.T) {
	t.Helper()
	s := c.h.f.Store()
	if got := s.Hash(); got != c.hash {
		t.Errorf("store hash changed")
	}
	if got := feedAfter(c.feed); len(got) != 0 {
		t.Errorf("feed published %+v, want nothing", got)
	}
	for i, svc := range c.services {
		if _, idx, _ := s.Instances(svc); idx != c.indexes[i] {
			t.Errorf("Instances(%q) index = %d, want unchanged %d", svc, idx, c.indexes[i])
		}
		if isClosed(c.watches[i]) {
			t.Errorf("Instances(%q) watch fired", svc)
		}
	}
	sums, idx, _ := s.Services()
	if idx != c.listIndex || isClosed(c.listWatch) {
		t.Errorf("Services index %d (was %d), watch fired %v; want unchanged", idx, c.listIndex, isClosed(c.listWatch))
	}
	if diff := cmp.Diff(c.summaries, sums); diff != "" {
		t.Errorf("Services changed (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(c.allEntries, s.View().AllInstances()); diff != "" {
		t.Errorf("instances changed (-before +after):\n%s", diff)
	}
}

// commandService returns the service a catalog command concerns in h's
// store (before it is applied).
func commandService(h *harness, c Command) string {
	if c.Instance != nil {
		return c.Instance.Service
	}
	if old := h.f.Store().Instance(c.InstanceID); old != nil {
		return old.Service
	}
	return ""
}

// ---- apply ----

// catalogApplyCase applies setup (each command must apply, at indexes
// 1..len(setup)), then cmd at index len(setup)+1, and checks the result
// and the instance id afterwards.
type catalogApplyCase struct {
	setup       []Command
	cmd         Command
	wantApplied bool
	wantErr     error  // errors.Is target
	wantField   string // the *catalog.ValidationError's Field
	noChange    bool   // true: the store must be unchanged (implied by !wantApplied)
	id          string // instance to inspect; default cmd's
	want        *catalog.Stored
}

func runCatalogApplyCases(t *testing.T, cases map[string]catalogApplyCase) {
	t.Helper()
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mustApplyAll(tc.setup)
			svc := commandService(h, tc.cmd)
			old := []string{svc}
			if tc.cmd.Instance != nil {
				if o := h.f.Store().Instance(tc.cmd.Instance.ID); o != nil && o.Service != svc {
					old = append(old, o.Service)
				}
			}
			before := captureCatalog(h, old...)

			r := h.apply(tc.cmd)
			wantIndex := uint64(len(tc.setup) + 1)
			if r.Index != wantIndex || r.Applied != tc.wantApplied {
				t.Errorf("result = %+v, want Index %d Applied %v", r, wantIndex, tc.wantApplied)
			}
			checkCatalogErr(t, r.Err, tc.wantErr, tc.wantField)

			id := tc.id
			if id == "" {
				id = tc.cmd.InstanceID
				if tc.cmd.Instance != nil {
					id = tc.cmd.Instance.ID
				}
			}
			if diff := cmp.Diff(tc.want, h.f.Store().Instance(id)); diff != "" {
				t.Errorf("Instance(%q) mismatch (-want +got):\n%s", id, diff)
			}
			if tc.noChange || !tc.wantApplied {
				before.checkUnchanged(t)
				return
			}
			// A change bumps the service's index and the services list, and
			// publishes exactly that service.
			if _, idx, _ := h.f.Store().Instances(svc); idx != wantIndex {
				t.Errorf("Instances(%q) index = %d, want %d", svc, idx, wantIndex)
			}
			if _, idx, _ := h.f.Store().Services(); idx != wantIndex {
				t.Errorf("Services index = %d, want %d", idx, wantIndex)
			}
			want := []ChangeSet{{Index: wantIndex, Services: []string{svc}}}
			if diff := cmp.Diff(want, feedAfter(before.feed)); diff != "" {
				t.Errorf("feed mismatch (-want +got):\n%s", diff)
			}
			if h.f.Store().Hash() == before.hash {
				t.Errorf("store hash did not change")
			}
		})
	}
}

// checkCatalogErr checks err against an errors.Is target and/or the Field
// of a *catalog.ValidationError (both empty: want nil).
func checkCatalogErr(t *testing.T, err, wantIs error, wantField string) {
	t.Helper()
	if wantIs == nil && wantField == "" {
		if err != nil {
			t.Errorf("error = %v, want nil", err)
		}
		return
	}
	if wantIs != nil && !errors.Is(err, wantIs) {
		t.Errorf("error = %v, want %v", err, wantIs)
	}
	if wantField != "" {
		var ve *catalog.ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("error = %v (%T), want *catalog.ValidationError", err, err)
		} else if ve.Field != wantField {
			t.Errorf("ValidationError.Field = %q (%v), want %q", ve.Field, ve, wantField)
		}
	}
}

func TestApplyRegister(t *testing.T) {
	t.Parallel()
	ttl := time.Second
	a1, a1TTL := inst("a1", "a", 0), inst("a1", "a", ttl)
	moved := withInst(a1TTL, func(in *catalog.Instance) { in.Port = 9090; in.Tags = []string{"v2"} })
	ttl2 := withInst(a1TTL, func(in *catalog.Instance) { in.TTL = 2 * ttl })
	initial := initialOutput(t)

	runCatalogApplyCases(t, map[string]catalogApplyCase{
		"NewWithoutTTLIsPassing": {
			cmd:         registerCmd(a1),
			wantApplied: true,
			want:        storedInst(a1, catalog.Passing, "", 1, 1),
		},
		"NewWithTTLStartsCritical": {
			cmd:         registerCmd(a1TTL),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Critical, initial, 1, 1),
		},
		"ReregisterSameTTLKeepsHealthAndCreateIndex": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:         registerCmd(moved),
			wantApplied: true,
			want:        storedInst(moved, catalog.Passing, "ok", 1, 3),
		},
		"ReregisterSameTTLKeepsWarning": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Warning, "slow")},
			cmd:         registerCmd(a1TTL),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Warning, "slow", 1, 3),
		},
		"ReregisterChangedTTLResetsToCritical": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:         registerCmd(ttl2),
			wantApplied: true,
			want:        storedInst(ttl2, catalog.Critical, initial, 1, 3),
		},
		"ReregisterAddingTTLStartsCritical": {
			setup:       []Command{registerCmd(a1)},
			cmd:         registerCmd(a1TTL),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Critical, initial, 1, 2),
		},
		"ReregisterDroppingTTLIsPassing": {
			setup:       []Command{registerCmd(a1TTL)},
			cmd:         registerCmd(a1),
			wantApplied: true,
			want:        storedInst(a1, catalog.Passing, "", 1, 2),
		},
		"ReregisterAfterDeregisterIsNew": {
			setup:       []Command{registerCmd(a1), deregisterCmd("a1")},
			cmd:         registerCmd(a1),
			wantApplied: true,
			want:        storedInst(a1, catalog.Passing, "", 3, 3),
		},
		"IDOfAnotherServiceRejected": {
			setup:     []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:       registerCmd(inst("a1", "b", 0)),
			wantField: "ID",
			want:      storedInst(a1TTL, catalog.Passing, "ok", 1, 2),
		},
		"PortZeroRejected": {
			cmd:       registerCmd(withInst(a1, func(in *catalog.Instance) { in.Port = 0 })),
			wantField: "Port",
		},
		"PortZeroOnReregisterKeepsOld": {
			setup:     []Command{registerCmd(a1)},
			cmd:       registerCmd(withInst(a1, func(in *catalog.Instance) { in.Port = 0 })),
			wantField: "Port",
			want:      storedInst(a1, catalog.Passing, "", 1, 1),
		},
		"EmptyIDRejected": {
			cmd:       registerCmd(inst("", "a", 0)),
			wantField: "ID",
		},
		"TTLOutOfRangeRejected": {
			cmd:       registerCmd(inst("a1", "a", time.Millisecond)),
			wantField: "TTL",
		},
	})
}

func TestApplyCheck(t *testing.T) {
	t.Parallel()
	a1, a1TTL := inst("a1", "a", 0), inst("a1", "a", time.Second)
	initial := initialOutput(t)
	long := string(bytes.Repeat([]byte("x"), catalog.MaxOutputLen+1))

	runCatalogApplyCases(t, map[string]catalogApplyCase{
		"Pass": {
			setup:       []Command{registerCmd(a1TTL)},
			cmd:         checkCmd("a1", catalog.Passing, "ok"),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Passing, "ok", 1, 2),
		},
		"Warn": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:         checkCmd("a1", catalog.Warning, "slow"),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Warning, "slow", 1, 3),
		},
		"FailClearsOutput": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:         checkCmd("a1", catalog.Critical, ""),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Critical, "", 1, 3),
		},
		"MaxOutput": {
			setup:       []Command{registerCmd(a1TTL)},
			cmd:         checkCmd("a1", catalog.Passing, long[1:]),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Passing, long[1:], 1, 2),
		},
		"UnknownID": {
			setup:   []Command{registerCmd(a1TTL)},
			cmd:     checkCmd("zz", catalog.Passing, "ok"),
			wantErr: ErrInstanceNotFound,
		},
		"NoTTL": {
			setup:     []Command{registerCmd(a1)},
			cmd:       checkCmd("a1", catalog.Passing, "ok"),
			wantField: "TTL",
			want:      storedInst(a1, catalog.Passing, "", 1, 1),
		},
		"OutputTooLong": {
			setup:     []Command{registerCmd(a1TTL)},
			cmd:       checkCmd("a1", catalog.Passing, long),
			wantField: "Note",
			want:      storedInst(a1TTL, catalog.Critical, initial, 1, 1),
		},
	})
}

func TestApplyCheckExpire(t *testing.T) {
	t.Parallel()
	a1, a1TTL := inst("a1", "a", 0), inst("a1", "a", time.Second)
	initial := initialOutput(t)
	const expired = "TTL expired: no check update within 1s"

	runCatalogApplyCases(t, map[string]catalogApplyCase{
		"ExpiresPassing": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:         expireCmd("a1", 2),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Critical, expired, 1, 3),
		},
		"ExpiresWarning": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Warning, "slow")},
			cmd:         expireCmd("a1", 2),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Critical, expired, 1, 3),
		},
		"ExpiresAfterReregisterKeptHealth": {
			setup:       []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok"), registerCmd(a1TTL)},
			cmd:         expireCmd("a1", 3),
			wantApplied: true,
			want:        storedInst(a1TTL, catalog.Critical, expired, 1, 4),
		},
		"StaleModifyIndex": {
			setup: []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:   expireCmd("a1", 1),
			want:  storedInst(a1TTL, catalog.Passing, "ok", 1, 2),
		},
		"FutureModifyIndex": {
			setup: []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok")},
			cmd:   expireCmd("a1", 3),
			want:  storedInst(a1TTL, catalog.Passing, "ok", 1, 2),
		},
		"AlreadyCritical": {
			setup: []Command{registerCmd(a1TTL)},
			cmd:   expireCmd("a1", 1),
			want:  storedInst(a1TTL, catalog.Critical, initial, 1, 1),
		},
		"CriticalByCheck": {
			setup: []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Critical, "down")},
			cmd:   expireCmd("a1", 2),
			want:  storedInst(a1TTL, catalog.Critical, "down", 1, 2),
		},
		"UnknownID": {
			setup: []Command{registerCmd(a1TTL)},
			cmd:   expireCmd("zz", 1),
		},
		"Deregistered": {
			setup: []Command{registerCmd(a1TTL), checkCmd("a1", catalog.Passing, "ok"), deregisterCmd("a1")},
			cmd:   expireCmd("a1", 2),
		},
		"NoTTL": {
			setup: []Command{registerCmd(a1)},
			cmd:   expireCmd("a1", 1),
			want:  storedInst(a1, catalog.Passing, "", 1, 1),
		},
	})
}

func TestApplyDeregister(t *testing.T) {
	t.Parallel()
	a1, a2 := inst("a1", "a", 0), inst("a2", "a", time.Second)
	runCatalogApplyCases(t, map[string]catalogApplyCase{
		"Removes": {
			setup:       []Command{registerCmd(a1), registerCmd(a2)},
			cmd:         deregisterCmd("a1"),
			wantApplied: true,
		},
		"RemovesLast": {
			setup:       []Command{registerCmd(a1)},
			cmd:         deregisterCmd("a1"),
			wantApplied: true,
		},
		"LeavesOthers": {
			setup:       []Command{registerCmd(a1), registerCmd(a2)},
			cmd:         deregisterCmd("a1"),
			wantApplied: true,
			id:          "a2",
			want:        storedInst(a2, catalog.Critical, initialOutput(t), 2, 2),
		},
		"UnknownIDSucceedsWithNoChange": {
			setup:       []Command{registerCmd(a1)},
			cmd:         deregisterCmd("zz"),
			wantApplied: true,
			noChange:    true,
		},
		"Twice": {
			setup:       []Command{registerCmd(a1), deregisterCmd("a1")},
			cmd:         deregisterCmd("a1"),
			wantApplied: true,
			noChange:    true,
		},
		"EmptyCatalog": {
			cmd:         deregisterCmd("a1"),
			wantApplied: true,
			noChange:    true,
		},
	})
}

// TestDeregisterKeepsServiceIndex checks that a service's index stays
// (monotonic) after its last instance goes, that Services no longer lists
// it, and that the freed ID may be registered for another service.
func TestDeregisterKeepsServiceIndex(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustRegister(inst("a1", "a", 0))                 // 1
	h.mustRegister(inst("b1", "b", time.Second))       // 2
	h.apply(deregisterCmd("a1"))                       // 3
	if r := h.apply(deregisterCmd("a1")); !r.Applied { // 4: no change
		t.Fatalf("second deregister = %+v, want applied", r)
	}

	s := h.f.Store()
	if out, idx, _ := s.Instances("a"); len(out) != 0 || idx != 3 {
		t.Fatalf("Instances(a) = %v, %d; want none at index 3", out, idx)
	}
	sums, idx, _ := s.Services()
	if diff := cmp.Diff([]ServiceSummary{{Name: "b", Instances: 1}}, sums); diff != "" {
		t.Fatalf("Services mismatch (-want +got):\n%s", diff)
	}
	if idx != 3 {
		t.Fatalf("Services index = %d, want 3", idx)
	}
	if _, idx, _ := s.Instances("never"); idx != 0 {
		t.Fatalf("Instances(never) index = %d, want 0", idx)
	}

	// The freed ID can move to b; a's index does not change, b's does.
	h.mustRegister(inst("a1", "b", 0)) // 5
	if _, idx, _ := h.f.Store().Instances("a"); idx != 3 {
		t.Fatalf("Instances(a) index = %d after a write to b, want 3", idx)
	}
	out, idx, _ := h.f.Store().Instances("b")
	want := []*catalog.Stored{
		storedInst(inst("a1", "b", 0), catalog.Passing, "", 5, 5),
		storedInst(inst("b1", "b", time.Second), catalog.Critical, initialOutput(t), 2, 2),
	}
	if diff := cmp.Diff(want, out); diff != "" || idx != 5 {
		t.Fatalf("Instances(b) index %d (want 5), mismatch (-want +got):\n%s", idx, diff)
	}
}

// ---- queries, indexes and watches ----

func TestCatalogQueries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ttl := time.Second
	h.mustApplyAll([]Command{
		registerCmd(inst("web-2", "web", ttl)), // 1
		registerCmd(inst("db-1", "db", 0)),     // 2
		registerCmd(inst("web-1", "web", ttl)), // 3
		registerCmd(inst("web-3", "web", 0)),   // 4
		checkCmd("web-2", catalog.Passing, ""), // 5
		checkCmd("web-1", catalog.Warning, ""), // 6
		registerCmd(inst("api-1", "api", 0)),   // 7
		deregisterCmd("api-1"),                 // 8
	})
	s := h.f.Store()

	out, idx, _ := s.Instances("web")
	if got := ids(out); !slices.Equal(got, []string{"web-1", "web-2", "web-3"}) || idx != 6 {
		t.Errorf("Instances(web) = %v at %d, want [web-1 web-2 web-3] at 6", got, idx)
	}
	sums, idx, _ := s.Services()
	wantSums := []ServiceSummary{{Name: "db", Instances: 1, Passed: 1}, {Name: "web", Instances: 3, Passed: 2}}
	if diff := cmp.Diff(wantSums, sums); diff != "" || idx != 8 {
		t.Errorf("Services() at %d (want 8) mismatch (-want +got):\n%s", idx, diff)
	}
	if got := ids(s.View().AllInstances()); !slices.Equal(got, []string{"db-1", "web-1", "web-2", "web-3"}) {
		t.Errorf("AllInstances = %v, want sorted by ID", got)
	}
	if got := s.Instance("web-1"); got == nil || got.Status != catalog.Warning || got.ModifyIndex != 6 {
		t.Errorf("Instance(web-1) = %+v, want warning at 6", got)
	}
	if got := s.Instance("api-1"); got != nil {
		t.Errorf("Instance(api-1) = %+v after deregister, want nil", got)
	}
	// A View is frozen: later writes do not show in it.
	v := s.View()
	h.mustRegister(inst("web-4", "web", 0))
	if got := ids(v.Instances("web")); len(got) != 3 {
		t.Errorf("old View sees %v, want 3 instances", got)
	}
	if got := ids(h.f.Store().View().Instances("web")); len(got) != 4 {
		t.Errorf("new View sees %v, want 4 instances", got)
	}
}

func ids(in []*catalog.Stored) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		out = append(out, s.ID)
	}
	return out
}

func TestCatalogWatches(t *testing.T) {
	t.Parallel()
	ttl := time.Second
	a1, b1 := inst("a1", "a", ttl), inst("b1", "b", ttl)
	cases := map[string]struct {
		setup         []Command
		cmd           Command
		wantA         bool   // Instances("a") watch fires
		wantServices  bool   // Services() watch fires
		wantAIndex    uint64 // Instances("a") index afterwards
		wantListIndex uint64 // Services() index afterwards
	}{
		"FirstRegister": {
			cmd: registerCmd(a1), wantA: true, wantServices: true, wantAIndex: 1, wantListIndex: 1,
		},
		"ReregisterSameService": {
			setup: []Command{registerCmd(a1)},
			cmd:   registerCmd(a1), wantA: true, wantServices: true, wantAIndex: 2, wantListIndex: 2,
		},
		"RegisterOtherService": {
			setup: []Command{registerCmd(a1)},
			cmd:   registerCmd(b1), wantServices: true, wantAIndex: 1, wantListIndex: 2,
		},
		"RegisterServiceSharingPrefix": {
			setup: []Command{registerCmd(a1)},
			cmd:   registerCmd(inst("ab1", "ab", 0)), wantServices: true, wantAIndex: 1, wantListIndex: 2,
		},
		"Check": {
			setup: []Command{registerCmd(a1)},
			cmd:   checkCmd("a1", catalog.Passing, ""), wantA: true, wantServices: true, wantAIndex: 2, wantListIndex: 2,
		},
		"CheckOtherService": {
			setup: []Command{registerCmd(a1), registerCmd(b1)},
			cmd:   checkCmd("b1", catalog.Passing, ""), wantServices: true, wantAIndex: 1, wantListIndex: 3,
		},
		"CheckExpire": {
			setup: []Command{registerCmd(a1), checkCmd("a1", catalog.Passing, "")},
			cmd:   expireCmd("a1", 2), wantA: true, wantServices: true, wantAIndex: 3, wantListIndex: 3,
		},
		"CheckExpireNotApplied": {
			setup: []Command{registerCmd(a1), checkCmd("a1", catalog.Passing, "")},
			cmd:   expireCmd("a1", 1), wantAIndex: 2, wantListIndex: 2,
		},
		"Deregister": {
			setup: []Command{registerCmd(a1), registerCmd(b1)},
			cmd:   deregisterCmd("a1"), wantA: true, wantServices: true, wantAIndex: 3, wantListIndex: 3,
		},
		"DeregisterOtherService": {
			setup: []Command{registerCmd(a1), registerCmd(b1)},
			cmd:   deregisterCmd("b1"), wantServices: true, wantAIndex: 1, wantListIndex: 3,
		},
		"DeregisterUnknown": {
			setup: []Command{registerCmd(a1)},
			cmd:   deregisterCmd("zz"), wantAIndex: 1, wantListIndex: 1,
		},
		"RejectedCheck": {
			setup: []Command{registerCmd(inst("a1", "a", 0))},
			cmd:   checkCmd("a1", catalog.Passing, ""), wantAIndex: 1, wantListIndex: 1,
		},
		"RejectedRegister": {
			setup: []Command{registerCmd(a1)},
			cmd:   registerCmd(inst("a1", "b", 0)), wantAIndex: 1, wantListIndex: 1,
		},
		"EntryUpsert": {
			setup: []Command{registerCmd(a1)},
			cmd:   upsertCmd(serviceDefaults("a", "http")), wantAIndex: 1, wantListIndex: 1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mustApplyAll(tc.setup)
			_, _, aWatch := h.f.Store().Instances("a")
			_, _, listWatch := h.f.Store().Services()
			h.apply(tc.cmd)
			if tc.wantA {
				waitClosed(t, aWatch, "Instances(a) watch")
			} else if isClosed(aWatch) {
				t.Errorf("Instances(a) watch fired")
			}
			if tc.wantServices {
				waitClosed(t, listWatch, "Services watch")
			} else if isClosed(listWatch) {
				t.Errorf("Services watch fired")
			}
			if _, idx, _ := h.f.Store().Instances("a"); idx != tc.wantAIndex {
				t.Errorf("Instances(a) index = %d, want %d", idx, tc.wantAIndex)
			}
			if _, idx, _ := h.f.Store().Services(); idx != tc.wantListIndex {
				t.Errorf("Services index = %d, want %d", idx, tc.wantListIndex)
			}
		})
	}
}

// TestInstancesWatchBeforeFirstWrite checks the documented coarse channel:
// before a service's first write, its watch still fires on that write.
func TestInstancesWatchBeforeFirstWrite(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.mustRegister(inst("b1", "b", 0))
	out, idx, watch := h.f.Store().Instances("a")
	if len(out) != 0 || idx != 0 {
		t.Fatalf("Instances(a) = %v at %d, want none at 0", out, idx)
	}
	h.mustRegister(inst("a1", "a", 0))
	waitClosed(t, watch, "Instances(a) watch before a's first write")
}

// ---- feed ----

func TestCatalogFeedServices(t *testing.T) {
	t.Parallel()
	ttl := time.Second
	cases := map[string]struct {
		setup []Command
		batch []Command
		want  []ChangeSet // Index 0 means the batch's last index
	}{
		"SeveralServicesInOneBatch": {
			batch: []Command{
				registerCmd(inst("b1", "b", 0)),
				registerCmd(inst("a1", "a", ttl)),
				registerCmd(inst("a2", "a", 0)),
				checkCmd("a1", catalog.Passing, ""),
				checkCmd("zz", catalog.Passing, ""), // rejected
				deregisterCmd("zz"),                 // no change
			},
			want: []ChangeSet{{Services: []string{"a", "b"}}},
		},
		"CheckAndDeregister": {
			setup: []Command{registerCmd(inst("a1", "a", ttl)), registerCmd(inst("b1", "b", 0)), registerCmd(inst("c1", "c", ttl))},
			batch: []Command{checkCmd("a1", catalog.Warning, ""), deregisterCmd("b1")},
			want:  []ChangeSet{{Services: []string{"a", "b"}}},
		},
		"ExpireOnly": {
			setup: []Command{registerCmd(inst("a1", "a", ttl)), checkCmd("a1", catalog.Passing, ""), registerCmd(inst("c1", "c", ttl))},
			batch: []Command{expireCmd("a1", 2), expireCmd("c1", 3)}, // c1 is critical already
			want:  []ChangeSet{{Services: []string{"a"}}},
		},
		"RegisterAndDeregisterInOneBatch": {
			batch: []Command{registerCmd(inst("x1", "x", 0)), deregisterCmd("x1")},
			want:  []ChangeSet{{Services: []string{"x"}}},
		},
		"WithEntries": {
			batch: []Command{upsertCmd(serviceDefaults("web", "http")), registerCmd(inst("web-1", "web", 0))},
			want:  []ChangeSet{{Keys: []chain.Key{sdKey("web")}, Services: []string{"web"}}},
		},
		"EntriesOnly": {
			batch: []Command{upsertCmd(serviceDefaults("web", "http"))},
			want:  []ChangeSet{{Keys: []chain.Key{sdKey("web")}}},
		},
		"NothingChanged": {
			setup: []Command{registerCmd(inst("a1", "a", 0)), registerCmd(inst("t1", "t", ttl))},
			batch: []Command{
				checkCmd("a1", catalog.Passing, ""), // no TTL: rejected
				deregisterCmd("zz"),                 // unknown
				expireCmd("t1", 1),                  // critical already
				expireCmd("a1", 1),                  // no TTL
				registerCmd(inst("a1", "b", 0)),     // ID of another service
			},
			want: nil,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.mustApplyAll(tc.setup)
			head := h.f.Feed().Head()
			logs := make([]*raft.Log, 0, len(tc.batch))
			for _, c := range tc.batch {
				logs = append(logs, h.cmdLog(c))
			}
			h.f.ApplyBatch(logs)
			last := logs[len(logs)-1].Index
			want := slices.Clone(tc.want)
			for i := range want {
				if want[i].Index == 0 {
					want[i].Index = last
				}
			}
			if diff := cmp.Diff(want, feedAfter(head)); diff != "" {
				t.Errorf("feed mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// ---- hash ----

func TestHashReflectsCatalog(t *testing.T) {
	t.Parallel()
	ttl := time.Second
	base := []Command{registerCmd(inst("a1", "a", ttl)), registerCmd(inst("b1", "b", 0))}
	with := func(cmds ...Command) []Command { return append(slices.Clone(base), cmds...) }
	cases := map[string]struct {
		a, b      []Command
		wantEqual bool
	}{
		"SameLog":              {a: with(checkCmd("a1", catalog.Passing, "ok")), b: with(checkCmd("a1", catalog.Passing, "ok")), wantEqual: true},
		"NoChangeCommandsTail": {a: base, b: with(deregisterCmd("zz"), expireCmd("a1", 1), checkCmd("b1", catalog.Passing, "")), wantEqual: true},
		"Status":               {a: with(checkCmd("a1", catalog.Passing, "ok")), b: with(checkCmd("a1", catalog.Warning, "ok"))},
		"Output":               {a: with(checkCmd("a1", catalog.Passing, "ok")), b: with(checkCmd("a1", catalog.Passing, "OK"))},
		"CriticalVsPassing":    {a: with(checkCmd("a1", catalog.Critical, "")), b: with(checkCmd("a1", catalog.Passing, ""))},
		"Instance":             {a: with(registerCmd(inst("c1", "c", 0))), b: with(registerCmd(inst("c1", "c", 2*ttl)))},
		"ServiceIndexOnly":     {a: with(registerCmd(inst("c1", "c", 0)), deregisterCmd("c1")), b: base},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ha, hb := newHarness(t), newHarness(t)
			for _, c := range tc.a {
				ha.apply(c)
			}
			for _, c := range tc.b {
				hb.apply(c)
			}
			if eq := ha.f.Store().Hash() == hb.f.Store().Hash(); eq != tc.wantEqual {
				t.Errorf("hashes equal = %v, want %v", eq, tc.wantEqual)
			}
		})
	}
}

// ---- snapshots ----

// catalogPopulated returns populated(t) plus a catalog with every health,
// metadata, a deregistered service and rejected catalog commands.
func catalogPopulated(t *testing.T) *harness {
	t.Helper()
	h := populated(t)
	ttl := 10 * time.Second
	h.mustRegister(&catalog.Instance{
		ID: "web-1", Service: "web", Address: "10.0.0.1", Port: 443, Datacenter: "dc1", TTL: ttl,
		Meta: map[string]string{"version": "v1"}, Tags: []string{"primary"},
	})
	h.mustRegister(&catalog.Instance{
		ID: "web-2", Service: "web", Address: "10.0.0.2", Port: 443, Datacenter: "dc1", TTL: ttl,
		Meta: map[string]string{"version": "v2"},
	})
	h.mustRegister(inst("db-1", "db", 0))
	h.mustRegister(inst("cache-1", "cache", ttl))
	h.mustRegister(inst("gone-1", "gone", 0))
	h.mustApplyAll([]Command{
		checkCmd("web-1", catalog.Passing, "ok"),
		checkCmd("web-2", catalog.Warning, "slow"),
		deregisterCmd("gone-1"),
	})
	h.apply(checkCmd("db-1", catalog.Passing, "")) // rejected: no TTL
	h.apply(registerCmd(inst("db-1", "web", 0)))   // rejected: another service
	h.apply(expireCmd("web-1", 1))                 // stale
	return h
}

// catalogOnly returns a harness with only catalog state.
func catalogOnly(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.mustRegister(inst("a1", "a", time.Second))
	h.mustApplyAll([]Command{checkCmd("a1", catalog.Passing, "ok"), expireCmd("a1", 2)})
	h.mustRegister(inst("b1", "b", 0))
	return h
}

// deregisteredOnly returns a harness whose catalog holds only index rows.
func deregisteredOnly(t *testing.T) *harness {
	t.Helper()
	h := newHarness(t)
	h.mustRegister(inst("a1", "a", 0))
	h.apply(deregisterCmd("a1"))
	return h
}

func TestSnapshotRoundTripWithCatalog(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		build    func(t *testing.T) *harness
		services []string
	}{
		"EntriesAndCatalog": {build: catalogPopulated, services: []string{"web", "db", "cache", "gone", "never"}},
		"CatalogOnly":       {build: catalogOnly, services: []string{"a", "b", "never"}},
		"IndexRowsOnly":     {build: deregisteredOnly, services: []string{"a", "never"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := tc.build(t)
			b := snapshotBytes(t, h.f)
			if _, recs, counts := parseTestSnapshot(t, b); len(counts) != 5 || !hasCatalogRecord(recs) {
				t.Fatalf("snapshot end counts = %v, want 5 with catalog records", counts)
			}

			f2 := New(nil)
			if err := restore(f2, b); err != nil {
				t.Fatalf("Restore = %v", err)
			}
			src, dst := h.f.Store(), f2.Store()
			if got, want := dst.Hash(), src.Hash(); got != want {
				t.Fatalf("restored Hash = %s, want %s", got, want)
			}
			if got, want := f2.AppliedIndex(), h.f.AppliedIndex(); got != want {
				t.Errorf("restored AppliedIndex = %d, want %d", got, want)
			}
			for _, svc := range tc.services {
				wantOut, wantIdx, _ := src.Instances(svc)
				gotOut, gotIdx, _ := dst.Instances(svc)
				if diff := cmp.Diff(wantOut, gotOut); diff != "" || gotIdx != wantIdx {
					t.Errorf("Instances(%q) index %d, want %d; mismatch (-original +restored):\n%s", svc, gotIdx, wantIdx, diff)
				}
			}
			wantSums, wantIdx, _ := src.Services()
			gotSums, gotIdx, _ := dst.Services()
			if diff := cmp.Diff(wantSums, gotSums); diff != "" || gotIdx != wantIdx {
				t.Errorf("Services index %d, want %d; mismatch (-original +restored):\n%s", gotIdx, wantIdx, diff)
			}
			if diff := cmp.Diff(src.View().AllInstances(), dst.View().AllInstances()); diff != "" {
				t.Errorf("AllInstances mismatch (-original +restored):\n%s", diff)
			}
			if !bytes.Equal(b, snapshotBytes(t, f2)) {
				t.Errorf("snapshot of restored FSM differs from the original snapshot")
			}

			// Catalog writes keep working on the restored store, with the
			// same results as on the original.
			h2 := &harness{t: t, f: f2, next: h.next}
			for _, c := range []Command{
				registerCmd(inst("new-1", "new", time.Second)),
				checkCmd("new-1", catalog.Passing, "up"),
				expireCmd("new-1", h.next+1),
				deregisterCmd("new-1"),
			} {
				r1, r2 := h.apply(c), h2.apply(c)
				if !r1.Applied || !r2.Applied || r1.Err != nil || r2.Err != nil {
					t.Fatalf("%v: original %+v, restored %+v; want both applied", c.Op, r1, r2)
				}
			}
			if h.f.Store().Hash() != f2.Store().Hash() {
				t.Errorf("original and restored diverge after the same writes")
			}
		})
	}
}

func TestSnapshotWithoutCatalogKeepsOldFormat(t *testing.T) {
	t.Parallel()
	cases := map[string]func(t *testing.T) *harness{
		"Empty": func(t *testing.T) *harness {
			t.Helper()
			return newHarness(t)
		},
		"Populated": populated,
		"RejectedCatalogCommandsOnly": func(t *testing.T) *harness {
			t.Helper()
			h := populated(t)
			h.apply(checkCmd("zz", catalog.Passing, ""))
			h.apply(deregisterCmd("zz"))
			h.apply(registerCmd(inst("a1", "a", time.Millisecond))) // invalid TTL
			return h
		},
	}
	for name, build := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := build(t)
			b := snapshotBytes(t, h.f)
			hdr, recs, counts := parseTestSnapshot(t, b)
			if hasCatalogRecord(recs) {
				t.Fatalf("snapshot without catalog has catalog records")
			}
			if want := countRecords(recs)[:3]; !slices.Equal(counts, want) {
				t.Fatalf("end counts = %v, want the 3 counts %v", counts, want)
			}
			// The bytes are exactly the old format: header, records, end
			// with 3 counts and the CRC.
			if got := buildTestSnapshot(hdr, recs, counts); !bytes.Equal(got, b) {
				t.Fatalf("snapshot is not in the 3-count format")
			}

			f2 := New(nil)
			if err := restore(f2, b); err != nil {
				t.Fatalf("Restore = %v", err)
			}
			if f2.Store().Hash() != h.f.Store().Hash() {
				t.Errorf("restored Hash differs")
			}
			if sums, idx, _ := f2.Store().Services(); len(sums) != 0 || idx != 0 {
				t.Errorf("restored Services = %v at %d, want empty", sums, idx)
			}
			// The restored store accepts catalog writes, and then snapshots
			// with 5 counts.
			h2 := &harness{t: t, f: f2, next: h.next}
			h2.mustRegister(inst("a1", "a", 0))
			if _, _, counts := parseTestSnapshot(t, snapshotBytes(t, f2)); len(counts) != 5 {
				t.Errorf("after a register: end counts %v, want 5", counts)
			}
		})
	}
}

// An empty catalog does not change the hash: a store that never saw the
// catalog hashes like one whose catalog commands were all rejected.
func TestHashWithoutCatalogUnchangedByRejectedCatalogCommands(t *testing.T) {
	t.Parallel()
	a, b := populated(t), populated(t)
	b.apply(checkCmd("zz", catalog.Passing, ""))
	b.apply(deregisterCmd("zz"))
	if a.f.Store().Hash() != b.f.Store().Hash() {
		t.Fatalf("rejected catalog commands changed the hash")
	}
}

func TestRestoreRejectsBadCatalogRecords(t *testing.T) {
	t.Parallel()
	good := snapshotBytes(t, catalogPopulated(t).f)
	hdr, recs, counts := parseTestSnapshot(t, good)
	if got := buildTestSnapshot(hdr, recs, counts); !bytes.Equal(got, good) {
		t.Fatalf("test snapshot builder does not reproduce a good snapshot")
	}
	firstInst := slices.IndexFunc(recs, func(r testRecord) bool { return r.typ == recInstance })
	firstCat := slices.IndexFunc(recs, func(r testRecord) bool { return r.typ == recCatIndex })
	if firstInst < 0 || firstCat < 0 {
		t.Fatalf("snapshot has no catalog records")
	}
	var inst0 catalog.Stored
	if err := json.Unmarshal(recs[firstInst].payload, &inst0); err != nil {
		t.Fatal(err)
	}
	// withInstance replaces the first instance record's payload.
	withInstance := func(p []byte) []testRecord {
		out := slices.Clone(recs)
		out[firstInst] = testRecord{recInstance, p}
		return out
	}
	modInstance := func(mod func(s *catalog.Stored)) []testRecord {
		s := inst0
		mod(&s)
		js, err := json.Marshal(&s)
		if err != nil {
			t.Fatal(err)
		}
		return withInstance(js)
	}
	withCatIndex := func(p []byte) []testRecord {
		out := slices.Clone(recs)
		out[firstCat] = testRecord{recCatIndex, p}
		return out
	}
	insertAt := func(i int, r testRecord) []testRecord { return slices.Insert(slices.Clone(recs), i, r) }
	withCounts := func(mod func(c []uint64) []uint64) []uint64 { return mod(slices.Clone(counts)) }

	cases := map[string]struct {
		recs   []testRecord
		counts []uint64 // nil: the records' own 5 counts
	}{
		"InstanceBadJSON":            {recs: withInstance([]byte(`{"ID":`))},
		"InstanceNotJSON":            {recs: withInstance([]byte("\x00\x01"))},
		"InstanceEmpty":              {recs: withInstance(nil)},
		"InstanceUnknownField":       {recs: withInstance(append(bytes.TrimSuffix(recs[firstInst].payload, []byte("}")), `,"Bogus":1}`...))},
		"InstanceTrailingData":       {recs: withInstance(append(slices.Clone(recs[firstInst].payload), " {}"...))},
		"InstanceTrailingBrace":      {recs: withInstance(append(slices.Clone(recs[firstInst].payload), '}'))},
		"InstanceInvalidPort":        {recs: modInstance(func(s *catalog.Stored) { s.Port = 0 })},
		"InstanceEmptyID":            {recs: modInstance(func(s *catalog.Stored) { s.ID = "" })},
		"InstanceStatusZero":         {recs: modInstance(func(s *catalog.Stored) { s.Status = 0 })},
		"InstanceStatusUnknown":      {recs: modInstance(func(s *catalog.Stored) { s.Status = 7 })},
		"InstanceZeroCreateIndex":    {recs: modInstance(func(s *catalog.Stored) { s.CreateIndex = 0 })},
		"InstanceModifyBeforeCreate": {recs: modInstance(func(s *catalog.Stored) { s.ModifyIndex = s.CreateIndex - 1 })},
		"DuplicateInstance":          {recs: insertAt(firstInst, recs[firstInst])},
		"DuplicateInstanceChanged":   {recs: insertAt(firstInst, testRecord{recInstance, modInstance(func(s *catalog.Stored) { s.Port = 1 })[firstInst].payload})},
		"CatalogIndexDuplicate":      {recs: insertAt(firstCat, recs[firstCat])},
		"CatalogIndexEmptyName":      {recs: withCatIndex(binary.AppendUvarint(appendString(nil, ""), 3))},
		"CatalogIndexNoValue":        {recs: withCatIndex(appendString(nil, "x"))},
		"CatalogIndexTrailing":       {recs: withCatIndex(append(binary.AppendUvarint(appendString(nil, "x"), 3), 0))},
		"CatalogIndexBadName":        {recs: withCatIndex([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})},
		"ThreeCounts":                {recs: recs, counts: counts[:3]},
		"FourCounts":                 {recs: recs, counts: counts[:4]},
		"SixCounts":                  {recs: recs, counts: append(slices.Clone(counts), 0)},
		"InstanceCountHigh":          {recs: recs, counts: withCounts(func(c []uint64) []uint64 { c[3]++; return c })},
		"InstanceCountLow":           {recs: recs, counts: withCounts(func(c []uint64) []uint64 { c[3]--; return c })},
		"CatalogIndexCountHigh":      {recs: recs, counts: withCounts(func(c []uint64) []uint64 { c[4]++; return c })},
		"CatalogCountsSwapped":       {recs: recs, counts: withCounts(func(c []uint64) []uint64 { c[3], c[4] = c[4], c[3]; return c })},
		"CatalogCountsOnEntries":     {recs: recs, counts: withCounts(func(c []uint64) []uint64 { c[0] += c[3]; c[3] = 0; return c })},
		"CatalogRecordsDropped":      {recs: withoutCatalog(recs), counts: counts},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			counts := tc.counts
			if counts == nil {
				counts = countRecords(tc.recs)
			}
			h := newHarness(t)
			h.mustUpsert(serviceDefaults("keep", "http"))
			h.mustRegister(inst("keep-1", "keep", 0))
			checkRestoreRejected(t, h.f, buildTestSnapshot(hdr, tc.recs, counts), ErrBadSnapshot)
		})
	}
}

func TestRestoreRejectsEveryCatalogTruncation(t *testing.T) {
	t.Parallel()
	good := snapshotBytes(t, catalogOnly(t).f)
	h := newHarness(t)
	h.mustRegister(inst("keep-1", "keep", 0))
	for n := range len(good) {
		checkRestoreRejected(t, h.f, good[:n], ErrBadSnapshot)
	}
}

// ---- snapshot test helpers ----

type testRecord struct {
	typ     byte
	payload []byte
}

// parseTestSnapshot splits a valid snapshot into its header, its records
// (without the end record) and the end record's counts.
func parseTestSnapshot(t *testing.T, b []byte) (hdr []byte, recs []testRecord, counts []uint64) {
	t.Helper()
	if len(b) < 18 {
		t.Fatalf("snapshot of %d bytes", len(b))
	}
	hdr, rest := slices.Clone(b[:18]), b[18:]
	for len(rest) > 0 {
		typ := rest[0]
		n, k := binary.Uvarint(rest[1:])
		if k <= 0 || uint64(len(rest)-1-k) < n {
			t.Fatalf("bad record length")
		}
		p := rest[1+k : 1+k+int(n)]
		rest = rest[1+k+int(n):]
		if typ != recEnd {
			recs = append(recs, testRecord{typ, slices.Clip(slices.Clone(p))})
			continue
		}
		if len(rest) != 0 {
			t.Fatalf("%d bytes after the end record", len(rest))
		}
		for len(p) > 4 {
			v, k := binary.Uvarint(p)
			if k <= 0 {
				t.Fatalf("bad end count")
			}
			counts = append(counts, v)
			p = p[k:]
		}
		return hdr, recs, counts
	}
	t.Fatalf("no end record")
	return nil, nil, nil
}

// buildTestSnapshot assembles a snapshot with a correct checksum.
func buildTestSnapshot(hdr []byte, recs []testRecord, counts []uint64) []byte {
	b := slices.Clone(hdr)
	for _, r := range recs {
		b = appendRecord(b, r.typ, r.payload, nil)
	}
	var p []byte
	for _, c := range counts {
		p = binary.AppendUvarint(p, c)
	}
	p = binary.BigEndian.AppendUint32(p, crc32.Checksum(b, crcTable))
	return appendRecord(b, recEnd, p, nil)
}

// countRecords returns the 5 end counts of recs.
func countRecords(recs []testRecord) []uint64 {
	c := make([]uint64, 5)
	for _, r := range recs {
		if r.typ >= 1 && r.typ <= 5 {
			c[r.typ-1]++
		}
	}
	return c
}

func hasCatalogRecord(recs []testRecord) bool {
	return slices.ContainsFunc(recs, func(r testRecord) bool { return r.typ == recInstance || r.typ == recCatIndex })
}

func withoutCatalog(recs []testRecord) []testRecord {
	return slices.DeleteFunc(slices.Clone(recs), func(r testRecord) bool { return r.typ == recInstance || r.typ == recCatIndex })
}
