package rpc

import (
	"context"
	"time"

	"github.com/chainstore/chainstore/chainwatch"
)

// Watch streams and lost quorum (issue 14, item 3). A Watch stream is
// served from the answering server's own state, with or without a
// leader; after two of three servers were lost, `storectl watch` printed
// nothing for 40 s: the survivor had no leader, so nothing changed, and
// the stream looked healthy. Now every stream checks its server's leader
// state every LeaderCheckInterval and, when it changes, asks its Watcher
// for a progress message (and once when the stream starts, so a client
// learns at once whether its new server has a leader). The progress message says no_leader (and the last contact)
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

// watchLeader runs for one stream until ctx is done (see above).
func (s *ChainServer) watchLeader(ctx context.Context, w *chainwatch.Watcher) {
	// The first progress message tells the client at once whether this
	// server has a leader.
	last, _ := s.leaderState()
	w.RequestProgress()
	t := time.NewTicker(s.cfg.LeaderCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if now, _ := s.leaderState(); now != last {
			last = now
			w.RequestProgress()
		}
	}
}
