package fsm

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"

	"github.com/chainstore/chainstore/chain"
)

// Table and index names of the memdb schema.
const (
	tableEntries    = "entries"
	tableTombstones = "tombstones"
	tableIndex      = "index"
	tableMeta       = "meta"

	indexID   = "id"
	indexKind = "kind"
	indexLink = "link"

	// metaApplied is the one row of tableMeta: the last applied Raft index.
	metaApplied = "applied"
)

// tombstone records that the entry at Key was deleted at Index. It stays
// until the entry is re-created (or, later, garbage-collected through Raft),
// so the index of a key never goes backwards.
type tombstone struct {
	Key   chain.Key
	Index uint64
}

// indexRow is a row of tableIndex (per-kind "highest index that changed
// this kind", used as List's index) and of tableMeta.
type indexRow struct {
	Name  string
	Value uint64
}

// newSchema returns the memdb schema. It is built per store so no global
// mutable state is shared.
func newSchema() *memdb.DBSchema {
	s := &memdb.DBSchema{
		Tables: map[string]*memdb.TableSchema{
			tableEntries: {
				Name: tableEntries,
				Indexes: map[string]*memdb.IndexSchema{
					indexID:   {Name: indexID, Unique: true, Indexer: keyIndexer{}},
					indexKind: {Name: indexKind, Indexer: kindIndexer{}},
					indexLink: {Name: indexLink, AllowMissing: true, Indexer: linkIndexer{}},
				},
			},
			tableTombstones: {
				Name: tableTombstones,
				Indexes: map[string]*memdb.IndexSchema{
					indexID: {Name: indexID, Unique: true, Indexer: keyIndexer{}},
				},
			},
			tableIndex: {
				Name: tableIndex,
				Indexes: map[string]*memdb.IndexSchema{
					indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
				},
			},
			tableMeta: {
				Name: tableMeta,
				Indexes: map[string]*memdb.IndexSchema{
					indexID: {Name: indexID, Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Name"}},
				},
			},
		},
	}
	for name, t := range catalogTables() {
		s.Tables[name] = t
	}
	for name, t := range aclTables() {
		s.Tables[name] = t
	}
	return s
}

// keyBytes is the id-index value of a key: kind NUL name NUL. Both parts
// are already lower-cased by chain.KeyOf, and the terminators keep one
// key from being a prefix of another.
func keyBytes(k chain.Key) []byte {
	b := make([]byte, 0, len(k.Kind)+len(k.Name)+2)
	b = append(b, k.Kind...)
	b = append(b, 0)
	b = append(b, k.Name...)
	return append(b, 0)
}

// rowKey returns the key of an entries or tombstones row.
func rowKey(raw any) (chain.Key, bool) {
	switch r := raw.(type) {
	case *StoredEntry:
		return r.key, r.Entry != nil
	case *tombstone:
		return r.Key, true
	}
	return chain.Key{}, false
}

// keyIndexer indexes entries and tombstones by their normalized key.
// FromArgs takes one chain.Key (normalized again, so callers may pass any
// case) or nothing (then Get iterates the whole table).
type keyIndexer struct{}

func (keyIndexer) FromObject(raw any) (bool, []byte, error) {
	k, ok := rowKey(raw)
	if !ok {
		return false, nil, fmt.Errorf("key index: unexpected row %T", raw)
	}
	return true, keyBytes(k), nil
}

func (keyIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("key index: want 1 argument, got %d", len(args))
	}
	k, ok := args[0].(chain.Key)
	if !ok {
		return nil, fmt.Errorf("key index: want chain.Key, got %T", args[0])
	}
	return keyBytes(chain.KeyOf(k.Kind, k.Name)), nil
}

// kindIndexer indexes entries by lower-cased kind. FromArgs takes one
// chain.Kind.
type kindIndexer struct{}

func (kindIndexer) FromObject(raw any) (bool, []byte, error) {
	k, ok := rowKey(raw)
	if !ok {
		return false, nil, fmt.Errorf("kind index: unexpected row %T", raw)
	}
	return true, append([]byte(k.Kind), 0), nil
}

func (kindIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("kind index: want 1 argument, got %d", len(args))
	}
	k, ok := args[0].(chain.Kind)
	if !ok {
		return nil, fmt.Errorf("kind index: want chain.Kind, got %T", args[0])
	}
	return append([]byte(strings.ToLower(string(k))), 0), nil
}

// linkIndexer is the reverse-dependency ("link") index: one value per
// service an entry references (Entry.References, lower-cased). FromArgs
// takes one service name in any case.
type linkIndexer struct{}

func (linkIndexer) FromObject(raw any) (bool, [][]byte, error) {
	se, ok := raw.(*StoredEntry)
	if !ok {
		return false, nil, fmt.Errorf("link index: unexpected row %T", raw)
	}
	if len(se.links) == 0 {
		return false, nil, nil
	}
	vals := make([][]byte, len(se.links))
	for i, l := range se.links {
		vals[i] = append([]byte(l), 0)
	}
	return true, vals, nil
}

func (linkIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("link index: want 1 argument, got %d", len(args))
	}
	s, ok := args[0].(string)
	if !ok {
		return nil, fmt.Errorf("link index: want string, got %T", args[0])
	}
	return append([]byte(strings.ToLower(s)), 0), nil
}

// linksOf returns the lower-cased, sorted, deduplicated references of e,
// without empty names and without e's own name.
func linksOf(e chain.Entry, self string) []string {
	refs := e.References()
	if len(refs) == 0 {
		return nil
	}
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		r = strings.ToLower(r)
		if r == "" || r == self {
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil
	}
	// References is documented sorted, but lower-casing can reorder and
	// create duplicates.
	slices.Sort(out)
	return slices.Compact(out)
}
