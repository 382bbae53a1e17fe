package raftnode

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/chainstore/chainstore/internal/failpoint"
)

// The disk guard (docs/reliability.md, G9). hashicorp/raft writes the leader's log
// on its main loop, while separate goroutines keep sending heartbeats: a
// leader whose disk stalls keeps its followers quiet and commits nothing,
// for as long as the stall lasts (hashicorp/raft#503). And when a log write
// fails, Raft steps down and carries on with a log it could not write.
// So the log store is wrapped: a failed write, or on the leader a write
// that has not finished after Config.DiskStallTimeout, fails the node. It
// fences its Raft transport at once (every connection closed, no new ones:
// the followers stop hearing from it and elect another leader) and reports
// the failure on Failed; the process is expected to exit and restart once
// the disk is healthy.

// guardedLogStore wraps the log store under the LogCache.
type guardedLogStore struct {
	raft.LogStore
	// writeStart is when the running write began (UnixNano), 0 if none.
	// Raft writes its log from one goroutine at a time.
	writeStart atomic.Int64
	fail       func(error)
	// beforeWrite is Config.LogWriteHook (tests): it may block (a stall)
	// or fail a write.
	beforeWrite func() error
}

// StoreLog implements raft.LogStore.
func (g *guardedLogStore) StoreLog(l *raft.Log) error {
	return g.StoreLogs([]*raft.Log{l})
}

// StoreLogs implements raft.LogStore.
func (g *guardedLogStore) StoreLogs(logs []*raft.Log) error {
	g.writeStart.Store(time.Now().UnixNano())
	defer g.writeStart.Store(0)
	var err error
	if g.beforeWrite != nil {
		err = g.beforeWrite()
	}
	if err == nil {
		err = failpoint.Eval(failpoint.RaftLogBeforeWrite)
	}
	if err == nil {
		err = g.LogStore.StoreLogs(logs)
		failpoint.Hit(failpoint.RaftLogAfterWrite)
	}
	if err != nil {
		err = fmt.Errorf("%w: write raft log: %w", ErrDiskFailed, err)
		g.fail(err)
	}
	return err
}

// DeleteRange implements raft.LogStore (log truncation after a snapshot).
func (g *guardedLogStore) DeleteRange(minIndex, maxIndex uint64) error {
	err := g.LogStore.DeleteRange(minIndex, maxIndex)
	if err != nil {
		err = fmt.Errorf("%w: truncate raft log: %w", ErrDiskFailed, err)
		g.fail(err)
	}
	return err
}

// running returns when the running write began (UnixNano), 0 if none.
func (g *guardedLogStore) running() int64 { return g.writeStart.Load() }

// diskWatchLoop fails a leader whose log write has been running for longer
// than DiskStallTimeout. A follower's stall harms nobody (the leader goes on
// with the other followers) and ends when the disk recovers, so a follower
// is only warned about.
//
// The stall is measured in the loop's own ticks, not by the wall clock: a
// process that was paused (SIGSTOP, a VM freeze) finds a write "started"
// long ago when it resumes, but the ticker fires only once for the whole
// pause, so a pause alone is not taken for a stalled disk.
func (n *Node) diskWatchLoop() {
	defer n.wg.Done()
	interval := max(n.cfg.DiskStallTimeout/8, 10*time.Millisecond)
	need := int((n.cfg.DiskStallTimeout + interval - 1) / interval)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var seen int64 // the write being watched
	ticks := 0     // ticks it has been seen running
	warned := false
	for {
		select {
		case <-n.shutdownCh:
			return
		case <-n.failedCh:
			return
		case <-tick.C:
		}
		start := n.guard.running()
		if start == 0 || start != seen {
			seen, ticks, warned = start, 0, false
			continue
		}
		if ticks++; ticks < need {
			continue
		}
		d := time.Duration(ticks) * interval
		if n.raft.State() == raft.Leader {
			n.fail(fmt.Errorf("%w: a raft log write has not finished after %s", ErrDiskStalled, d))
			return
		}
		if !warned {
			n.logger.Warn("raft log write stalled on a follower", "for", d)
			warned = true
		}
	}
}

// fail records the node's first fatal error, fences the Raft transport
// and closes failedCh. Safe to call from any goroutine, any number of times.
func (n *Node) fail(err error) {
	n.failOnce.Do(func() {
		n.logger.Error("raft node failed: fencing its transport; restart it once the disk is healthy", "error", err)
		n.failErr = err
		n.stream.fence()
		close(n.failedCh)
	})
}

// Failed is closed when the node has failed (its disk stalled while it led,
// or a log write failed) and has fenced itself off from its peers. The
// node then takes no part in the cluster; Shutdown it and exit.
func (n *Node) Failed() <-chan struct{} { return n.failedCh }

// FailErr returns why the node failed (wrapping ErrDiskStalled or
// ErrDiskFailed), or nil.
func (n *Node) FailErr() error {
	select {
	case <-n.failedCh:
		return n.failErr
	default:
		return nil
	}
}

// connSet tracks the stream layer's open connections so that fence can
// close them all.
type connSet struct {
	mu     sync.Mutex
	fenced bool
	conns  map[*trackedConn]struct{}
}

// add registers c; it reports false (and closes c) once fenced.
func (s *connSet) add(c *trackedConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fenced {
		_ = c.Conn.Close()
		return false
	}
	if s.conns == nil {
		s.conns = map[*trackedConn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *connSet) remove(c *trackedConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// fence closes every connection and refuses new ones from now on.
func (s *connSet) fence() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fenced = true
	for c := range s.conns {
		_ = c.Conn.Close()
	}
	clear(s.conns)
}

func (s *connSet) isFenced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced
}

// IsMonotonic implements raft.MonotonicLogStore for the store it wraps:
// raft-wal refuses appends that leave a gap, so after installing a
// snapshot Raft must empty such a log instead of leaving the gap.
func (g *guardedLogStore) IsMonotonic() bool {
	m, ok := g.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}
