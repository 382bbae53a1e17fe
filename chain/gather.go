package chain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// entrySet is the closed set of entries gathered for one chain
// (docs/discovery-chain.md, Gathering).
// The compiler reads only this set, never the EntryLookup. Lookups are by
// lower-cased name, like the store's keys.
type entrySet struct {
	proxy *ProxyConfigEntry
	// got holds every key looked up; misses map to nil.
	got map[Key]Entry
}

func (s *entrySet) serviceDefaults(name string) *ServiceConfigEntry {
	e, _ := s.got[KeyOf(KindServiceDefaults, name)].(*ServiceConfigEntry)
	return e
}

func (s *entrySet) router(name string) *ServiceRouterConfigEntry {
	e, _ := s.got[KeyOf(KindServiceRouter, name)].(*ServiceRouterConfigEntry)
	return e
}

func (s *entrySet) splitter(name string) *ServiceSplitterConfigEntry {
	e, _ := s.got[KeyOf(KindServiceSplitter, name)].(*ServiceSplitterConfigEntry)
	return e
}

func (s *entrySet) resolver(name string) *ServiceResolverConfigEntry {
	e, _ := s.got[KeyOf(KindServiceResolver, name)].(*ServiceResolverConfigEntry)
	return e
}

// gatherer collects an entrySet through an EntryLookup, remembering every
// key it asked for.
type gatherer struct {
	src EntryLookup
	set *entrySet
	err error
}

// get looks key (kind, name) up once and returns the entry, or nil.
func (g *gatherer) get(kind Kind, name string) Entry {
	k := KeyOf(kind, name)
	if e, ok := g.set.got[k]; ok {
		return e
	}
	e := g.src.GetEntry(k)
	if isNilEntry(e) {
		e = nil
	} else if e.GetKind() != kind && g.err == nil {
		g.err = fmt.Errorf("gather %s: got %T: %w", k, e, ErrUnexpectedEntry)
		e = nil
	}
	g.set.got[k] = e
	return e
}

// isNilEntry reports whether e is nil or a typed nil pointer.
func isNilEntry(e Entry) bool {
	switch t := e.(type) {
	case nil:
		return true
	case *ServiceConfigEntry:
		return t == nil
	case *ProxyConfigEntry:
		return t == nil
	case *ServiceRouterConfigEntry:
		return t == nil
	case *ServiceSplitterConfigEntry:
		return t == nil
	case *ServiceResolverConfigEntry:
		return t == nil
	}
	return false
}

// nameQueue is a FIFO of service names, each accepted once (compared
// case-insensitively, like keys). Chains reach a handful of names, so a
// linear scan beats a map here.
type nameQueue struct {
	items []string
	next  int
}

func (q *nameQueue) push(name string) {
	if name == "" {
		return
	}
	for _, n := range q.items {
		if strings.EqualFold(n, name) {
			return
		}
	}
	q.items = append(q.items, name)
}

func (q *nameQueue) pop() (string, bool) {
	if q.next >= len(q.items) {
		return "", false
	}
	q.next++
	return q.items[q.next-1], true
}

// gatherEntries collects the entries of service's chain
// (docs/discovery-chain.md, Gathering):
//
//  1. proxy-defaults/global;
//  2. the router of service; its references (service itself, because of
//     the catch-all, and each destination) or, without a router, service
//     itself, go on to the splitter stage;
//  3. the splitter of every name reached, following the legs; each name
//     reached here is queued for the resolver stage;
//  4. the resolver of every queued name, following redirects and failover;
//  5. service-defaults of every name visited.
//
// It returns the set and every key looked up, sorted and deduplicated.
func gatherEntries(src EntryLookup, service string) (*entrySet, []Key, error) {
	set, err := gather(src, service)
	return set, set.readKeys(), err
}

// readKeys returns every key looked up, found or not, sorted.
func (s *entrySet) readKeys() []Key {
	reads := make([]Key, 0, len(s.got))
	for k := range s.got {
		reads = append(reads, k)
	}
	slices.SortFunc(reads, compareKeys)
	return reads
}

// gather is gatherEntries without the sorted list of keys, which
// write-time validation does not need.
func gather(src EntryLookup, service string) (*entrySet, error) {
	g := &gatherer{src: src, set: &entrySet{got: make(map[Key]Entry, 8)}}

	if p, ok := g.get(KindProxyDefaults, ProxyDefaultsName).(*ProxyConfigEntry); ok {
		g.set.proxy = p
	}

	var splitters, resolvers nameQueue
	splitters.push(service)
	if r, ok := g.get(KindServiceRouter, service).(*ServiceRouterConfigEntry); ok {
		for _, route := range r.Routes {
			if route.Destination != nil {
				splitters.push(route.Destination.Service)
			}
		}
	}

	for name, ok := splitters.pop(); ok; name, ok = splitters.pop() {
		resolvers.push(name)
		sp, isSplitter := g.get(KindServiceSplitter, name).(*ServiceSplitterConfigEntry)
		if !isSplitter {
			continue
		}
		for _, split := range sp.Splits {
			splitters.push(split.Service)
		}
	}

	for name, ok := resolvers.pop(); ok; name, ok = resolvers.pop() {
		res, isResolver := g.get(KindServiceResolver, name).(*ServiceResolverConfigEntry)
		if !isResolver {
			continue
		}
		if res.Redirect != nil {
			resolvers.push(res.Redirect.Service)
		}
		for _, subset := range sortedKeys(res.Failover) {
			fo := res.Failover[subset]
			resolvers.push(fo.Service)
			for _, t := range fo.Targets {
				resolvers.push(t.Service)
			}
		}
	}

	// Every name visited went through the resolver queue (the splitter
	// stage feeds it), so it holds all names of all stages.
	for _, name := range resolvers.items {
		g.get(KindServiceDefaults, name)
	}

	return g.set, g.err
}

// compareKeys orders keys by Kind, then Name.
func compareKeys(a, b Key) int {
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	return cmp.Compare(a.Name, b.Name)
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
