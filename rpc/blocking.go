package rpc

import (
	"context"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/chainstore/chainstore/fsm"
)

// storeSource gives the current state store. fsm.FSM implements it; the
// store it returns is replaced by a snapshot restore.
type storeSource interface {
	Store() *fsm.Store
}

// queryFunc runs one read against store. It keeps its result in variables
// of the caller's closure and returns the Raft index the result reflects
// and a channel that is closed when the result may have changed (nil if it
// never changes).
type queryFunc func(store *fsm.Store) (index uint64, watch <-chan struct{}, err error)

// blockingOptions are the caller's blocking parameters.
type blockingOptions struct {
	// MinIndex: return once the result index is greater than this. 0 runs
	// the query once and returns.
	MinIndex uint64
	// Wait: the longest time to block; 0 means defaultWait.
	Wait time.Duration
}

// blockingLimits are the server's blocking parameters.
type blockingLimits struct {
	defaultWait, maxWait time.Duration
	// shutdownCh, when closed, makes every blocked query return its current
	// result so the gRPC server can stop gracefully.
	shutdownCh <-chan struct{}
	// blocked, if not nil, counts the queries currently waiting.
	blocked *atomic.Int64
}

// blockingQuery is the one blocking-read function of the server. Its
// contract:
//
//   - before each run of fn, consistent (if not nil) is called; for a
//     consistent read it confirms leadership and waits until the local
//     state has applied everything committed. Its error is returned.
//   - fn runs against the store current at that moment.
//   - With MinIndex == 0 blockingQuery returns after the first run.
//   - Otherwise it returns as soon as the index fn returns is greater
//     than MinIndex. An index of 0 counts as 1, so a client that sends
//     back the index it got never spins (the response must report
//     max(index, 1) too).
//   - It blocks on fn's watch channel and on the store's abandon channel.
//     When a snapshot restore replaced the store, fn is run once more
//     against the new store and that result is returned whatever its
//     index: indexes may have gone backwards, and the client must reset.
//   - The wait is min(Wait or defaultWait, maxWait) plus random jitter of
//     up to 1/16 of it, so watchers started together do not time out
//     together. If ctx has a deadline before that, the wait ends a little
//     before it so the caller gets a normal result instead of an error.
//   - On timeout, or when the server shuts down, it returns nil and the
//     last result: a return is not proof of change.
//   - It returns ctx.Err() when ctx is done first.
func blockingQuery(ctx context.Context, src storeSource, opts blockingOptions, lim blockingLimits,
	consistent func(context.Context) error, fn queryFunc) error {
	var timeout <-chan time.Time
	if opts.MinIndex > 0 {
		t := time.NewTimer(blockingWait(ctx, opts.Wait, lim))
		defer t.Stop()
		timeout = t.C
	}
	abandoned := false
	for {
		if consistent != nil {
			if err := consistent(ctx); err != nil {
				return err
			}
		}
		store := src.Store()
		index, watch, err := fn(store)
		if err != nil {
			return err
		}
		if opts.MinIndex == 0 || max(index, 1) > opts.MinIndex || abandoned {
			return nil
		}
		done, err := waitForChange(ctx, watch, store, timeout, lim)
		if done {
			return err
		}
		abandoned = store.AbandonCh() != nil && isClosed(store.AbandonCh())
	}
}

// waitForChange blocks until the result may have changed (done=false) or
// the query must return (done=true, with its error).
func waitForChange(ctx context.Context, watch <-chan struct{}, store *fsm.Store, timeout <-chan time.Time, lim blockingLimits) (done bool, err error) {
	if lim.blocked != nil {
		lim.blocked.Add(1)
		defer lim.blocked.Add(-1)
	}
	select {
	case <-watch:
		return false, nil
	case <-store.AbandonCh():
		return false, nil
	case <-timeout:
		return true, nil
	case <-lim.shutdownCh:
		return true, nil
	case <-ctx.Done():
		return true, ctx.Err()
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// answerMargin is the least time a blocking query leaves, before the
// caller's deadline, to build and send its answer: a loaded server (GC,
// scheduling) can take tens of milliseconds for that.
const answerMargin = 50 * time.Millisecond

// blockingWait computes how long one blocking query may wait.
func blockingWait(ctx context.Context, requested time.Duration, lim blockingLimits) time.Duration {
	wait := requested
	if wait <= 0 {
		wait = lim.defaultWait
	}
	wait = min(wait, lim.maxWait)
	if j := int64(wait / 16); j > 0 {
		wait += time.Duration(rand.Int64N(j))
	}
	if deadline, ok := ctx.Deadline(); ok {
		// Leave 1/16 of the remaining time (at least answerMargin) to
		// send the answer before the caller's deadline.
		remaining := time.Until(deadline)
		if limit := remaining - max(remaining/16, answerMargin); limit < wait {
			wait = max(limit, 0)
		}
	}
	return wait
}
