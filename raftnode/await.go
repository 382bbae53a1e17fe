package raftnode

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// waiterSet counts the goroutines that turn a blocking raft.Future.Error()
// into a channel receive, so that Shutdown can join them.
//
// Why they exist: hashicorp/raft v1.7.3 futures have no Done channel, and a
// future that is still sitting in one of Raft's buffered channels (applyCh
// with BatchApplyCh, verifyCh, fsmMutateCh) when Raft shuts down is never
// answered. A caller that blocked in Error() itself would hang forever; with
// a waiter goroutine the caller selects on the result, its context and the
// node's shutdown instead.
type waiterSet struct {
	mu sync.Mutex // protects n and zero
	n  int
	// zero, when non-nil, is closed when n drops to 0 (requested by wait).
	zero chan struct{}
}

func (w *waiterSet) add() {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
}

func (w *waiterSet) done() {
	w.mu.Lock()
	w.n--
	if w.n == 0 && w.zero != nil {
		close(w.zero)
		w.zero = nil
	}
	w.mu.Unlock()
}

// count returns the number of running waiters.
func (w *waiterSet) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// wait blocks until no waiter runs or grace elapses, and returns how many
// are still running (futures Raft will never answer).
func (w *waiterSet) wait(grace time.Duration) int {
	w.mu.Lock()
	if w.n == 0 {
		w.mu.Unlock()
		return 0
	}
	if w.zero == nil {
		w.zero = make(chan struct{})
	}
	zero := w.zero
	w.mu.Unlock()

	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-zero:
	case <-t.C:
	}
	return w.count()
}

// awaitFuture waits for f to resolve, for ctx to end, for stop to close, or
// for the node to fail (Failed: its stuck Raft loop may never resolve f),
// whichever is first. resolved reports whether f resolved; if it did, err
// is f's error (untranslated), otherwise err is ctx's error, ErrShutdown or
// the node's failure.
//
// When stop is n.raftDone (Raft has fully shut down) every future Raft will
// ever answer has been answered, so a short grace covers the waiter that has
// not been scheduled yet; what is still pending then is stranded.
func (n *Node) awaitFuture(ctx context.Context, f raft.Future, stop <-chan struct{}) (resolved bool, err error) {
	done := make(chan error, 1)
	n.waiters.add()
	go func() {
		defer n.waiters.done()
		done <- f.Error()
	}()

	select {
	case err := <-done:
		return true, err
	case <-ctx.Done():
		return false, ctx.Err()
	case <-n.failedCh:
		return false, n.failErr
	case <-stop:
	}
	// Prefer an answer that raced with stop.
	t := time.NewTimer(strandedGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return true, err
	case <-t.C:
		return false, ErrShutdown
	}
}

// strandedGrace is how long a waiter gets, after Raft has shut down, to
// deliver an answer Raft has already written into the future.
const strandedGrace = 100 * time.Millisecond
