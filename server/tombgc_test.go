package server_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/chainstore/chainstore/internal/servertest"
	"github.com/chainstore/chainstore/internal/testutil"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
	"github.com/chainstore/chainstore/tombgc"
)

// TestTombstoneGCKeepsBlockingQueries: the leader reaps a tombstone once
// it is older than the TTL; a blocking Get waiting on the deleted key is
// not woken by the reap (the key's index does not go down), and wakes
// when the key is written again.
func TestTombstoneGCKeepsBlockingQueries(t *testing.T) {
	t.Parallel()
	s := servertest.StartSingle(t, func(cfg *server.Config) {
		cfg.TombstoneGC = tombgc.Config{TTL: 200 * time.Millisecond, Interval: 20 * time.Millisecond, ProposeTimeout: 5 * time.Second}
	})
	cl := servertest.NewClient(t, s.Addr())
	s.Put(servertest.Resolver("gone", 5*time.Second))
	del, err := cl.Delete(ctxFor(t, 10*time.Second), &chainstorev1.DeleteRequest{Kind: "service-resolver", Name: "gone"})
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	delIdx := del.GetIndex()

	type result struct {
		resp *chainstorev1.GetResponse
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := cl.Get(ctxFor(t, 60*time.Second), &chainstorev1.GetRequest{Kind: "service-resolver", Name: "gone",
			Options: &chainstorev1.QueryOptions{MinIndex: delIdx, Wait: durationpb.New(30 * time.Second)}})
		done <- result{resp, err}
	}()
	testutil.Poll(t, 10*time.Second, "the Get to block", func() bool { return s.Server().BlockedQueries() == 1 })
	testutil.Poll(t, 10*time.Second, "the tombstone to be reaped", func() bool {
		n, _ := s.Server().FSM().Store().View().Tombstones()
		return n == 0
	})
	if floor := s.Server().FSM().Store().View().ReapFloor(); floor != delIdx {
		t.Errorf("reap floor %d, want the deletion index %d", floor, delIdx)
	}
	// The reap may wake the query's watch; it must then block again
	// (its index did not move) rather than answer.
	testutil.Poll(t, 10*time.Second, "the Get to be blocked after the reap", func() bool {
		select {
		case r := <-done:
			t.Fatalf("the reap answered the blocked Get: %v, %v", r.resp, r.err)
		default:
		}
		return s.Server().BlockedQueries() == 1
	})
	select {
	case r := <-done:
		t.Fatalf("the reap answered the blocked Get: %v, %v", r.resp, r.err)
	default:
	}
	putIdx := s.Put(servertest.Resolver("gone", 7*time.Second))
	r := <-done
	if r.err != nil || !r.resp.GetFound() || r.resp.GetModifyIndex() != putIdx {
		t.Fatalf("blocked Get = %v, %v; want the entry written at %d", r.resp, r.err, putIdx)
	}
}
