package chainwatch

import (
	"context"

	"github.com/chainstore/chainstore/chain"
	"github.com/chainstore/chainstore/fsm"
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

// Source is what the hub needs from the replicated store. FSMSource
// adapts an *fsm.FSM.
type Source interface {
	// View returns a read view of the current store (after a restore, of
	// the new store).
	View() View
	// FeedHead returns the newest item of the store's change feed; the
	// hub processes the items after it.
	FeedHead() *fsm.FeedItem
	// AppliedIndex is the highest applied Raft index.
	AppliedIndex() uint64
	// WaitForIndex blocks until AppliedIndex >= idx or ctx is done.
	WaitForIndex(ctx context.Context, idx uint64) error
}
