package chainwatch

import (
	"context"

	"github.com/chainstore/chainstore/chain"
)

// View is a consistent read view of the store: the compiler reads entries
// from it and the hub reads the indexes of the keys a compile read.
// fsm.View implements it.
type View interface {
	chain.EntryLookup
	// Index is the applied index the view reflects.
	Index() uint64
	// KeyIndex is the ModifyIndex of the key, its tombstone index if it was
	// deleted, or 0 if it never existed.
	KeyIndex(k chain.Key) uint64
}

// ChangeSet is one applied batch of the store: its last Raft index and
// the keys it changed. Reset means a snapshot restore replaced the store.
type ChangeSet struct {
	Index uint64
	Keys  []chain.Key
	Reset bool
}

// FeedItem is one position of the store's change feed, a singly linked
// list with a single writer: Ready is closed when Next is available.
type FeedItem interface {
	Ready() <-chan struct{}
	// Next is the following item; valid only after Ready is closed.
	Next() FeedItem
	// Change is the change set this item carries.
	Change() ChangeSet
}

// Source is what the hub needs from the replicated store. FSMSource
// adapts an *fsm.FSM.
type Source interface {
	// View returns a read view of the current store (after a restore, of
	// the new store).
	View() View
	// FeedHead returns the newest feed item; the hub processes the items
	// after it.
	FeedHead() FeedItem
	// AppliedIndex is the highest applied Raft index.
	AppliedIndex() uint64
	// WaitForIndex blocks until AppliedIndex >= idx or ctx is done.
	WaitForIndex(ctx context.Context, idx uint64) error
}
