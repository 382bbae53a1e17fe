package chain

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Fixed inputs of write-time graph validation (docs/discovery-chain.md,
// Write-time validation). A user-facing error
// can therefore mention dc1 whatever the real datacenter is called [quirk].
const (
	DefaultNamespace      = "default"
	DefaultDatacenter     = "dc1"
	ValidationTrustDomain = "11111111-2222-3333-4444-555555555555.consul"
)

// ErrChangeKeyMismatch reports a Change whose Key does not name its Entry.
var ErrChangeKeyMismatch = errors.New("change key does not match its entry")

// GraphStore is what write-time validation needs from a store: entries, and
// the reverse dependency ("link") index (docs/discovery-chain.md, Kinds and
// identity).
type GraphStore interface {
	EntryLookup
	// Referrers returns the lower-cased names of the services whose router,
	// splitter or resolver references name (Entry.References), sorted.
	Referrers(name string) []string
	// ChainNames returns every (lower-cased) name that has a router,
	// splitter or resolver, sorted.
	ChainNames() []string
}

// Change is a proposed write: an upsert of Entry at Key, or a delete of Key
// when Entry is nil. For an upsert Key may be left zero; it is then taken
// from the entry.
type Change struct {
	Key   Key
	Entry Entry
}

// key returns the normalized key of the change.
func (c Change) key() (Key, error) {
	if c.Entry == nil || isNilEntry(c.Entry) {
		return KeyOf(c.Key.Kind, c.Key.Name), nil
	}
	k := KeyOf(c.Entry.GetKind(), c.Entry.GetName())
	if c.Key != (Key{}) && KeyOf(c.Key.Kind, c.Key.Name) != k {
		return Key{}, fmt.Errorf("validate write of %s as %s: %w", k, c.Key, ErrChangeKeyMismatch)
	}
	return k, nil
}

// AffectedChains returns the chains a write of key can change, sorted: the
// key's own name plus every transitive referrer, or every chain name for
// proxy-defaults.
func AffectedChains(s GraphStore, key Key) []string {
	key = KeyOf(key.Kind, key.Name)
	if key.Kind == KindProxyDefaults {
		names := slices.Clone(s.ChainNames())
		slices.Sort(names)
		return slices.Compact(names)
	}
	direct := s.Referrers(key.Name)
	if len(direct) == 0 {
		return []string{key.Name} // a leaf: the common case
	}
	seen := map[string]bool{key.Name: true}
	names := []string{key.Name}
	for i := 0; i < len(names); i++ {
		refs := direct
		if i > 0 {
			refs = s.Referrers(names[i])
		}
		for _, r := range refs {
			r = strings.ToLower(r)
			if !seen[r] {
				seen[r] = true
				names = append(names, r)
			}
		}
	}
	slices.Sort(names)
	return names
}

// ValidateWrite checks that the change breaks no discovery chain, using
// the fixed inputs of docs/discovery-chain.md, Write-time validation:
// namespace default, datacenter dc1, ValidationTrustDomain, UseInDatacenter
// dc1. It returns the first error in chain-name order: a *GraphError as
// Compile returned it, or another error wrapped with the chain's name.
//
// When the change leaves the graph input of its key unchanged (a
// service-defaults Meta edit, a splitter's weights, a route's match:
// validate_skip.go) no chain can stop compiling, and ValidateWrite
// returns nil without compiling; otherwise it compiles
// every chain the change affects, with the change overlaid on s (a delete
// masks the key). It depends only on s and c, so every replica decides
// alike.
func ValidateWrite(s GraphStore, c Change) error {
	key, err := c.key()
	if err != nil {
		return err
	}
	next := c.Entry
	if next == nil || isNilEntry(next) {
		next = nil
	}
	if graphInputUnchanged(s, key, next) {
		return nil
	}
	return compileAffected(s, key, next)
}

// compileAffected is the full validation: it compiles every chain in
// AffectedChains(s, key) with next (nil: a delete) overlaid at key and
// returns the first error. Tests use it as the oracle of the fast path.
func compileAffected(s GraphStore, key Key, next Entry) error {
	view := &overlay{base: s, key: key, entry: next}
	for _, name := range AffectedChains(s, key) {
		err := compileError(CompileRequest{
			ServiceName:           name,
			EvaluateInNamespace:   DefaultNamespace,
			EvaluateInDatacenter:  DefaultDatacenter,
			EvaluateInTrustDomain: ValidationTrustDomain,
			UseInDatacenter:       DefaultDatacenter,
			Entries:               view,
		})
		if err == nil {
			continue
		}
		var ge *GraphError
		if errors.As(err, &ge) {
			return err
		}
		return fmt.Errorf("compile discovery chain %q: %w", name, err)
	}
	return nil
}

// overlay is an EntryLookup that shows one proposed change over a base
// lookup; entry == nil masks the key (a tombstone).
type overlay struct {
	base  EntryLookup
	key   Key
	entry Entry
}

func (o *overlay) GetEntry(k Key) Entry {
	if k == o.key {
		return o.entry
	}
	return o.base.GetEntry(k)
}
