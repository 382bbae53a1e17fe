package fsm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync"

	"github.com/hashicorp/go-memdb"

	"github.com/chainstore/chainstore/chain"
)

// StoredEntry is an entry as the store holds it, with its Raft indexes.
// Values returned by the store are shared and read-only: never modify a
// StoredEntry or its Entry.
type StoredEntry struct {
	Entry       chain.Entry
	CreateIndex uint64
	ModifyIndex uint64

	key   chain.Key // chain.KeyOf(Entry.GetKind(), Entry.GetName())
	links []string  // linksOf(Entry): values of the link index
}

// Key returns the normalized key of the entry.
func (se *StoredEntry) Key() chain.Key { return se.key }

// newStoredEntry builds the row for e. e must be non-nil.
func newStoredEntry(e chain.Entry, createIndex, modifyIndex uint64) *StoredEntry {
	k := chain.KeyOf(e.GetKind(), e.GetName())
	return &StoredEntry{
		Entry:       e,
		CreateIndex: createIndex,
		ModifyIndex: modifyIndex,
		key:         k,
		links:       linksOf(e, k.Name),
	}
}

// Store is the in-memory indexed state of one FSM incarnation: a go-memdb
// database (immutable radix trees, so every read transaction is a frozen,
// consistent view). Only the FSM writes to it. A Restore replaces the
// whole Store and closes the old one's AbandonCh.
//
// Every read method is safe for concurrent use.
type Store struct {
	db *memdb.MemDB

	abandonOnce sync.Once
	abandonCh   chan struct{}
}

// newStore returns an empty store.
func newStore() *Store {
	db, err := memdb.NewMemDB(newSchema())
	if err != nil {
		// The schema is a constant of this package; a failure is a bug.
		panic(fmt.Sprintf("fsm: invalid memdb schema: %v", err))
	}
	return &Store{db: db, abandonCh: make(chan struct{})}
}

// AbandonCh returns a channel that is closed when a Restore has replaced
// this store. Blocking readers must watch it together with their watch
// channels, then re-fetch FSM.Store() and retry: the old store never
// changes again.
func (s *Store) AbandonCh() <-chan struct{} { return s.abandonCh }

// abandon closes AbandonCh (idempotent).
func (s *Store) abandon() { s.abandonOnce.Do(func() { close(s.abandonCh) }) }

// must panics on a memdb error. Store queries only fail on a schema or
// argument-type mismatch inside this package, i.e. a programming error.
func must(err error) {
	if err != nil {
		panic(fmt.Sprintf("fsm: memdb invariant violated: %v", err))
	}
}

// Get returns the entry at key (any case), its index and a watch channel.
//
// The index is the entry's ModifyIndex; if the entry is absent, the index
// of its tombstone (the Raft index that deleted it); 0 if it never existed
// (or its tombstone was collected). The watch channel is closed when the
// result may have changed: precisely when this key changes if the entry or
// its tombstone exists; for a key that never existed it is a coarser
// channel that can also fire for writes to nearby keys (callers re-check
// the index). It never fires after a Restore; watch AbandonCh as well.
func (s *Store) Get(key chain.Key) (e *StoredEntry, index uint64, watch <-chan struct{}) {
	txn := s.db.Txn(false)
	key = chain.KeyOf(key.Kind, key.Name)
	ch, raw, err := txn.FirstWatch(tableEntries, indexID, key)
	must(err)
	if raw != nil {
		se := raw.(*StoredEntry)
		return se, se.ModifyIndex, ch
	}
	tch, traw, err := txn.FirstWatch(tableTombstones, indexID, key)
	must(err)
	if traw != nil {
		// The tombstone row is removed when the key is re-created, which
		// closes its leaf channel: precise.
		return nil, traw.(*tombstone).Index, tch
	}
	// Never existed, or its tombstone was reaped: the reap floor keeps the
	// index from going backwards (reap.go).
	return nil, reapFloorTxn(txn), ch
}

// List returns the entries of kind (any case) sorted by name, the list
// index, and a watch channel.
//
// The index is the highest Raft index that created, modified or deleted an
// entry of the kind (0 if none ever did); it is monotonic while the store
// lives, even when the newest entry is deleted. The watch channel is the
// kind's index record, so it fires exactly when an entry of that kind
// changes (before the kind's first write, a coarser channel is returned).
//
// kind "" lists every entry in (kind, name) order, with the highest index
// over all kinds and a watch channel that fires on any entry change (and
// possibly on unrelated structural changes of the tree).
func (s *Store) List(kind chain.Kind) (es []*StoredEntry, index uint64, watch <-chan struct{}) {
	txn := s.db.Txn(false)
	var it memdb.ResultIterator
	var err error
	if kind == "" {
		it, err = txn.Get(tableEntries, indexID)
		must(err)
		watch = it.WatchCh()
		iit, err := txn.Get(tableIndex, indexID)
		must(err)
		for raw := iit.Next(); raw != nil; raw = iit.Next() {
			index = max(index, raw.(*indexRow).Value)
		}
	} else {
		kind = chain.Kind(strings.ToLower(string(kind)))
		it, err = txn.Get(tableEntries, indexKind, kind)
		must(err)
		ch, raw, err := txn.FirstWatch(tableIndex, indexID, string(kind))
		must(err)
		if raw != nil {
			index = raw.(*indexRow).Value
		}
		// Before the kind's first write ch is the channel of a tree node,
		// which the first write closes (as may writes to other kinds).
		watch = ch
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		es = append(es, raw.(*StoredEntry))
	}
	return es, index, watch
}

// View returns a consistent read view of the store as of now. A View is
// a frozen snapshot: later writes do not show in it.
func (s *Store) View() *View { return &View{txn: s.db.Txn(false)} }

// Hash returns a hex SHA-256 over the whole replicated state, for replica
// comparison: every entry in key order (key, CreateIndex, ModifyIndex,
// canonical JSON), every tombstone (key, deletion index) and every
// per-kind list index. It excludes the applied index, so two replicas
// with the same data hash equal even if one has applied trailing logs
// that change nothing (configuration changes, no-ops, rejected writes).
// Tombstones are included because they are replicated state: they decide
// the index Get returns for deleted keys.
func (s *Store) Hash() string { return s.View().hash() }

// View is a consistent read view of a Store. It implements chain.GraphStore
// so graph validation and the compiler can read from it. A View is safe for
// concurrent use when obtained from Store.View (a memdb read transaction
// only reads immutable trees); the View the FSM builds over its write
// transaction during Apply is for the FSM goroutine only.
type View struct {
	txn *memdb.Txn
}

var _ chain.GraphStore = (*View)(nil)

// Index returns the Raft index the view reflects: the last index applied
// (or restored) when the view was taken.
func (v *View) Index() uint64 { return readIndexRow(v.txn, tableMeta, metaApplied) }

// KeyIndex returns the ModifyIndex of the entry at k, the deletion index of
// its tombstone if it was deleted, or 0 if it never existed.
func (v *View) KeyIndex(k chain.Key) uint64 {
	if se := v.entry(k); se != nil {
		return se.ModifyIndex
	}
	raw, err := v.txn.First(tableTombstones, indexID, k)
	must(err)
	if raw != nil {
		return raw.(*tombstone).Index
	}
	return 0
}

// Entry returns the stored entry at k (any case), or nil.
func (v *View) Entry(k chain.Key) *StoredEntry { return v.entry(k) }

func (v *View) entry(k chain.Key) *StoredEntry {
	raw, err := v.txn.First(tableEntries, indexID, k)
	must(err)
	if raw == nil {
		return nil
	}
	return raw.(*StoredEntry)
}

// GetEntry implements chain.EntryLookup: the entry at key, or nil.
func (v *View) GetEntry(key chain.Key) chain.Entry {
	if se := v.entry(key); se != nil {
		return se.Entry
	}
	return nil
}

// Referrers implements chain.GraphStore through the link index: the
// lower-cased names of the entries that reference name, sorted, deduped.
func (v *View) Referrers(name string) []string {
	it, err := v.txn.Get(tableEntries, indexLink, name)
	must(err)
	var out []string
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out = append(out, raw.(*StoredEntry).key.Name)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ChainNames implements chain.GraphStore: every lower-cased name with a
// router, splitter or resolver, sorted.
func (v *View) ChainNames() []string {
	var out []string
	for _, kind := range []chain.Kind{chain.KindServiceRouter, chain.KindServiceSplitter, chain.KindServiceResolver} {
		it, err := v.txn.Get(tableEntries, indexKind, kind)
		must(err)
		for raw := it.Next(); raw != nil; raw = it.Next() {
			out = append(out, raw.(*StoredEntry).key.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// hash implements Store.Hash over this view.
func (v *View) hash() string {
	h := sha256.New()
	it, err := v.txn.Get(tableEntries, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		se := raw.(*StoredEntry)
		hashString(h, "E")
		hashKey(h, se.key)
		hashUint(h, se.CreateIndex)
		hashUint(h, se.ModifyIndex)
		js, err := chain.EncodeEntry(se.Entry)
		if err != nil {
			hashString(h, "!"+err.Error())
			continue
		}
		hashString(h, string(js))
	}
	it, err = v.txn.Get(tableTombstones, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		t := raw.(*tombstone)
		hashString(h, "T")
		hashKey(h, t.Key)
		hashUint(h, t.Index)
	}
	it, err = v.txn.Get(tableIndex, indexID)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		r := raw.(*indexRow)
		hashString(h, "I")
		hashString(h, r.Name)
		hashUint(h, r.Value)
	}
	v.hashCatalog(h)
	v.hashACL(h)
	return hex.EncodeToString(h.Sum(nil))
}

func hashUint(h hash.Hash, v uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	h.Write(b[:])
}

// hashString writes a length-prefixed string so concatenations cannot
// collide.
func hashString(h hash.Hash, s string) {
	hashUint(h, uint64(len(s)))
	h.Write([]byte(s))
}

func hashKey(h hash.Hash, k chain.Key) {
	hashString(h, string(k.Kind))
	hashString(h, k.Name)
}

// readIndexRow returns the value of the named row of table (index or meta),
// or 0.
func readIndexRow(txn *memdb.Txn, table, name string) uint64 {
	raw, err := txn.First(table, indexID, name)
	must(err)
	if raw == nil {
		return 0
	}
	return raw.(*indexRow).Value
}

// writer wraps the write transaction of one ApplyBatch (or Restore). It
// records the keys that really changed.
type writer struct {
	txn      *memdb.Txn
	changed  map[chain.Key]struct{}
	services map[string]struct{} // catalog services whose instances changed
}

func newWriter(s *Store) *writer { return &writer{txn: s.db.Txn(true)} }

// view returns a View over the transaction's current (uncommitted) state.
// It is valid only until the transaction ends, and only on the FSM
// goroutine.
func (w *writer) view() *View { return &View{txn: w.txn} }

// put inserts or replaces se, clears any tombstone of its key and bumps the
// kind's list index to index.
func (w *writer) put(se *StoredEntry, index uint64) {
	must(w.txn.Insert(tableEntries, se))
	w.clearTombstone(se.key)
	w.bumpKindIndex(se.key.Kind, index)
	w.markChanged(se.key)
}

// remove deletes se and writes a tombstone at index.
func (w *writer) remove(se *StoredEntry, index uint64) {
	must(w.txn.Delete(tableEntries, se))
	must(w.txn.Insert(tableTombstones, &tombstone{Key: se.key, Index: index}))
	w.bumpKindIndex(se.key.Kind, index)
	w.markChanged(se.key)
}

func (w *writer) clearTombstone(k chain.Key) {
	raw, err := w.txn.First(tableTombstones, indexID, k)
	must(err)
	if raw != nil {
		must(w.txn.Delete(tableTombstones, raw))
	}
}

func (w *writer) bumpKindIndex(kind chain.Kind, index uint64) {
	if readIndexRow(w.txn, tableIndex, string(kind)) < index {
		must(w.txn.Insert(tableIndex, &indexRow{Name: string(kind), Value: index}))
	}
}

// setApplied records the last applied Raft index.
func (w *writer) setApplied(index uint64) {
	must(w.txn.Insert(tableMeta, &indexRow{Name: metaApplied, Value: index}))
}

func (w *writer) markChanged(k chain.Key) {
	if w.changed == nil {
		w.changed = make(map[chain.Key]struct{})
	}
	w.changed[k] = struct{}{}
}

// changedKeys returns the changed keys sorted by (kind, name).
func (w *writer) changedKeys() []chain.Key {
	if len(w.changed) == 0 {
		return nil
	}
	out := make([]chain.Key, 0, len(w.changed))
	for k := range w.changed {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out
}

func compareKeys(a, b chain.Key) int {
	if c := strings.Compare(string(a.Kind), string(b.Kind)); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// ListAfter calls visit for the entries of kind (any case; "" for every
// kind) whose key sorts after after, in key order (kind, then lower-cased
// name), until visit returns false. after's zero value starts at the
// first entry. It reads one consistent view and materializes nothing: the
// caller bounds its own memory. It returns the same list index and watch
// channel as List.
func (s *Store) ListAfter(kind chain.Kind, after chain.Key, visit func(*StoredEntry) bool) (index uint64, watch <-chan struct{}) {
	txn := s.db.Txn(false)
	kind = chain.Kind(strings.ToLower(string(kind)))
	if kind == "" {
		it, err := txn.Get(tableEntries, indexID)
		must(err)
		watch = it.WatchCh()
		iit, err := txn.Get(tableIndex, indexID)
		must(err)
		for raw := iit.Next(); raw != nil; raw = iit.Next() {
			index = max(index, raw.(*indexRow).Value)
		}
	} else {
		ch, raw, err := txn.FirstWatch(tableIndex, indexID, string(kind))
		must(err)
		if raw != nil {
			index = raw.(*indexRow).Value
		}
		watch = ch
	}
	start := chain.KeyOf(after.Kind, after.Name)
	if kind != "" && start.Kind != kind {
		start = chain.Key{Kind: kind}
	}
	it, err := txn.LowerBound(tableEntries, indexID, start)
	must(err)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		se := raw.(*StoredEntry)
		if kind != "" && se.key.Kind != kind {
			break
		}
		if after != (chain.Key{}) && se.key == start {
			continue // the last entry of the previous page
		}
		if !visit(se) {
			break
		}
	}
	return index, watch
}
