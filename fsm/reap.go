package fsm

import (
	"encoding/binary"
	"fmt"

	"github.com/hashicorp/go-memdb"
)

// Tombstone garbage collection (docs/operations.md, Tombstone GC).
//
// A delete leaves a tombstone so the key's index never goes backwards: a
// blocking query on a deleted key sees the deletion's index. Tombstones
// would otherwise accumulate forever, in memory and in every snapshot. The
// leader (package tombgc) proposes OpReapTombstones with an index R once
// R is older than the tombstone TTL; every replica then removes the
// tombstones at or below R and raises the store's reap floor to the
// highest deletion index it removed. Store.Get answers a key with neither
// entry nor tombstone with the reap floor instead of 0, so a key's index
// still never goes down: a query blocked on a reaped key (index T <= the
// floor) keeps waiting until the key really changes (its index then
// passes the floor). The per-kind list indexes are left alone: they never
// go down either.

// metaReapFloor is the tableMeta row of the reap floor.
const metaReapFloor = "reap-floor"

// ReapFloor returns the highest deletion index of a reaped tombstone (0 if
// none was ever reaped).
func (v *View) ReapFloor() uint64 { return readIndexRow(v.txn, tableMeta, metaReapFloor) }

// Tombstones returns the number of tombstones and the lowest deletion
// index among them (0 when there are none).
func (v *View) Tombstones() (n int, oldest uint64) {
	it, err := v.txn.Get(tableTombstones, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		t := raw.(*tombstone)
		if n == 0 || t.Index < oldest {
			oldest = t.Index
		}
		n++
	}
	return n, oldest
}

// encodeReap encodes OpReapTombstones: the type byte (always ignorable:
// a replica that predates tombstone GC keeps its tombstones, which changes
// no answer it gives) and the reap index.
func encodeReap(c Command) ([]byte, error) {
	if c.Entry != nil || c.Key.Name != "" || c.Instance != nil || c.InstanceID != "" || c.CASIndex != 0 {
		return nil, fmt.Errorf("encode %s with entry, key, instance or CAS fields: %w", OpReapTombstones, ErrMalformedCommand)
	}
	if c.ReapIndex == 0 {
		return nil, fmt.Errorf("encode %s without an index: %w", OpReapTombstones, ErrMalformedCommand)
	}
	return binary.AppendUvarint([]byte{byte(OpReapTombstones | IgnoreUnknownFlag)}, c.ReapIndex), nil
}

func decodeReap(body []byte) (Command, error) {
	v, n := binary.Uvarint(body)
	if n <= 0 || n != len(body) || v == 0 {
		return Command{Op: OpReapTombstones}, fmt.Errorf("decode %s: bad index: %w", OpReapTombstones, ErrMalformedCommand)
	}
	return Command{Op: OpReapTombstones, ReapIndex: v}, nil
}

// applyReap removes every tombstone at or below cmd.ReapIndex (never
// above the log's own index) and raises the reap floor. No key changes
// content, so nothing is published on the feed.
func applyReap(w *writer, index uint64, cmd Command) ApplyResult {
	limit := min(cmd.ReapIndex, index)
	var reap []*tombstone
	it, err := w.txn.Get(tableTombstones, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		if t := raw.(*tombstone); t.Index <= limit {
			reap = append(reap, t)
		}
	}
	floor := readIndexRow(w.txn, tableMeta, metaReapFloor)
	for _, t := range reap {
		must(w.txn.Delete(tableTombstones, t))
		floor = max(floor, t.Index)
	}
	if len(reap) > 0 {
		must(w.txn.Insert(tableMeta, &indexRow{Name: metaReapFloor, Value: floor}))
	}
	return ApplyResult{Index: index, Applied: true}
}

// reapFloorTxn reads the reap floor in any transaction.
func reapFloorTxn(txn *memdb.Txn) uint64 { return readIndexRow(txn, tableMeta, metaReapFloor) }
