package chaos

import (
	"fmt"

	"github.com/chainstore/chainstore/chain"
)

// ValueMetaKey is the Meta key under which workload entries carry their
// globally unique value.
const ValueMetaKey = "chaos-value"

// HotKeys returns n service-resolver keys svc-0 .. svc-(n-1): the entries
// the workload writes, whose chains the agents watch.
func HotKeys(n int) []chain.Key {
	keys := make([]chain.Key, n)
	for i := range keys {
		keys[i] = chain.KeyOf(chain.KindServiceResolver, fmt.Sprintf("svc-%d", i))
	}
	return keys
}

// EntryFor builds the entry the workload writes at key with a unique
// value. For a resolver the value also reaches the compiled chain (a
// subset filter), so every write changes the chain that agents watch.
func EntryFor(key chain.Key, value string) (chain.Entry, error) {
	meta := map[string]string{ValueMetaKey: value}
	switch key.Kind {
	case chain.KindServiceResolver:
		return &chain.ServiceResolverConfigEntry{
			Kind:          chain.KindServiceResolver,
			Name:          key.Name,
			DefaultSubset: "v",
			Subsets: map[string]chain.ServiceResolverSubset{
				"v": {Filter: fmt.Sprintf("Service.Meta.rev == %q", value)},
			},
			Meta: meta,
		}, nil
	case chain.KindServiceDefaults:
		return &chain.ServiceConfigEntry{Kind: chain.KindServiceDefaults, Name: key.Name, Protocol: "http", Meta: meta}, nil
	}
	return nil, fmt.Errorf("workload entry for kind %q: %w", key.Kind, ErrUnsupportedKind)
}

// ValueOf returns the workload value carried by e ("" if none).
func ValueOf(e chain.Entry) string {
	switch t := e.(type) {
	case *chain.ServiceResolverConfigEntry:
		return t.Meta[ValueMetaKey]
	case *chain.ServiceConfigEntry:
		return t.Meta[ValueMetaKey]
	case *chain.ServiceRouterConfigEntry:
		return t.Meta[ValueMetaKey]
	case *chain.ServiceSplitterConfigEntry:
		return t.Meta[ValueMetaKey]
	case *chain.ProxyConfigEntry:
		return t.Meta[ValueMetaKey]
	}
	return ""
}

// ValueOfJSON decodes canonical entry JSON and returns its workload value.
func ValueOfJSON(data []byte) (string, error) {
	e, err := chain.DecodeCanonical(data)
	if err != nil {
		return "", fmt.Errorf("decode entry: %w", err)
	}
	return ValueOf(e), nil
}

// UniqueValue is the value client c writes in its seq-th write. Logical
// client IDs are unique per history, so values are too.
func UniqueValue(client, seq int) string {
	return fmt.Sprintf("c%d-%d", client, seq)
}
