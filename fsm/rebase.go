package fsm

import (
	"fmt"
	"io"

	"github.com/chainstore/chainstore/chain"
)

// SnapshotSummary describes the contents of an FSM snapshot.
type SnapshotSummary struct {
	// Index is the applied Raft index the snapshot records.
	Index uint64
	// Entries counts config entries by kind.
	Entries map[chain.Kind]int
	// Tombstones is the number of deleted keys the snapshot remembers.
	Tombstones int
	// Instances is the number of catalog instances.
	Instances int
}

// WriteSnapshot writes the state of v in the FSM snapshot format (the
// same bytes Persist writes for a Raft snapshot).
func (v *View) WriteSnapshot(w io.Writer) error { return writeSnapshot(w, v) }

// InspectSnapshot reads and fully checks an FSM snapshot (the checks
// Restore makes) and summarises it. Errors wrap ErrBadSnapshot or
// ErrUnsupportedSnapshotVersion.
func InspectSnapshot(r io.Reader) (SnapshotSummary, error) {
	s, idx, err := readSnapshot(r)
	if err != nil {
		return SnapshotSummary{}, err
	}
	return summarise(s.View(), idx), nil
}

func summarise(v *View, idx uint64) SnapshotSummary {
	sum := SnapshotSummary{Index: idx, Entries: make(map[chain.Kind]int)}
	it, err := v.txn.Get(tableEntries, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		sum.Entries[raw.(*StoredEntry).key.Kind]++
	}
	it, err = v.txn.Get(tableTombstones, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		sum.Tombstones++
	}
	sum.Instances = len(v.AllInstances())
	return sum
}

// RebaseSnapshot prepares a user snapshot for a restore through Raft. It
// reads and fully checks the FSM snapshot in r (so the restore cannot fail
// on any replica once Raft has accepted it) and writes to w the same state
// with every index moved to index:
//
//   - every entry's ModifyIndex (CreateIndex is kept) and every catalog
//     instance's ModifyIndex, every tombstone, every per-kind and catalog
//     index row, and the snapshot's applied index become index;
//   - the reap floor (the index of a key with neither entry nor tombstone)
//     becomes index;
//   - every key current holds (an entry or a tombstone) that the snapshot
//     does not gets a tombstone at index, and every catalog service current
//     knows gets its index row at index.
//
// index must be above every index a client may have seen before the
// restore. Then a restore to an older state still moves every index
// forward: a blocking query or a chain watcher sees the restored state as
// a newer version, never an old index as new, and a key the restore
// removed reads as deleted at index. current may be nil (nothing to
// compare against).
func RebaseSnapshot(r io.Reader, w io.Writer, index uint64, current *View) (SnapshotSummary, error) {
	s, _, err := readSnapshot(r)
	if err != nil {
		return SnapshotSummary{}, err
	}
	if index == 0 {
		return SnapshotSummary{}, fmt.Errorf("rebase snapshot: index must be positive")
	}
	wr := newWriter(s)
	defer wr.txn.Abort() // no-op after Commit
	rebaseEntries(wr, index)
	if current != nil {
		tombstoneMissing(wr, current, index)
	}
	rebaseCatalog(wr, current, index)
	// A key with neither entry nor tombstone reads at the reap floor: at
	// index too, like every other key.
	must(wr.txn.Insert(tableMeta, &indexRow{Name: metaReapFloor, Value: index}))
	wr.setApplied(index)
	wr.txn.Commit()

	v := s.View()
	if err := writeSnapshot(w, v); err != nil {
		return SnapshotSummary{}, fmt.Errorf("write rebased snapshot: %w", err)
	}
	return summarise(v, index), nil
}

// rebaseEntries moves entries, tombstones and kind index rows to index.
func rebaseEntries(wr *writer, index uint64) {
	var entries []*StoredEntry
	it, err := wr.txn.Get(tableEntries, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		entries = append(entries, raw.(*StoredEntry))
	}
	for _, se := range entries {
		must(wr.txn.Insert(tableEntries, newStoredEntry(se.Entry, min(se.CreateIndex, index), index)))
	}
	var tombs []*tombstone
	it, err = wr.txn.Get(tableTombstones, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		tombs = append(tombs, raw.(*tombstone))
	}
	for _, t := range tombs {
		must(wr.txn.Insert(tableTombstones, &tombstone{Key: t.Key, Index: index}))
	}
	for _, kind := range chain.Kinds {
		must(wr.txn.Insert(tableIndex, &indexRow{Name: string(kind), Value: index}))
	}
}

// tombstoneMissing writes a tombstone at index for every key current holds
// that the snapshot has neither as an entry nor as a tombstone.
func tombstoneMissing(wr *writer, current *View, index uint64) {
	for _, table := range []string{tableEntries, tableTombstones} {
		it, err := current.txn.Get(table, indexID)
		must(err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			var k chain.Key
			switch row := raw.(type) {
			case *StoredEntry:
				k = row.key
			case *tombstone:
				k = row.Key
			}
			if wr.view().KeyIndex(k) == 0 {
				must(wr.txn.Insert(tableTombstones, &tombstone{Key: k, Index: index}))
			}
		}
	}
}

// rebaseCatalog moves every instance's ModifyIndex and every catalog index
// row (the snapshot's and current's) to index.
func rebaseCatalog(wr *writer, current *View, index uint64) {
	for _, st := range wr.view().AllInstances() {
		c := *st
		c.CreateIndex = min(c.CreateIndex, index)
		c.ModifyIndex = index
		must(wr.txn.Insert(tableInstances, &c))
	}
	names := map[string]struct{}{servicesIndexRow: {}}
	for _, v := range []*View{wr.view(), current} {
		if v == nil {
			continue
		}
		it, err := v.txn.Get(tableCatalogIndex, indexID)
		must(err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			names[raw.(*indexRow).Name] = struct{}{}
		}
	}
	for name := range names {
		must(wr.txn.Insert(tableCatalogIndex, &indexRow{Name: name, Value: index}))
	}
}
