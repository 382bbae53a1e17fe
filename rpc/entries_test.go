package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/chainstore/chainstore/internal/testutil"

	"github.com/chainstore/chainstore/api"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/raft"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/raftnode"
	"github.com/chainstore/chainstore/version"
)

const (
	webHTTP = `{"Kind":"service-defaults","Name":"web","Protocol":"http"}`
	webGRPC = `{"Kind":"service-defaults","Name":"web","Protocol":"grpc"}`
	apiHTTP = `{"Kind":"service-defaults","Name":"api","Protocol":"http"}`
)

func TestApplyGetListDelete(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)

	w := put(t, n.client, webHTTP)
	a := put(t, n.client, apiHTTP)
	if !w.Applied || !a.Applied || w.Index != 1 || a.Index != 2 || w.Kind != "service-defaults" || w.Name != "web" {
		t.Fatalf("Apply responses = %v, %v; want applied at indexes 1 and 2", w, a)
	}

	// Get reports the key's own index, not the table's.
	got, err := n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "WEB"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !got.Found || got.CreateIndex != 1 || got.ModifyIndex != 1 || got.Meta.GetIndex() != 1 {
		t.Errorf("Get(web) = found %v, create %d, modify %d, meta index %d; want true, 1, 1, 1",
			got.Found, got.CreateIndex, got.ModifyIndex, got.Meta.GetIndex())
	}
	e, err := chain.DecodeEntry(got.Entry)
	if err != nil {
		t.Fatalf("decode returned entry: %v", err)
	}
	if sd, ok := e.(*chain.ServiceConfigEntry); !ok || sd.Protocol != "http" {
		t.Errorf("Get(web) entry = %#v, want service-defaults with protocol http", e)
	}

	// An update keeps CreateIndex.
	u := put(t, n.client, webGRPC)
	got, err = n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.CreateIndex != 1 || got.ModifyIndex != u.Index || u.Index != 3 {
		t.Errorf("after update: create %d modify %d (apply index %d), want 1, 3, 3", got.CreateIndex, got.ModifyIndex, u.Index)
	}

	list, err := n.client.List(ctx, &chainstorev1.ListRequest{Kind: "service-defaults"})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var names []string
	for _, le := range list.Entries {
		names = append(names, le.Name)
	}
	if diff := cmp.Diff([]string{"api", "web"}, names); diff != "" || list.Meta.GetIndex() != 3 {
		t.Errorf("List names (-want +got):\n%s meta index %d, want 3", diff, list.Meta.GetIndex())
	}

	d, err := n.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "web"})
	if err != nil || !d.Deleted || d.Index != 4 {
		t.Fatalf("Delete = %v, %v; want deleted at 4", d, err)
	}
	got, err = n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web"})
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Found || got.Meta.GetIndex() != 4 {
		t.Errorf("Get after delete = found %v, index %d; want not found at the tombstone index 4", got.Found, got.Meta.GetIndex())
	}
	// A key that never existed reports index 1, never 0.
	got, err = n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-router", Name: "nothing"})
	if err != nil || got.Found || got.Meta.GetIndex() != 1 {
		t.Errorf("Get(never existed) = %v, %v; want not found with index 1", got, err)
	}
	// Deleting what does not exist succeeds without a Raft write.
	before, _ := n.raft.counts()
	d, err = n.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "ghost"})
	after, _ := n.raft.counts()
	if err != nil || !d.Deleted || after != before {
		t.Errorf("Delete(absent) = %v, %v, raft applies %d -> %d; want deleted without a write", d, err, before, after)
	}
}

func TestCASTable(t *testing.T) {
	t.Parallel()
	type step struct {
		entry string // upsert when set, delete otherwise
		cas   bool
		index uint64
	}
	// Each case writes web (index 1) when exists is set, then runs op.
	cases := map[string]struct {
		exists      bool
		op          step
		wantApplied bool
	}{
		"upsert cas 0, absent: written":             {op: step{entry: webHTTP, cas: true}, wantApplied: true},
		"upsert cas 0, exists: not written":         {exists: true, op: step{entry: webGRPC, cas: true}, wantApplied: false},
		"upsert cas N, absent: not written":         {op: step{entry: webHTTP, cas: true, index: 1}, wantApplied: false},
		"upsert cas N = ModifyIndex: written":       {exists: true, op: step{entry: webGRPC, cas: true, index: 1}, wantApplied: true},
		"upsert cas N = ModifyIndex, unchanged":     {exists: true, op: step{entry: webHTTP, cas: true, index: 1}, wantApplied: true},
		"upsert cas N != ModifyIndex: not written":  {exists: true, op: step{entry: webGRPC, cas: true, index: 7}, wantApplied: false},
		"plain upsert over existing: written":       {exists: true, op: step{entry: webGRPC}, wantApplied: true},
		"delete cas 0, exists: never deletes":       {exists: true, op: step{cas: true}, wantApplied: false},
		"delete cas N, absent: not deleted":         {op: step{cas: true, index: 1}, wantApplied: false},
		"delete cas N = ModifyIndex: deleted":       {exists: true, op: step{cas: true, index: 1}, wantApplied: true},
		"delete cas N != ModifyIndex: not deleted":  {exists: true, op: step{cas: true, index: 2}, wantApplied: false},
		"plain delete of existing entry: deleted":   {exists: true, op: step{}, wantApplied: true},
		"plain delete of absent entry: no-op, true": {op: step{}, wantApplied: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := startESNode(t, "a", true, newESCluster(), nil)
			ctx := testCtx(t)
			if tc.exists {
				put(t, n.client, webHTTP)
			}
			var applied bool
			if tc.op.entry != "" {
				resp, err := n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(tc.op.entry), Cas: tc.op.cas, ModifyIndex: tc.op.index})
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				applied = resp.Applied
			} else {
				resp, err := n.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "web", Cas: tc.op.cas, ModifyIndex: tc.op.index})
				if err != nil {
					t.Fatalf("Delete: %v", err)
				}
				applied = resp.Deleted
			}
			if applied != tc.wantApplied {
				t.Errorf("applied = %v, want %v", applied, tc.wantApplied)
			}
		})
	}
}

func TestApplyRejectsBadEntries(t *testing.T) { //nolint:tparallel // the checks after the subtests (nothing was stored) must run after them, which parallel subtests would not
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)

	decodeInput := `{"Kind":"service-defaults","Name":"web","cornfig":1}`
	_, decodeErr := chain.DecodeEntry([]byte(decodeInput))
	invalidInput := `{"Kind":"service-router","Name":"web","Routes":[{"Match":{"HTTP":{"PathExact":"x"}}}]}`
	invalid, err := chain.DecodeEntry([]byte(invalidInput))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	prepErr := chain.Prepare(invalid)
	splitterInput := `{"Kind":"service-splitter","Name":"main","Splits":[{"Weight":100}]}`
	splitter, err := chain.DecodeEntry([]byte(splitterInput))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if err := chain.Prepare(splitter); err != nil {
		t.Fatalf("prepare splitter: %v", err)
	}
	graphErr := chain.ValidateWrite(chain.NewMemStore(), chain.Change{Key: chain.KeyOf(splitter.GetKind(), splitter.GetName()), Entry: splitter})
	if decodeErr == nil || prepErr == nil || graphErr == nil {
		t.Fatalf("test inputs must fail: decode %v, prepare %v, graph %v", decodeErr, prepErr, graphErr)
	}

	cases := map[string]struct {
		input      string
		wantReason string
		wantText   string
		wantInMsg  string
	}{
		"decode error":     {decodeInput, api.ReasonInvalidEntry, decodeErr.Error(), decodeErr.Error()},
		"validation error": {invalidInput, api.ReasonInvalidEntry, prepErr.Error(), `config entry "service-router" / "web": `},
		"graph error":      {splitterInput, api.ReasonGraphInvalid, graphErr.Error(), `config entry "service-splitter" / "main": `},
		"not an entry":     {`[1, 2]`, api.ReasonInvalidEntry, "", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(tc.input)})
			if status.Code(err) != codes.InvalidArgument || api.ErrorReason(err) != tc.wantReason {
				t.Fatalf("Apply(%s) = %v (reason %q), want InvalidArgument with reason %s", tc.input, err, api.ErrorReason(err), tc.wantReason)
			}
			if tc.wantText != "" && api.ErrorText(err) != tc.wantText {
				t.Errorf("api.ErrorText = %q, want %q", api.ErrorText(err), tc.wantText)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tc.wantInMsg) {
				t.Errorf("status message %q does not contain %q", msg, tc.wantInMsg)
			}
		})
	}
	// Nothing was stored.
	list, err := n.client.List(ctx, &chainstorev1.ListRequest{Kind: "service-splitter"})
	if err != nil || len(list.Entries) != 0 {
		t.Errorf("List(service-splitter) = %v, %v; want empty", list, err)
	}
	for name, req := range map[string]*chainstorev1.GetRequest{
		"bad kind": {Kind: "service-nope", Name: "x"},
		"no name":  {Kind: "service-defaults"},
	} {
		if _, err := n.client.Get(ctx, req); status.Code(err) != codes.InvalidArgument {
			t.Errorf("Get(%s) = %v, want InvalidArgument", name, err)
		}
	}
}

func TestUnchangedWriteIsSkipped(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	first := put(t, n.client, webHTTP)
	// The same entry spelled differently (snake_case, lower-case protocol
	// after normalization) is the same content.
	again := put(t, n.client, `{"kind":"service-defaults","name":"web","protocol":"HTTP"}`)
	applies, reads := n.raft.counts()
	if !again.Applied || again.Index != first.Index || applies != 1 {
		t.Errorf("second identical write = %v (raft applies %d), want applied at index %d with 1 raft apply", again, applies, first.Index)
	}
	if reads != 1 {
		t.Errorf("ReadIndex calls = %d, want 1 (the skip is confirmed by a linearizable read)", reads)
	}
}

func TestEntrySizeLimit(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	// A valid entry of exactly size bytes: JSON padded with spaces.
	entryOfSize := func(size int) []byte {
		head := `{"Kind":"service-defaults","Name":"big","Protocol":"http"`
		return []byte(head + strings.Repeat(" ", size-len(head)-1) + "}")
	}
	const limit = DefaultMaxEntrySize
	for _, tc := range []struct {
		size int
		want codes.Code
	}{
		{limit - 1, codes.OK},
		{limit, codes.OK},
		{limit + 1, codes.InvalidArgument},
		{DefaultMaxRecvMsgSize + 1, codes.ResourceExhausted}, // refused by gRPC itself
	} {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			t.Parallel()
			_, err := n.client.Apply(ctx, &chainstorev1.ApplyRequest{Entry: entryOfSize(tc.size)})
			if status.Code(err) != tc.want {
				t.Fatalf("Apply(%d bytes) = %v, want %v", tc.size, err, tc.want)
			}
			if tc.want == codes.InvalidArgument {
				if api.ErrorReason(err) != api.ReasonEntryTooLarge || !strings.Contains(err.Error(), fmt.Sprintf("the limit is %d bytes", limit)) {
					t.Errorf("error = %v (reason %q), want ENTRY_TOO_LARGE naming the limit", err, api.ErrorReason(err))
				}
			}
		})
	}
}

func TestBlockingGet(t *testing.T) { //nolint:tparallel // the subtests share one node and run in order: each expects the index (base) and the blocked-query count the ones before left
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	base := put(t, n.client, webHTTP).Index

	getAsync := func(ctx context.Context, req *chainstorev1.GetRequest) <-chan *chainstorev1.GetResponse {
		ch := make(chan *chainstorev1.GetResponse, 1)
		go func() {
			resp, err := n.client.Get(ctx, req)
			if err != nil {
				t.Errorf("Get: %v", err)
			}
			ch <- resp
		}()
		return ch
	}
	blockingReq := func(name string, wait time.Duration) *chainstorev1.GetRequest {
		return &chainstorev1.GetRequest{Kind: "service-defaults", Name: name,
			Options: &chainstorev1.QueryOptions{MinIndex: base, Wait: durationpb.New(wait)}}
	}

	t.Run("wakes on a change of the key", func(t *testing.T) {
		ch := getAsync(ctx, blockingReq("web", time.Minute))
		w := putCtx(ctx, t, n.client, webGRPC)
		if resp := <-ch; resp.GetMeta().GetIndex() != w.Index || resp.GetModifyIndex() != w.Index {
			t.Errorf("blocking Get returned index %d, want %d", resp.GetMeta().GetIndex(), w.Index)
		}
		base = w.Index
	})

	t.Run("ignores other keys until the wait ends", func(t *testing.T) {
		const wait = 300 * time.Millisecond
		start := time.Now()
		ch := getAsync(ctx, blockingReq("web", wait))
		putCtx(ctx, t, n.client, apiHTTP)
		resp := <-ch
		if elapsed := time.Since(start); elapsed < wait || resp.GetMeta().GetIndex() != base {
			t.Errorf("Get returned after %s with index %d; want after >= %s with index %d", elapsed, resp.GetMeta().GetIndex(), wait, base)
		}
	})

	t.Run("returns before the caller's deadline", func(t *testing.T) {
		// The server leaves max(1/16, 50 ms) of the deadline to answer:
		// ~94 ms here, enough for a loaded race-enabled test run.
		dctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		defer cancel()
		resp, err := n.client.Get(dctx, blockingReq("web", time.Minute))
		if err != nil || resp.GetMeta().GetIndex() != base {
			t.Errorf("Get = %v, %v; want the unchanged result before the deadline", resp, err)
		}
	})

	t.Run("min index 0 does not block", func(t *testing.T) {
		resp, err := n.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web"})
		if err != nil || resp.GetMeta().GetIndex() != base {
			t.Errorf("Get = %v, %v", resp, err)
		}
	})

	t.Run("wakes on restore, index may go backwards", func(t *testing.T) {
		// A stale read: the fake Raft's read index stays ahead of the
		// restored FSM, which a real restore (to a later snapshot) cannot do.
		req := blockingReq("web", time.Minute)
		req.Options.Consistency = chainstorev1.Consistency_CONSISTENCY_STALE
		ch := getAsync(ctx, req)
		// Restore a snapshot of an empty FSM: web disappears, index 0 -> 1.
		var buf bytes.Buffer
		snap, err := fsm.New(nil).Snapshot()
		if err != nil {
			t.Fatalf("Snapshot: %v", err)
		}
		if err := snap.Persist(&bufSink{Buffer: &buf}); err != nil {
			t.Fatalf("Persist: %v", err)
		}
		waitBlocked(t, n.srv, 1)
		if err := n.fsm.Restore(io.NopCloser(&buf)); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		if resp := <-ch; resp.GetFound() || resp.GetMeta().GetIndex() != 1 {
			t.Errorf("Get after restore = %v, want not found with index 1", resp)
		}
	})

	t.Run("Close releases blocked queries", func(t *testing.T) {
		m := startESNode(t, "b", true, newESCluster(), nil)
		idx := putCtx(ctx, t, m.client, webHTTP).Index
		ch := make(chan error, 1)
		go func() {
			_, err := m.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
				Options: &chainstorev1.QueryOptions{MinIndex: idx, Wait: durationpb.New(time.Minute)}})
			ch <- err
		}()
		waitBlocked(t, m.srv, 1)
		m.srv.Close()
		if err := <-ch; err != nil {
			t.Errorf("Get after Close = %v, want the current result", err)
		}
	})
}

// waitBlocked polls until n queries are blocked in srv.
func waitBlocked(t *testing.T, srv *Services, n int64) {
	t.Helper()
	testutil.Poll(t, 10*time.Second, "queries blocked", func() bool { return srv.Blocked() >= n })
}

// bufSink is a raft.SnapshotSink over a buffer.
type bufSink struct{ *bytes.Buffer }

func (bufSink) ID() string    { return "test" }
func (bufSink) Cancel() error { return nil }
func (bufSink) Close() error  { return nil }

var _ raft.SnapshotSink = bufSink{}

func TestRaftErrorsMapToCodes(t *testing.T) {
	t.Parallel()
	cases := map[string]struct {
		err        error
		wantCode   codes.Code
		wantReason string
		wantApply  int // raft applies after the call
	}{
		"unknown outcome is reported, not retried": {
			err: fmt.Errorf("apply: lost: %w", raftnode.ErrUnknownOutcome), wantCode: codes.Unknown, wantReason: api.ReasonUnknownOutcome,
		},
		"enqueue timeout is resource exhausted": {
			err: fmt.Errorf("apply: %w", raftnode.ErrTimeout), wantCode: codes.ResourceExhausted,
		},
		"not leader before proposal is retried": {
			err: fmt.Errorf("apply: %w", raftnode.ErrNotLeader), wantCode: codes.OK, wantApply: 1,
		},
		"shutdown": {
			err: fmt.Errorf("apply: %w", raftnode.ErrShutdown), wantCode: codes.Unavailable,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			n := startESNode(t, "a", true, newESCluster(), nil)
			n.raft.set(func(r *esRaft) { r.applyErrs = []error{tc.err} })
			_, err := n.client.Apply(testCtx(t), &chainstorev1.ApplyRequest{Entry: []byte(webHTTP)})
			if status.Code(err) != tc.wantCode || api.ErrorReason(err) != tc.wantReason {
				t.Errorf("Apply = %v (reason %q), want %v with reason %q", err, api.ErrorReason(err), tc.wantCode, tc.wantReason)
			}
			if applies, _ := n.raft.counts(); applies != tc.wantApply {
				t.Errorf("raft applies = %d, want %d", applies, tc.wantApply)
			}
			if tc.wantCode == codes.Unknown && !strings.Contains(err.Error(), "outcome unknown") {
				t.Errorf("message %q does not say the outcome is unknown", err)
			}
		})
	}
}

func TestFollowerForwardsToLeader(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	leader := startESNode(t, "L", true, cl, nil)
	follower := startESNode(t, "F", false, cl, nil)
	follower.raft.set(func(r *esRaft) { r.leaderID = "L" })
	ctx := testCtx(t)

	w := put(t, follower.client, webHTTP)
	if applies, _ := leader.raft.counts(); !w.Applied || applies != 1 {
		t.Fatalf("write through follower = %v, leader applies %d; want applied on the leader", w, applies)
	}
	d, err := follower.client.Delete(ctx, &chainstorev1.DeleteRequest{Kind: "service-defaults", Name: "web", Cas: true, ModifyIndex: w.Index})
	if err != nil || !d.Deleted {
		t.Fatalf("delete through follower = %v, %v", d, err)
	}
	put(t, follower.client, apiHTTP)

	// default and consistent reads go to the leader; stale reads are local
	// (the follower's own FSM is empty here).
	for mode, wantFound := range map[chainstorev1.Consistency]bool{
		chainstorev1.Consistency_CONSISTENCY_UNSPECIFIED: true,
		chainstorev1.Consistency_CONSISTENCY_DEFAULT:     true,
		chainstorev1.Consistency_CONSISTENCY_CONSISTENT:  true,
		chainstorev1.Consistency_CONSISTENCY_STALE:       false,
	} {
		resp, err := follower.client.Get(ctx, &chainstorev1.GetRequest{Kind: "service-defaults", Name: "api",
			Options: &chainstorev1.QueryOptions{Consistency: mode}})
		if err != nil || resp.Found != wantFound {
			t.Errorf("Get(%v) via follower = %v, %v; want found=%v", mode, resp, err, wantFound)
		}
		if wantFound && resp.GetMeta().GetServedBy() != "node-L" {
			t.Errorf("Get(%v) served by %q, want node-L", mode, resp.GetMeta().GetServedBy())
		}
	}
	if _, reads := leader.raft.counts(); reads != 3 {
		t.Errorf("leader ReadIndex calls = %d, want 3 (every read but the stale one is linearizable)", reads)
	}

	// A request another server already forwarded is not forwarded again.
	fctx := metadata.AppendToOutgoingContext(ctx, forwardedHeader, "other")
	_, err = follower.client.Apply(fctx, &chainstorev1.ApplyRequest{Entry: []byte(webGRPC)})
	info := api.ErrorInfo(err)
	if status.Code(err) != codes.FailedPrecondition || info.GetReason() != api.ReasonNotLeader ||
		info.GetMetadata()[api.MetaLeaderID] != "L" || info.GetMetadata()[api.MetaLeaderAddr] != leader.addr {
		t.Errorf("forwarded Apply on follower = %v (%v), want FailedPrecondition NOT_LEADER naming L at %s", err, info, leader.addr)
	}
}

// TestDeposedLeaderDoesNotServeDefaultReads: a server that still believes
// it leads but cannot confirm it with a quorum (paused, or cut off for less
// than its lease) must not answer a default or consistent read from its
// own, possibly stale, state; a stale read it answers.
func TestDeposedLeaderDoesNotServeDefaultReads(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "L", true, newESCluster(), func(c *ServerConfig) { c.HoldTimeout = 100 * time.Millisecond })
	put(t, n.client, webHTTP)
	n.raft.set(func(r *esRaft) { r.readErr = fmt.Errorf("verify leader: %w", raftnode.ErrTimeout) })
	for _, mode := range []chainstorev1.Consistency{
		chainstorev1.Consistency_CONSISTENCY_UNSPECIFIED,
		chainstorev1.Consistency_CONSISTENCY_DEFAULT,
		chainstorev1.Consistency_CONSISTENCY_CONSISTENT,
	} {
		resp, err := n.client.Get(testCtx(t), &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
			Options: &chainstorev1.QueryOptions{Consistency: mode}})
		if status.Code(err) != codes.Unavailable || api.ErrorReason(err) != api.ReasonNoLeader {
			t.Errorf("Get(%v) on a leader without a quorum = %v, %v; want Unavailable NO_LEADER", mode, resp, err)
		}
	}
	resp, err := n.client.Get(testCtx(t), &chainstorev1.GetRequest{Kind: "service-defaults", Name: "web",
		Options: &chainstorev1.QueryOptions{Consistency: chainstorev1.Consistency_CONSISTENCY_STALE}})
	if err != nil || !resp.GetFound() {
		t.Errorf("stale Get = %v, %v; want the local entry", resp, err)
	}
}

func TestLostConnectionToTheLeaderIsAnUnknownOutcome(t *testing.T) {
	t.Parallel()
	cl := newESCluster()
	leader := startESNode(t, "L", true, cl, nil)
	follower := startESNode(t, "F", false, cl, nil)
	follower.raft.set(func(r *esRaft) { r.leaderID = "L" })
	entered, block := make(chan struct{}, 1), make(chan struct{})
	leader.raft.set(func(r *esRaft) { r.entered, r.block = entered, block })
	defer close(block)

	errCh := make(chan error, 1)
	go func() {
		_, err := follower.client.Apply(testCtx(t), &chainstorev1.ApplyRequest{Entry: []byte(webHTTP)})
		errCh <- err
	}()
	<-entered // the write reached the leader's Raft
	leader.grpc.Stop()
	err := <-errCh
	if status.Code(err) != codes.Unknown || api.ErrorReason(err) != api.ReasonUnknownOutcome || !strings.Contains(err.Error(), "outcome unknown") {
		t.Errorf("Apply = %v (reason %q), want Unknown UNKNOWN_OUTCOME: the write was sent and may have been applied", err, api.ErrorReason(err))
	}
}

func TestForwardingWaitsForALeader(t *testing.T) {
	t.Parallel()
	hold := func(d time.Duration) func(*ServerConfig) {
		return func(c *ServerConfig) { c.HoldTimeout = d }
	}

	t.Run("no leader until the hold timeout", func(t *testing.T) {
		t.Parallel()
		f := startESNode(t, "F", false, newESCluster(), hold(300*time.Millisecond))
		start := time.Now()
		_, err := f.client.Apply(testCtx(t), &chainstorev1.ApplyRequest{Entry: []byte(webHTTP)})
		if status.Code(err) != codes.Unavailable || api.ErrorReason(err) != api.ReasonNoLeader {
			t.Errorf("Apply = %v, want Unavailable NO_LEADER", err)
		}
		if elapsed := time.Since(start); elapsed < 300*time.Millisecond {
			t.Errorf("gave up after %s, before the 300ms hold timeout", elapsed)
		}
	})

	t.Run("leader unreachable until the hold timeout", func(t *testing.T) {
		t.Parallel()
		cl := newESCluster()
		f := startESNode(t, "F", false, cl, hold(300*time.Millisecond))
		cl.set("L", deadAddr(t))
		f.raft.set(func(r *esRaft) { r.leaderID = "L" })
		_, err := f.client.Apply(testCtx(t), &chainstorev1.ApplyRequest{Entry: []byte(webHTTP)})
		if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "leader unreachable") {
			t.Errorf("Apply = %v, want Unavailable, leader unreachable", err)
		}
	})

	t.Run("a leader elected during the hold gets the write", func(t *testing.T) {
		t.Parallel()
		cl := newESCluster()
		leader := startESNode(t, "L", true, cl, nil)
		f := startESNode(t, "F", false, cl, hold(5*time.Second))
		calls := 0
		f.raft.set(func(r *esRaft) {
			r.onLeader = func(r *esRaft) {
				if calls++; calls == 3 {
					r.leaderID = "L"
				}
			}
		})
		w := put(t, f.client, webHTTP)
		if applies, _ := leader.raft.counts(); !w.Applied || applies != 1 {
			t.Errorf("Apply = %v, leader applies %d; want applied once on the leader", w, applies)
		}
	})
}

func TestClusterInfo(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	ctx := testCtx(t)
	put(t, n.client, webHTTP)
	st, err := n.client.Status(ctx, &chainstorev1.StatusRequest{})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	want := &chainstorev1.StatusResponse{Node: "node-a", NodeId: "a", Datacenter: "dc1", State: "Leader", IsLeader: true,
		Leader: "node-a", LeaderId: "a", LeaderGrpcAddr: n.addr, Term: 1, CommitIndex: 1, AppliedIndex: 1, LastLogIndex: 1,
		ServerVersion: version.String()}
	if st.Meta.GetIndex() != 1 || st.Meta.GetServedBy() != "node-a" {
		t.Errorf("Status meta = %v", st.Meta)
	}
	st.Meta = nil
	if diff := cmp.Diff(want.String(), st.String()); diff != "" {
		t.Errorf("Status (-want +got):\n%s", diff)
	}
	peers, err := n.client.Peers(ctx, &chainstorev1.PeersRequest{})
	if err != nil || len(peers.Peers) != 1 || !peers.Peers[0].Leader || !peers.Peers[0].Voter || peers.Peers[0].Name != "node-a" {
		t.Errorf("Peers = %v, %v", peers, err)
	}
	members, err := n.client.Members(ctx, &chainstorev1.MembersRequest{})
	if err != nil || len(members.Members) != 1 || members.Members[0].Status != "alive" || members.Members[0].GrpcAddr != n.addr {
		t.Errorf("Members = %v, %v", members, err)
	}
}

func TestClientFailsOverToTheNextAddress(t *testing.T) {
	t.Parallel()
	n := startESNode(t, "a", true, newESCluster(), nil)
	cfg := api.DefaultClientConfig()
	cfg.Addrs = []string{deadAddr(t), n.addr}
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("api.NewClient: %v", err)
	}
	defer func() { _ = c.Close() }()
	if st, err := c.Status(testCtx(t), &chainstorev1.StatusRequest{}); err != nil || st.Node != "node-a" {
		t.Errorf("Status via [dead, live] = %v, %v", st, err)
	}

	cfg.Addrs = []string{deadAddr(t)}
	dead, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("api.NewClient: %v", err)
	}
	defer func() { _ = dead.Close() }()
	if _, err := dead.Status(testCtx(t), &chainstorev1.StatusRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("Status with every server down = %v, want Unavailable", err)
	}
}

func TestDefaultDeadlines(t *testing.T) {
	t.Parallel()
	cfg := DefaultServerConfig()
	cfg.DefaultCallTimeout = 3 * time.Second
	cfg.MaxQueryWait = 16 * time.Second
	icpt := defaultDeadline(cfg)
	deadlineOf := func(ctx context.Context, req any) time.Duration {
		var got time.Duration
		_, _ = icpt(ctx, req, &grpc.UnaryServerInfo{}, func(ctx context.Context, _ any) (any, error) {
			if dl, ok := ctx.Deadline(); ok {
				got = time.Until(dl)
			}
			return nil, nil
		})
		return got
	}
	near := func(got, want time.Duration) bool { return got <= want && got > want-time.Second }

	if got := deadlineOf(context.Background(), &chainstorev1.StatusRequest{}); !near(got, 3*time.Second) {
		t.Errorf("unary call without deadline got %s, want ~3s", got)
	}
	blocking := &chainstorev1.GetRequest{Options: &chainstorev1.QueryOptions{MinIndex: 5}}
	if got := deadlineOf(context.Background(), blocking); !near(got, 20*time.Second) {
		t.Errorf("blocking query without deadline got %s, want ~3s + 16s + 1s", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if got := deadlineOf(ctx, &chainstorev1.StatusRequest{}); !near(got, time.Second) {
		t.Errorf("call with its own deadline got %s, want it kept (~1s)", got)
	}
}

func TestStatusOfPassesThroughAndMaps(t *testing.T) {
	t.Parallel()
	remote := status.Error(codes.FailedPrecondition, "from the leader")
	if got := statusOf(remote, leaderHint{}); !errors.Is(got, remote) && got.Error() != remote.Error() {
		t.Errorf("statusOf(status) = %v, want it unchanged", got)
	}
	noLeader := fmt.Errorf("apply: %w (%w)", raftnode.ErrNoLeader, raftnode.ErrNotLeader)
	if got := statusOf(noLeader, leaderHint{}); status.Code(got) != codes.Unavailable || api.ErrorReason(got) != api.ReasonNoLeader {
		t.Errorf("statusOf(no leader) = %v, want Unavailable NO_LEADER (checked before not-leader)", got)
	}
	if got := statusOf(context.DeadlineExceeded, leaderHint{}); status.Code(got) != codes.DeadlineExceeded {
		t.Errorf("statusOf(deadline) = %v", got)
	}
	if !retrySafe(statusOf(noLeader, leaderHint{})) || retrySafe(statusOf(raftnode.ErrUnknownOutcome, leaderHint{})) {
		t.Error("retrySafe must hold for NO_LEADER and not for UNKNOWN_OUTCOME")
	}
}
