package rpc

import (
	"sync"
	"time"

	"github.com/chainstore/chainstore/chainwatch"
)

// Watch streams and lost quorum (issue 14, item 3). A Watch stream is
// served from the answering server's own state, with or without a
// leader; after two of three servers were lost, `storectl watch` printed
// nothing for 40 s: the survivor had no leader, so nothing changed, and
// the stream looked healthy. Now the server checks its leader state every
// LeaderCheckInterval (one check for all streams) and, when it changes,
// asks every stream's Watcher for a progress message (and each stream
// asks once when it starts, so a client learns at once whether its new
// server has a leader). The progress message says no_leader (and the last contact)
// while the server knows no leader or has not heard from it for
// LeaderStaleAfter; the client reports it and moves to another server.

// leaderState reports whether this server should tell watchers it has no
// (fresh) leader, and the time since it last heard from one (0 if never,
// or on the leader). Streams share one answer for leaderCacheFor, so many
// streams do not each read Raft's stats every second.
func (s *ChainServer) leaderState() (noLeader bool, since time.Duration) {
	s.leaderMu.Lock()
	defer s.leaderMu.Unlock()
	if now := time.Now(); now.Sub(s.leaderAt) >= leaderCacheFor {
		s.leaderAt = now
		s.leaderNo, s.leaderSince = false, 0
		if !s.router.raft.IsLeader() {
			id, _ := s.router.raft.Leader()
			s.leaderSince = lastContact(s.router.raft.Stats())
			s.leaderNo = id == "" || s.leaderSince > s.cfg.LeaderStaleAfter
		}
	}
	return s.leaderNo, s.leaderSince
}

// leaderCacheFor is how long leaderState's answer is reused.
const leaderCacheFor = 200 * time.Millisecond

// leaderWatch is the one leader-state check shared by every Watch stream
// of a server (idle cost, issue 12): one ticker per server instead of one
// per stream. It runs while at least one stream is registered: the first
// stream to register starts it, and the last one to leave stops it and
// waits for it, so it never outlives the streams (which the gRPC server
// joins on stop).
type leaderWatch struct {
	mu       sync.Mutex // protects everything below; a leaf lock
	watchers map[*chainwatch.Watcher]struct{}
	stop     chan struct{} // closed to stop the running check loop; nil when none runs
	done     chan struct{} // closed by the check loop when it returns
}

// watchLeader registers w for leader-state changes (see above) and asks
// it for a progress message at once, so the client learns whether its new
// server has a leader. The returned func unregisters w; the last stream
// to leave stops the check loop and waits for it.
func (s *ChainServer) watchLeader(w *chainwatch.Watcher) (stop func()) {
	w.RequestProgress()
	lw := &s.leaderWatch
	lw.mu.Lock()
	if lw.watchers == nil {
		lw.watchers = map[*chainwatch.Watcher]struct{}{}
	}
	lw.watchers[w] = struct{}{}
	if lw.stop == nil {
		lw.stop, lw.done = make(chan struct{}), make(chan struct{})
		go s.checkLeaderLoop(lw.stop, lw.done)
	}
	lw.mu.Unlock()
	return func() {
		lw.mu.Lock()
		delete(lw.watchers, w)
		var done chan struct{}
		if len(lw.watchers) == 0 && lw.stop != nil {
			close(lw.stop)
			done = lw.done
			lw.stop, lw.done = nil, nil
		}
		lw.mu.Unlock()
		if done != nil {
			<-done
		}
	}
}

// checkLeaderLoop checks this server's leader state every
// LeaderCheckInterval and, when it changes, asks every registered
// stream's Watcher for a progress message. It returns when stop closes.
func (s *ChainServer) checkLeaderLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	last, _ := s.leaderState()
	t := time.NewTicker(s.cfg.LeaderCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		now, _ := s.leaderState()
		if now == last {
			continue
		}
		last = now
		lw := &s.leaderWatch
		lw.mu.Lock()
		for w := range lw.watchers {
			w.RequestProgress() // takes only w's own lock, briefly
		}
		lw.mu.Unlock()
	}
}
