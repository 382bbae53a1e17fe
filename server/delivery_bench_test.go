package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/chainstore/chainstore/api"
	"github.com/chainstore/chainstore/internal/servertest"
	chainstorev1 "github.com/chainstore/chainstore/proto/chainstore/v1"
	"github.com/chainstore/chainstore/server"
)

// BenchmarkWatchDeliveryTrace traces isolated writes (one at a time, the
// config-store norm) from the client's write to a chain watcher on a
// follower, against an in-process three-server cluster with the
// production CommitTimeout, with the commit nudge off at the old
// CommitTimeout (10 ms) and on at the new one (50 ms). Each write is split
// into (means, ms):
//
//   - ms-ack: client write until the leader's answer arrives;
//   - ms-ack-to-fapply: from then until the follower's FSM has applied
//     the entry (commit-index propagation; negative when the follower
//     applied before the answer reached the client);
//   - ms-fapply-to-frecv: follower apply until the watcher on the
//     follower receives the new chain (hub wake-up, compile, stream send
//     and flush, client decode);
//   - ms-ack-to-lrecv: the same chain to a watcher on the leader, for
//     comparison (no propagation).
//
// docs/benchmarks.md (Issue 12, Delivery and idle cost) has the figures.
//
//	go test -run '^$' -bench WatchDeliveryTrace -benchtime 100x ./server/
func BenchmarkWatchDeliveryTrace(b *testing.B) {
	for _, tc := range []struct {
		name   string
		commit time.Duration
		nudge  bool
	}{
		{"commit=10ms/nudge=off", 10 * time.Millisecond, false},
		{"commit=50ms/nudge=on", 50 * time.Millisecond, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c := servertest.NewCluster(b, 3, func(cfg *server.Config) {
				cfg.Raft.CommitTimeout, cfg.Raft.DisableCommitNudge = tc.commit, !tc.nudge
			})
			leader := c.Leader()
			follower := c.Followers()[0]
			writer := c.Client(leader)
			ctx := b.Context()
			write := func(i int) uint64 {
				resp, err := writer.Apply(ctx, &chainstorev1.ApplyRequest{Entry: []byte(servertest.Resolver("web", time.Duration(i+1)*time.Millisecond))})
				if err != nil {
					b.Fatalf("Apply: %v", err)
				}
				return resp.GetIndex()
			}
			write(-1)
			lrecv := traceWatch(ctx, b, c.Client(leader))
			frecv := traceWatch(ctx, b, c.Client(follower))
			fsm := follower.Server().FSM()

			var ack, toApply, toFRecv, toLRecv time.Duration
			n := 0
			i := 0
			for b.Loop() {
				i++
				next := fsm.AppliedIndex() + 1
				applied := make(chan time.Time, 1)
				go func() {
					wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					defer cancel()
					if err := fsm.WaitForIndex(wctx, next); err == nil {
						applied <- time.Now()
					}
					close(applied)
				}()
				start := time.Now()
				idx := write(i)
				acked := time.Now()
				fr := awaitIndex(b, frecv, idx)
				lr := awaitIndex(b, lrecv, idx)
				fa, ok := <-applied
				if !ok || idx != next {
					continue // another entry got in between: no clean sample
				}
				ack += acked.Sub(start)
				toApply += fa.Sub(acked)
				toFRecv += fr.Sub(fa)
				toLRecv += lr.Sub(acked)
				n++
			}
			if n == 0 {
				return
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
			b.ReportMetric(ms(ack), "ms-ack")
			b.ReportMetric(ms(toApply), "ms-ack-to-fapply")
			b.ReportMetric(ms(toFRecv), "ms-fapply-to-frecv")
			b.ReportMetric(ms(toLRecv), "ms-ack-to-lrecv")
		})
	}
}

// stamped is a chain version index and when the watcher received it.
type stamped struct {
	index uint64
	at    time.Time
}

// traceWatch opens a Watch stream of chain "web" through cl and returns
// the arrival of every update; it has received the current version when
// it returns.
func traceWatch(ctx context.Context, b *testing.B, cl *api.Client) <-chan stamped {
	b.Helper()
	stream, err := chainstorev1.NewChainServiceClient(cl.Conn()).Watch(ctx)
	if err != nil {
		b.Fatalf("Watch: %v", err)
	}
	err = stream.Send(&chainstorev1.WatchRequest{Request: &chainstorev1.WatchRequest_Subscribe{
		Subscribe: &chainstorev1.WatchSubscribe{Id: 1, Chain: &chainstorev1.ChainRef{Service: "web"}},
	}})
	if err != nil {
		b.Fatalf("subscribe: %v", err)
	}
	out := make(chan stamped, 1024)
	first := make(chan struct{})
	go func() {
		defer close(out)
		seen := false
		for {
			resp, err := stream.Recv()
			if err != nil {
				return
			}
			if u := resp.GetUpdate(); u != nil {
				if !seen {
					seen = true
					close(first)
					continue
				}
				out <- stamped{index: u.GetVersion().GetIndex(), at: time.Now()}
			}
		}
	}()
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		b.Fatal("no initial version of chain web within 10s")
	}
	return out
}

// awaitIndex returns when the watcher received version idx (or newer).
func awaitIndex(b *testing.B, ch <-chan stamped, idx uint64) time.Time {
	b.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				b.Fatalf("watch stream ended before index %d", idx)
			}
			if s.index >= idx {
				return s.at
			}
		case <-timeout:
			b.Fatalf("version %d not delivered within 10s", idx)
		}
	}
}
