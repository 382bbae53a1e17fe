package raftnode

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"
)

// errStableClosed is what a read of the stable store returns after
// shutdown.
var errStableClosed = errors.New("raft stable store closed at shutdown")

// closableStable is the raft.StableStore hashicorp/raft gets: the bolt
// store, closed by shutdown in a way Raft survives.
//
// hashicorp/raft handles heartbeats on the transport's connection
// goroutines, not on its main loop, and a heartbeat that passed Raft's
// shutdown check just before Shutdown may still persist a new term
// (setCurrentTerm) afterwards; on any error Raft panics (hashicorp/raft
// #717). So close waits for the writes in flight, and writes after it are
// dropped instead of failing. Dropping one is safe: the node is stopping,
// a heartbeat never carries a vote, and a node that restarts without the
// newer term has voted in it no more than one that never heard of it.
type closableStable struct {
	raft.StableStore

	mu     sync.RWMutex // held shared by every call, exclusively by close
	closed bool
}

func (s *closableStable) Set(key, val []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.StableStore.Set(key, val)
}

func (s *closableStable) SetUint64(key []byte, val uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.StableStore.SetUint64(key, val)
}

func (s *closableStable) Get(key []byte) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errStableClosed
	}
	return s.StableStore.Get(key)
}

func (s *closableStable) GetUint64(key []byte) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errStableClosed
	}
	return s.StableStore.GetUint64(key)
}

// close waits for the calls in flight and makes later writes no-ops. The
// caller then closes the underlying store.
func (s *closableStable) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
