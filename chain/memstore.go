package chain

import (
	"slices"
	"strings"
)

// MemStore is an in-memory GraphStore for offline tools and tests. It keeps
// a link index (referenced name -> referrers) built from Entry.References
// of every router, splitter and resolver.
//
// MemStore is not safe for concurrent use. It stores the entries it is given
// (no copies); callers must not modify an entry after handing it over.
type MemStore struct {
	entries map[Key]Entry
	// refs holds the lower-cased references of each chain entry, as
	// indexed, so a replace or delete can undo them.
	refs map[Key][]string
	// links maps a referenced name to its referrers, counting the entries
	// (router, splitter, resolver) of the referrer that reference it.
	links map[string]map[string]int
	// chains counts the router/splitter/resolver entries of each name.
	chains map[string]int
}

var _ GraphStore = (*MemStore)(nil)

// NewMemStore returns a store holding entries (later ones replace earlier
// ones with the same key). Entries are stored as given, without validation.
func NewMemStore(entries ...Entry) *MemStore {
	m := &MemStore{
		entries: make(map[Key]Entry, len(entries)),
		refs:    make(map[Key][]string),
		links:   make(map[string]map[string]int),
		chains:  make(map[string]int),
	}
	for _, e := range entries {
		m.Upsert(e)
	}
	return m
}

func isChainKind(k Kind) bool {
	return k == KindServiceRouter || k == KindServiceSplitter || k == KindServiceResolver
}

// Upsert stores e under KeyOf(e.GetKind(), e.GetName()), replacing any
// entry there. A nil e is ignored.
func (m *MemStore) Upsert(e Entry) {
	if isNilEntry(e) {
		return
	}
	key := KeyOf(e.GetKind(), e.GetName())
	m.Delete(key)
	m.entries[key] = e
	if !isChainKind(key.Kind) {
		return
	}
	m.chains[key.Name]++
	refs := e.References()
	lowered := make([]string, 0, len(refs))
	for _, r := range refs {
		r = strings.ToLower(r)
		if r == "" || r == key.Name || slices.Contains(lowered, r) {
			continue
		}
		lowered = append(lowered, r)
		byName := m.links[r]
		if byName == nil {
			byName = make(map[string]int, 1)
			m.links[r] = byName
		}
		byName[key.Name]++
	}
	m.refs[key] = lowered
}

// Delete removes the entry at key, if any.
func (m *MemStore) Delete(key Key) {
	key = KeyOf(key.Kind, key.Name)
	if _, ok := m.entries[key]; !ok {
		return
	}
	delete(m.entries, key)
	if !isChainKind(key.Kind) {
		return
	}
	if m.chains[key.Name]--; m.chains[key.Name] <= 0 {
		delete(m.chains, key.Name)
	}
	for _, r := range m.refs[key] {
		byName := m.links[r]
		if byName[key.Name]--; byName[key.Name] <= 0 {
			delete(byName, key.Name)
		}
		if len(byName) == 0 {
			delete(m.links, r)
		}
	}
	delete(m.refs, key)
}

// Apply performs c on the store without validating it (see ValidateWrite).
func (m *MemStore) Apply(c Change) error {
	key, err := c.key()
	if err != nil {
		return err
	}
	if c.Entry == nil || isNilEntry(c.Entry) {
		m.Delete(key)
		return nil
	}
	m.Upsert(c.Entry)
	return nil
}

// GetEntry implements EntryLookup. It is safe on a nil *MemStore.
func (m *MemStore) GetEntry(key Key) Entry {
	if m == nil {
		return nil
	}
	e, ok := m.entries[KeyOf(key.Kind, key.Name)]
	if !ok {
		return nil
	}
	return e
}

// Referrers implements GraphStore.
func (m *MemStore) Referrers(name string) []string {
	byName := m.links[strings.ToLower(name)]
	if len(byName) == 0 {
		return nil
	}
	out := make([]string, 0, len(byName))
	for n := range byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// ChainNames implements GraphStore.
func (m *MemStore) ChainNames() []string {
	out := make([]string, 0, len(m.chains))
	for n := range m.chains {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Len returns the number of stored entries.
func (m *MemStore) Len() int { return len(m.entries) }

// Keys returns the keys of all stored entries, sorted by (Kind, Name).
func (m *MemStore) Keys() []Key {
	out := make([]Key, 0, len(m.entries))
	for k := range m.entries {
		out = append(out, k)
	}
	slices.SortFunc(out, compareKeys)
	return out
}
